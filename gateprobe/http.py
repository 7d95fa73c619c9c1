"""One HTTP exchange with a gateway, recorded whole and never raising.

``exchange()`` sends a request and returns an ``Exchange``: the request, the status, the
headers, the body (or, for a stream, every chunk with its arrival time and the parsed
events), timings, and, when the transport failed, what went wrong. A gateway that hangs,
resets, sends garbage or a huge body, or cuts a stream yields an Exchange with ``error``
set within the deadline, never an exception, so a check can fail with a clear message and
the run goes on.

The request record holds every header that went on the wire, those httpx adds included. The
body is read as it came off the wire, so ``Exchange.chunks`` has each network read's arrival
time and size on the wire, and its content coding (gzip, deflate; br and zstd when their
package is importable: only those are asked for) is undone read by read before the stream
parsers see it; a coding that cannot be undone is an ``error`` on the exchange.
"""

from __future__ import annotations

import importlib
import json
import re
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from gateprobe._redact import Redactor
from gateprobe.sse import ArrayElement, JsonArrayParser, SSEEvent, SSEParser
from gateprobe.stream_metrics import stream_metrics

__all__ = [
    "ACCEPT_ENCODING",
    "Exchange",
    "Limits",
    "RequestRecord",
    "exchange",
    "finish_stream",
    "looks_like_sse",
    "stream_parsers",
]


@dataclass(frozen=True)
class Limits:
    connect: float = 5.0  # seconds to establish the connection
    read: float = 30.0  # longest silence between two chunks
    total: float = 60.0  # the whole exchange, first byte sent to last byte read
    max_bytes: int = 8 * 1024 * 1024  # decoded body bytes kept; past this the read stops


@dataclass(frozen=True)
class RequestRecord:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None


@dataclass
class Exchange:
    request: RequestRecord
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""  # decoded (Content-Encoding undone)
    chunks: list[tuple[float, int]] = field(default_factory=list)  # (arrival s, wire size)
    events: list[SSEEvent] = field(default_factory=list)
    elements: list[ArrayElement] = field(default_factory=list)
    stream_problem: str | None = None  # a frame cut mid-way, a broken JSON array
    truncated: bool = False  # stopped reading at Limits.max_bytes
    error: str | None = None  # the transport failed: timeout, reset, protocol error
    disconnected: bool = False  # we hung up on purpose (``disconnect_after_events``)
    ttfb: float | None = None  # seconds to the first body byte
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON; raises ValueError with a short description when it is not."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            preview = self.text()[:80]
            raise ValueError(f"body is not JSON ({exc}); it starts with {preview!r}") from None

    def to_dict(self, redactor: Redactor) -> dict[str, Any]:
        """A masked, JSON-able record for reports and failure output.

        ``redactor`` learns the credentials this request carried by name first (an answer
        may quote a key set in a header of the scenario's own), then masks every field."""
        redactor.learn(self.request.headers, self.request.url)

        def masked(data: bytes) -> str:
            return _masked_preview(data, redactor)

        return {
            "request": {
                "method": self.request.method,
                "url": redactor.text(self.request.url),
                "headers": redactor.headers(self.request.headers),
                "body": masked(self.request.body or b""),
            },
            "status": self.status,
            "headers": redactor.headers(self.headers),
            "body": None if self.events or self.elements else masked(self.body),
            "events": [
                {
                    "index": e.index,
                    "t_ms": round(e.time * 1000, 3),
                    "event": redactor.text(e.event) if e.event else e.event,
                    "data": masked(e.data.encode()),
                    # the frame as received, when it is not just `event:` and `data:` lines
                    **({} if _plain_frame(e) else {"raw": masked(e.raw.encode())}),
                }
                for e in self.events
            ],
            "elements": [
                {
                    "index": e.index,
                    "t_ms": round(e.time * 1000, 3),
                    "text": masked(e.text.encode()),
                }
                for e in self.elements
            ],
            # a problem may quote the frame it met, an echoed key with it
            "stream_problem": redactor.text(self.stream_problem) if self.stream_problem else None,
            "truncated": self.truncated,
            "disconnected": self.disconnected,
            "error": redactor.text(self.error) if self.error else None,
            "ttfb_ms": None if self.ttfb is None else round(self.ttfb * 1000, 3),
            "elapsed_ms": round(self.elapsed * 1000, 3),
            # TTFT, gaps between output events, chunks and tokens (gateprobe/stream_metrics.py)
            "stream_metrics": self.stream_metrics(),
        }

    def stream_metrics(self) -> dict[str, Any] | None:
        """Timing and size figures of a streamed body; None for a plain one."""
        return stream_metrics(self.events, self.elements, self.chunks)


