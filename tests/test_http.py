"""exchange() against hostile servers: every failure becomes a described Exchange, in time."""

from __future__ import annotations

import gzip
import http.server
import importlib.util
import json
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator

import httpx
import pytest
from support import bearer

from gateprobe._redact import Redactor
from gateprobe.http import ACCEPT_ENCODING, Exchange, Limits, exchange
from gateprobe.mock import MockServer

Behaviour = Callable[[socket.socket], None]
FAST = Limits(connect=1.0, read=0.5, total=2.0, max_bytes=1024 * 1024)


@pytest.fixture
def hostile() -> Iterator[Callable[[Behaviour], str]]:
    """A one-behaviour TCP server on 127.0.0.1; answers every connection the same way."""
    servers: list[tuple[socket.socket, threading.Event]] = []

    def start(behaviour: Behaviour) -> str:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.settimeout(0.1)
        stop = threading.Event()

        def loop() -> None:
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except OSError:
                    continue
                conn.settimeout(5)
                threading.Thread(target=_serve, args=(conn, behaviour, stop), daemon=True).start()

        threading.Thread(target=loop, daemon=True).start()
        servers.append((listener, stop))
        return f"http://127.0.0.1:{listener.getsockname()[1]}"

    yield start
    for listener, stop in servers:
        stop.set()
        listener.close()


def _serve(conn: socket.socket, behaviour: Behaviour, stop: threading.Event) -> None:
    try:
        conn.recv(65536)
        behaviour(conn)
    except OSError:
        pass
    finally:
        conn.close()


def hang(conn: socket.socket) -> None:
    time.sleep(3)


def garbage(conn: socket.socket) -> None:
    conn.sendall(b"\x00\xffTHIS IS NOT HTTP\r\n\r\n")


