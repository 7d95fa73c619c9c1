"""exchange() against hostile servers: every failure becomes a described Exchange, in time."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from support import bearer

from gateprobe._redact import Redactor
from gateprobe.http import Exchange, Limits, exchange
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
    assert record["request"]["headers"]["Authorization"].startswith("Bearer sk-")


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