def _plain_frame(event: SSEEvent) -> bool:
    """Whether the frame's lines are exactly ``event: <name>`` and one ``data: <data>``."""
    plain = f"data: {event.data}"
    return event.raw in (plain, f"event: {event.event}\n{plain}")


def _preview(data: bytes, limit: int = 4096) -> str:
    text = data[:limit].decode("utf-8", errors="replace")
    return text + (f"… ({len(data) - limit} more bytes)" if len(data) > limit else "")


def _masked_preview(data: bytes, redactor: Redactor, limit: int = 4096) -> str:
    """``_preview`` of the masked text: masked before the cut, since a secret across the cut
    would keep its first part, too short to be recognised once cut."""
    if len(data) <= limit:
        return redactor.text(_preview(data, limit))
    margin = max((len(s) for s in redactor.secrets), default=0) + 256
    text = redactor.text(data[: limit + margin].decode("utf-8", errors="replace"))
    return text[:limit] + f"… ({len(data) - limit} more bytes)"


# -- content codings -----------------------------------------------------------------------
#
# The body is read as it came off the wire (``iter_raw``), so each network read keeps its
# arrival time and its size on the wire, and is decoded here, read by read, before it reaches
# the stream parsers: a gzipped event stream still yields its events as they arrive.


def _optional(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


_BROTLI = _optional("brotli") or _optional("brotlicffi")
_ZSTD = _optional("zstandard")
# Only the codings this module can undo are offered: a gateway may then compress with any of
# them, and one that sends another is wrong (a transport error), not misread.
ACCEPT_ENCODING = ", ".join(
    ["gzip", "deflate", *(["br"] if _BROTLI else []), *(["zstd"] if _ZSTD else [])]
)


class _DecodeError(Exception):
    """The body's content coding cannot be undone; the message says which and why."""


class _Decoder(Protocol):
    overflow: bool  # more output is pending than one read may give (a decompression bomb)

    def decode(self, data: bytes) -> bytes: ...

    def finish(self) -> bytes: ...


class _ZlibDecoder:
    """gzip (members may be concatenated) or deflate (zlib-wrapped, or raw as some servers send)."""

    def __init__(self, name: str, cap: int) -> None:
        self.name, self._cap = name, cap
        self._wbits = zlib.MAX_WBITS | 16 if name == "gzip" else zlib.MAX_WBITS
        self._obj = zlib.decompressobj(self._wbits)
        self._seen = False  # any input at all: an empty body is not a truncated one
        self._head: bytes | None = b""  # input before the first output: to retry deflate raw
        self.overflow = False

    def decode(self, data: bytes) -> bytes:
        if not data:
            return b""
        self._seen = True
        head = self._head + data if self._head is not None and self.name == "deflate" else b""
        out = self._decompress(data, head)
        self._head = None if out or len(head) > 65536 else head
        while self._obj.eof and self._obj.unused_data:
            rest = self._obj.unused_data
            if self.name != "gzip":
                raise _DecodeError(f"{len(rest)} bytes follow the end of the deflate data")
            self._obj = zlib.decompressobj(self._wbits)  # the next gzip member
            out += self._decompress(rest, b"")
        return out

    def _decompress(self, data: bytes, head: bytes) -> bytes:
        try:
            out = self._obj.decompress(data, self._cap)
        except zlib.error as exc:
            if self.name == "deflate" and self._wbits > 0 and head:
                # "deflate" means zlib-wrapped (RFC 9110), but some servers send it raw
                self._wbits = -zlib.MAX_WBITS
                self._obj = zlib.decompressobj(self._wbits)
                return self._decompress(head, b"")
            raise _DecodeError(f"the {self.name} data is corrupt ({exc})") from None
        if self._obj.unconsumed_tail:
            self.overflow = True
        return out

    def finish(self) -> bytes:
        if self._seen and not self._obj.eof:
            raise _DecodeError(f"the body ends inside its {self.name} data")
        return b""


class _BrotliDecoder:
    def __init__(self, cap: int) -> None:
        self._obj = _BROTLI.Decompressor()
        # brotli >= 1.2 can bound the output of one call; older versions cannot
        self._bounded = hasattr(self._obj, "can_accept_more_data")
        self._cap = cap
        self._seen = False
        self.overflow = False

    def decode(self, data: bytes) -> bytes:
        if not data:
            return b""
        self._seen = True
        try:
            if self._bounded:
                out = bytes(self._obj.process(data, output_buffer_limit=self._cap))
                self.overflow = self.overflow or not self._obj.can_accept_more_data()
                return out
            return bytes(self._obj.process(data))
        except Exception as exc:  # brotli and brotlicffi raise their own error classes
            raise _DecodeError(f"the br data is corrupt ({exc})") from None

    def finish(self) -> bytes:
        if self._seen and not self._obj.is_finished():
            raise _DecodeError("the body ends inside its br data")
        return b""


class _ZstdDecoder:
    def __init__(self) -> None:
        self._new = _ZSTD.ZstdDecompressor().decompressobj
        self._obj = self._new()
        self._seen = False
        self.overflow = False  # zstandard's decompressobj cannot bound its output

    def decode(self, data: bytes) -> bytes:
        if not data:
            return b""
        self._seen = True
        try:
            out = bytes(self._obj.decompress(data))
            while getattr(self._obj, "eof", False) and self._obj.unused_data:
                rest = self._obj.unused_data
                self._obj = self._new()  # the next frame
                out += bytes(self._obj.decompress(rest))
        except Exception as exc:  # zstandard.ZstdError, and whatever a version adds
            raise _DecodeError(f"the zstd data is corrupt ({exc})") from None
        return out

    def finish(self) -> bytes:
        if self._seen and not getattr(self._obj, "eof", True):
            raise _DecodeError("the body ends inside its zstd data")
        return b""


def _decoders(content_encoding: str, cap: int) -> list[_Decoder]:
    """The decoders of a Content-Encoding, in the order they undo it (last applied first)."""
    out: list[_Decoder] = []
    for token in reversed([t.strip().lower() for t in content_encoding.split(",")]):
        if token in ("", "identity"):
            continue
        if token in ("gzip", "x-gzip", "deflate"):
            out.append(_ZlibDecoder("deflate" if token == "deflate" else "gzip", cap))
        elif token == "br" and _BROTLI is not None:
            out.append(_BrotliDecoder(cap))
        elif token == "zstd" and _ZSTD is not None:
            out.append(_ZstdDecoder())
        else:
            raise _DecodeError(
                f"unsupported Content-Encoding {content_encoding!r} (gateprobe asked for "
                f"{ACCEPT_ENCODING}): the body was not decoded"
            )
    return out


def _decode(decoders: list[_Decoder], data: bytes, *, final: bool = False) -> bytes:
    for decoder in decoders:
        data = decoder.decode(data)
        if final:
            data += decoder.finish()
    return data


# -- stream kinds ---------------------------------------------------------------------------

# The start of an event stream: blank lines, then a comment or a field line (WHATWG: no
# leading spaces before a field name).
_SSE_START = re.compile(rb"\A(?:\xef\xbb\xbf)?[\r\n]*(?::|(?:data|event|id|retry)(?::|\r|\n|\Z))")


def looks_like_sse(body: bytes) -> bool:
    """Whether ``body`` starts the way an event stream does."""
    return _SSE_START.match(body) is not None


def stream_parsers(
    result: Exchange, asked: str | None
) -> tuple[SSEParser | None, JsonArrayParser | None]:
    """The parser a response's body goes through, given the stream the request asked for.

    ``asked`` is None, ``"sse"`` or ``"array"``. A body is read as SSE when it says it is
    one (Content-Type ``text/event-stream``), or when SSE was asked for and a 2xx came with
    another type: a wrong Content-Type is one defect, and the stream behind it is still judged
    (``finish_stream`` drops the events again when the body turns out not to be SSE).
    """
    status = result.status or 0
    if asked == "array" and status == 200:
        return None, JsonArrayParser()
    if result.content_type == "text/event-stream" or (asked == "sse" and 200 <= status < 300):
        return SSEParser(), None
    return None, None


def exchange(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    json_body: Any = None,
    content: bytes | None = None,
    limits: Limits = Limits(),  # frozen, so one shared default is safe
    json_array_stream: bool = False,
    sse_stream: bool = False,
    disconnect_after_events: int | None = None,
) -> Exchange:
    """Send one request and record everything; see the module docstring.

    ``json_array_stream`` and ``sse_stream`` say which stream the request asked for
    (``stream_parsers``). ``disconnect_after_events`` plays a client that hangs up mid-stream:
    once that many SSE events (or JSON array elements) have arrived the connection is closed
    and ``Exchange.disconnected`` is set.
    """
    body = content
    sent_headers = dict(headers or {})
    if json_body is not None and body is None:
        body = json.dumps(json_body).encode()
        if not any(k.lower() == "content-type" for k in sent_headers):
            sent_headers["content-type"] = "application/json"
    if not any(k.lower() == "accept-encoding" for k in sent_headers):
        sent_headers["accept-encoding"] = ACCEPT_ENCODING
    result = Exchange(RequestRecord(method, url, sent_headers, body))
    started = time.perf_counter()
    deadline = started + limits.total
    timeout = httpx.Timeout(
        connect=limits.connect,
        read=min(limits.read, limits.total),
        write=limits.total,
        pool=limits.connect,
    )
    try:
        request = client.build_request(
            method, url, headers=sent_headers, content=body, timeout=timeout
        )
        # the headers as they go on the wire, with those httpx adds (host, user-agent, …)
        result.request = RequestRecord(method, url, dict(request.headers.items()), body)
        response = client.send(request, stream=True)
    except httpx.TimeoutException as exc:
        result.error = f"{_timeout_kind(exc)} after {time.perf_counter() - started:.2f} s"
        result.elapsed = time.perf_counter() - started
        return result
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        result.error = f"transport error before a response: {_describe(exc)}"
        result.elapsed = time.perf_counter() - started
        return result
    try:
        result.status = response.status_code
        result.headers = {k.lower(): v for k, v in response.headers.items()}
        asked = "array" if json_array_stream else "sse" if sse_stream else None
        _read_body(response, result, asked, started, deadline, limits, disconnect_after_events)
    finally:
        response.close()
        result.elapsed = time.perf_counter() - started
    return result


def _read_body(
    response: httpx.Response,
    result: Exchange,
    asked: str | None,
    started: float,
    deadline: float,
    limits: Limits,
    disconnect_after_events: int | None = None,
) -> None:
    # one read may decode to at most this much: past it the body is over the limit anyway
    cap = limits.max_bytes + 1
    try:
        decoders = _decoders(result.headers.get("content-encoding", ""), cap)
    except _DecodeError as exc:
        result.error = str(exc)
        decoders = []
    # a body that cannot be decoded is kept as it came, and not read as a stream
    sse, array = stream_parsers(result, asked) if result.error is None else (None, None)
    parts: list[bytes] = []
    size = 0

    def keep(data: bytes, at: float) -> bool:
        """Keep and parse decoded bytes; False once the body passed the limit."""
        nonlocal size
        parts.append(data[: max(0, limits.max_bytes - size)])
        size += len(data)
        if sse is not None:
            sse.feed(data, at)
        elif array is not None:
            array.feed(data, at)
        if size > limits.max_bytes or any(d.overflow for d in decoders):
            result.truncated = True
            result.error = f"body larger than {limits.max_bytes} bytes: stopped reading"
            return False
        return True

    try:
        for chunk in response.iter_raw():
            now = time.perf_counter()
            at = now - started
            if result.ttfb is None:
                result.ttfb = at
            result.chunks.append((at, len(chunk)))  # the size on the wire
            try:
                data = _decode(decoders, chunk)
            except _DecodeError as exc:
                result.error = f"the body could not be decoded: {exc}"
                break
            if not keep(data, at):
                break
            if now > deadline:
                result.error = f"exchange exceeded its total limit of {limits.total:g} s"
                break
            if disconnect_after_events is not None:
                seen = len(sse.events) if sse is not None else len(array.elements) if array else 0
                if seen >= disconnect_after_events:
                    result.disconnected = True
                    break
        else:
            # the whole body arrived: whatever the decoders still hold is its end
            try:
                tail = _decode(decoders, b"", final=True)
            except _DecodeError as exc:
                result.error = f"the body could not be decoded: {exc}"
            else:
                if tail:
                    keep(tail, time.perf_counter() - started)
    except httpx.TimeoutException:
        result.error = f"no data for {limits.read:g} s while reading the body (read timeout)"
    except httpx.HTTPError as exc:
        result.error = f"the body was cut: {_describe(exc)}"
    result.body = b"".join(parts)
    finish_stream(result, sse, array, time.perf_counter() - started)


def finish_stream(
    result: Exchange, sse: SSEParser | None, array: JsonArrayParser | None, end: float
) -> None:
    """Close the stream's parser at ``end`` and record its events and what was left unfinished.

    A stream the client hung up on (``result.disconnected``) is not the gateway's problem. A
    body read as SSE only because SSE was asked for (``stream_parsers``) gives no events
    unless it looks like an event stream: a JSON answer is not a stream cut mid-frame.
    """
    if sse is not None:
        leftover = sse.close(end)
        if result.content_type != "text/event-stream" and not looks_like_sse(result.body):
            return
        result.events = sse.events
        if leftover is not None and not result.disconnected:
            result.stream_problem = f"the stream ended inside a frame: {leftover[:120]!r}"
    elif array is not None:
        problem = array.close(end)
        result.stream_problem = None if result.disconnected else problem
        result.elements = array.elements


def _timeout_kind(exc: httpx.TimeoutException) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return "connect timeout"
    if isinstance(exc, httpx.ReadTimeout):
        return "no response (read timeout)"
    if isinstance(exc, httpx.PoolTimeout):
        return "no free connection (pool timeout)"
    return "timeout"


def _describe(exc: httpx.HTTPError | httpx.InvalidURL) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"