def reset(conn: socket.socket) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def huge(conn: socket.socket) -> None:
    size = 50 * 1024 * 1024
    conn.sendall(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        + f"content-length: {size}\r\n\r\n".encode()
    )
    block = b"0" * 65536
    for _ in range(size // len(block)):
        conn.sendall(block)


def cut_stream(conn: socket.socket) -> None:
    conn.sendall(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    for part in (b'data: {"n":1}\n\n', b'data: {"n":2}\n\n', b'data: {"n'):
        conn.sendall(f"{len(part):x}\r\n".encode() + part + b"\r\n")
        time.sleep(0.02)


def trickle(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 100\r\n\r\n")
    for _ in range(100):
        conn.sendall(b"x")
        time.sleep(0.2)


def timed(url: str) -> tuple[float, Exchange]:
    with httpx.Client() as client:
        started = time.perf_counter()
        result = exchange(
            client,
            "POST",
            url + "/v1/chat/completions",
            limits=FAST,
            json_body={"model": "m"},
        )
        return time.perf_counter() - started, result


@pytest.mark.parametrize(
    ("behaviour", "words"),
    [
        (hang, "no response (read timeout)"),
        (garbage, "transport error"),
        (reset, "transport error"),
        (huge, "body larger than"),
        (trickle, "total limit"),
    ],
)
def test_hostile_servers_give_a_described_failure_within_the_limit(
    hostile: Callable[[Behaviour], str], behaviour: Behaviour, words: str
) -> None:
    elapsed, result = timed(hostile(behaviour))
    assert result.error is not None and words in result.error
    assert elapsed < FAST.total + FAST.read + 1.0


def test_huge_body_is_truncated_to_the_limit(hostile: Callable[[Behaviour], str]) -> None:
    _, result = timed(hostile(huge))
    assert result.truncated
    assert len(result.body) == FAST.max_bytes


def test_a_stream_cut_mid_frame_keeps_the_complete_events(
    hostile: Callable[[Behaviour], str],
) -> None:
    _, result = timed(hostile(cut_stream))
    assert [e.data for e in result.events] == ['{"n":1}', '{"n":2}']
    problem = result.stream_problem or result.error
    assert problem is not None


def test_connection_refused_is_described() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    _, result = timed(f"http://127.0.0.1:{port}")
    assert result.error is not None and "transport error before a response" in result.error


def test_a_real_stream_is_recorded_with_timestamps_and_masked(mock: MockServer) -> None:
    headers = bearer()
    secret = headers["Authorization"].split()[1]
    body = {
        "model": "gpt-4o-mini--itl-10",
        "stream": True,
        "messages": [{"role": "user", "content": f"my key is {secret}"}],
    }
    with httpx.Client(base_url=mock.url) as client:
        result = exchange(client, "POST", "/v1/chat/completions", headers=headers, json_body=body)
    assert result.ok and result.status == 200 and result.stream_problem is None
    assert result.events[-1].data == "[DONE]"
    assert result.ttfb is not None and result.events[-1].time > result.events[1].time
    record = result.to_dict(Redactor([secret]))
    assert secret not in repr(record)
    sent = record["request"]["headers"]
    assert sent["authorization"].startswith("Bearer sk-") and secret not in sent["authorization"]
    # what httpx adds is on the record too: it went on the wire
    assert {"host", "accept", "accept-encoding", "user-agent", "content-length"} <= set(sent)
    assert sent["content-length"] == str(len(result.request.body or b""))


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1beta/models/gemini-2.5-flash:x"])
def test_a_client_can_hang_up_after_some_events(mock: MockServer, path: str) -> None:
    gemini = path.startswith("/v1beta")
    model = "gemini-2.5-flash--itl-20--chunks-20" if gemini else "gpt-4o-mini--itl-20--chunks-20"
    if gemini:
        path = f"/v1beta/models/{model}:streamGenerateContent"
        body: dict[str, object] = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
        headers = {"x-goog-api-key": bearer()["Authorization"].split()[1]}
    else:
        body = {"model": model, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
        headers = bearer()
    with httpx.Client(base_url=mock.url) as client:
        result = exchange(
            client,
            "POST",
            path,
            headers=headers,
            json_body=body,
            json_array_stream=gemini,
            disconnect_after_events=3,
        )
    assert result.status == 200 and result.ok and result.disconnected
    assert len(result.elements if gemini else result.events) == 3
    assert result.stream_problem is None  # a hang-up is not the gateway's fault


def test_redactor_masks_urls_bodies_and_credential_headers() -> None:
    redactor = Redactor(["sk-secret-123456789", "sk-secret-1234"])
    assert "sk-secret-1234" not in redactor.text("?key=sk-secret-123456789&x=sk-secret-1234")
    masked = redactor.headers(
        {"x-goog-api-key": "unknown-but-sensitive", "x-other": "sk-secret-1234"}
    )
    assert masked["x-goog-api-key"] != "unknown-but-sensitive"
    assert "sk-secret-1234" not in masked["x-other"]


# -- content codings, against a real HTTP server ---------------------------------------------

ANSWER = {"id": "chatcmpl-1", "object": "chat.completion", "choices": [{"index": 0}]}
SSE_EVENTS = [json.dumps({"n": n, "text": "word " * 20}) for n in range(4)] + ["[DONE]"]


def _sse_gzip_parts() -> list[bytes]:
    """A gzipped event stream, flushed after every event as a streaming server does."""
    compressor = zlib.compressobj(wbits=zlib.MAX_WBITS | 16)
    parts = [
        compressor.compress(f"data: {data}\n\n".encode()) + compressor.flush(zlib.Z_SYNC_FLUSH)
        for data in SSE_EVENTS
    ]
    return [*parts, compressor.flush()]


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


# path -> (content type, content encoding, the body's network writes)
ENCODED: dict[str, tuple[str, str, list[bytes]]] = {
    "/json-gzip": ("application/json", "gzip", [gzip.compress(json.dumps(ANSWER).encode())]),
    "/json-deflate": ("application/json", "deflate", [zlib.compress(json.dumps(ANSWER).encode())]),
    "/json-raw-deflate": (
        "application/json",
        "deflate",
        [_raw_deflate(json.dumps(ANSWER).encode())],
    ),
    "/sse-gzip": ("text/event-stream", "gzip", _sse_gzip_parts()),
    "/sse-gzip-as-json": ("application/json", "gzip", _sse_gzip_parts()),
    "/corrupt-gzip": ("application/json", "gzip", [b"\x1f\x8b\x08\x00garbage, not deflate"]),
    "/cut-gzip": ("application/json", "gzip", [gzip.compress(b'{"a": 1}' * 100)[:-12]]),
    "/unknown": ("application/json", "compress", [b"\x1f\x9d\x90{"]),
    "/bomb": ("application/json", "gzip", [gzip.compress(b" " * (4 * 1024 * 1024))]),
    "/json-as-sse": ("application/json", "", [json.dumps(ANSWER).encode()]),
}
BROTLI = importlib.util.find_spec("brotli") is not None
if BROTLI:
    import brotli

    ENCODED["/json-br"] = ("application/json", "br", [brotli.compress(json.dumps(ANSWER).encode())])


class _EncodingHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[dict[str, str]]  # the request headers as the server received them

    def do_POST(self) -> None:
        self.seen.append({k.lower(): v for k, v in self.headers.items()})
        self.rfile.read(int(self.headers.get("content-length", 0)))
        content_type, encoding, writes = ENCODED[self.path]
        self.send_response(200)
        self.send_header("content-type", content_type)
        if encoding:
            self.send_header("content-encoding", encoding)
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for part in writes:
            if part:
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                self.wfile.flush()
                time.sleep(0.02)  # each write its own network read
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def encoding_server() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A server on 127.0.0.1 that answers each path of ENCODED with its encoded body."""
    seen: list[dict[str, str]] = []
    handler = type("Handler", (_EncodingHandler,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()
    thread.join(5)


def _post(url: str, limits: Limits = FAST, **options: bool) -> Exchange:
    with httpx.Client() as client:
        return exchange(client, "POST", url, json_body={"model": "m"}, limits=limits, **options)


@pytest.mark.parametrize(
    "path",
    [
        "/json-gzip",
        "/json-deflate",
        "/json-raw-deflate",
        pytest.param("/json-br", marks=pytest.mark.skipif(not BROTLI, reason="no brotli")),
    ],
)
def test_a_compressed_json_answer_is_decoded(
    encoding_server: tuple[str, list[dict[str, str]]], path: str
) -> None:
    url, seen = encoding_server
    result = _post(url + path)
    assert result.ok, result.error
    assert result.json() == ANSWER
    # the record keeps what came off the wire: the compressed size, not the decoded one
    wire = sum(len(part) for part in ENCODED[path][2])
    assert sum(size for _, size in result.chunks) == wire != len(result.body)
    # what was asked for is what the server saw, and what the record shows
    assert seen[-1]["accept-encoding"] == ACCEPT_ENCODING
    assert result.request.headers["accept-encoding"] == ACCEPT_ENCODING


def test_only_decodable_codings_are_asked_for() -> None:
    offered = [token.strip() for token in ACCEPT_ENCODING.split(",")]
    assert offered[:2] == ["gzip", "deflate"]
    assert ("br" in offered) == (importlib.util.find_spec("brotli") is not None)
    assert ("zstd" in offered) == (importlib.util.find_spec("zstandard") is not None)


def test_a_gzipped_event_stream_is_parsed_as_it_arrives(
    encoding_server: tuple[str, list[dict[str, str]]],
) -> None:
    url, _ = encoding_server
    result = _post(url + "/sse-gzip")
    assert result.ok and result.stream_problem is None, result.error
    assert [e.data for e in result.events] == SSE_EVENTS
    assert result.events[0].raw == f"data: {SSE_EVENTS[0]}"  # the frame as decoded
    # every event has the time of the network read that completed it, not the body's end
    times = [e.time for e in result.events]
    assert times == sorted(times) and times[-1] > times[0]
    # sizes on the wire: compressed, one per network read
    assert len(result.chunks) > 1
    assert sum(size for _, size in result.chunks) == sum(map(len, ENCODED["/sse-gzip"][2]))
    assert result.body.decode().count("data: ") == len(SSE_EVENTS)


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/corrupt-gzip", "the gzip data is corrupt"),
        ("/cut-gzip", "the body ends inside its gzip data"),
        ("/unknown", "unsupported Content-Encoding 'compress'"),
    ],
)
def test_an_undecodable_body_is_a_transport_error_not_an_exception(
    encoding_server: tuple[str, list[dict[str, str]]], path: str, words: str
) -> None:
    url, _ = encoding_server
    result = _post(url + path)
    assert result.status == 200
    assert result.error is not None and words in result.error, result.error
    assert result.events == [] and result.chunks  # what arrived is still recorded


def test_a_compression_bomb_stops_at_the_body_limit(
    encoding_server: tuple[str, list[dict[str, str]]],
) -> None:
    url, _ = encoding_server
    small = Limits(connect=1.0, read=1.0, total=3.0, max_bytes=64 * 1024)
    result = _post(url + "/bomb", limits=small)
    assert result.truncated and len(result.body) == small.max_bytes
    assert result.error is not None and "body larger than" in result.error


def test_an_asked_for_event_stream_with_the_wrong_content_type_is_still_parsed(
    encoding_server: tuple[str, list[dict[str, str]]],
) -> None:
    url, _ = encoding_server
    result = _post(url + "/sse-gzip-as-json", sse_stream=True)
    assert result.content_type == "application/json"
    assert [e.data for e in result.events] == SSE_EVENTS and result.stream_problem is None
    # without the request asking for SSE, an application/json body is just a body
    plain = _post(url + "/sse-gzip-as-json")
    assert plain.events == [] and plain.body.startswith(b"data: ")


def test_a_json_answer_to_an_sse_request_is_not_read_as_a_broken_stream(
    encoding_server: tuple[str, list[dict[str, str]]],
) -> None:
    url, _ = encoding_server
    result = _post(url + "/json-as-sse", sse_stream=True)
    assert result.ok and result.json() == ANSWER
    assert result.events == [] and result.stream_problem is None
