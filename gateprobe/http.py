"""One HTTP exchange with a gateway, recorded whole and never raising.

``exchange()`` sends a request and returns an ``Exchange``: the request, the status, the
headers, the body (or, for a stream, every chunk with its arrival time and the parsed
events), timings, and, when the transport failed, what went wrong. A gateway that hangs,
resets, sends garbage or a huge body, or cuts a stream yields an Exchange with ``error``
set within the deadline, never an exception, so a check can fail with a clear message and
the run goes on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from gateprobe._redact import Redactor
from gateprobe.sse import ArrayElement, JsonArrayParser, SSEEvent, SSEParser
from gateprobe.stream_metrics import stream_metrics

__all__ = ["Exchange", "Limits", "RequestRecord", "exchange", "finish_stream"]


@dataclass(frozen=True)
class Limits:
    connect: float = 5.0  # seconds to establish the connection
    read: float = 30.0  # longest silence between two chunks
    total: float = 60.0  # the whole exchange, first byte sent to last byte read
    max_bytes: int = 8 * 1024 * 1024  # body bytes kept; past this the read stops


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
    body: bytes = b""
    chunks: list[tuple[float, int]] = field(default_factory=list)  # (arrival s, size)
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
        """A masked, JSON-able record for reports and failure output."""
        return {
            "request": {
                "method": self.request.method,
                "url": redactor.text(self.request.url),
                "headers": redactor.headers(self.request.headers),
                "body": redactor.text(_preview(self.request.body or b"")),
            },
            "status": self.status,
            "headers": redactor.headers(self.headers),
            "body": None if self.events or self.elements else redactor.text(_preview(self.body)),
            "events": [
                {
                    "index": e.index,
                    "t_ms": round(e.time * 1000, 3),
                    "event": e.event,
                    "data": redactor.text(_preview(e.data.encode())),
                    # the frame as received, when it is not just `event:` and `data:` lines
                    **({} if _plain_frame(e) else {"raw": redactor.text(_preview(e.raw.encode()))}),
                }
                for e in self.events
            ],
            "elements": [
                {
                    "index": e.index,
                    "t_ms": round(e.time * 1000, 3),
                    "text": redactor.text(_preview(e.text.encode())),
                }
                for e in self.elements
            ],
            "stream_problem": self.stream_problem,
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


def _stream_kind(content_type: str) -> str | None:
    if content_type == "text/event-stream":
        return "sse"
    return None


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
    disconnect_after_events: int | None = None,
) -> Exchange:
    """Send one request and record everything; see the module docstring.

    ``disconnect_after_events`` plays a client that hangs up mid-stream: once that many SSE
    events (or JSON array elements) have arrived the connection is closed and
    ``Exchange.disconnected`` is set.
    """
    body = content
    sent_headers = dict(headers or {})
    if json_body is not None and body is None:
        body = json.dumps(json_body).encode()
        sent_headers.setdefault("content-type", "application/json")
    record = RequestRecord(method, url, sent_headers, body)
    result = Exchange(record)
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
        response = client.send(request, stream=True)
    except httpx.TimeoutException as exc:
        result.error = f"{_timeout_kind(exc)} after {time.perf_counter() - started:.2f} s"
        result.elapsed = time.perf_counter() - started
        return result
    except httpx.HTTPError as exc:
        result.error = f"transport error before a response: {_describe(exc)}"
        result.elapsed = time.perf_counter() - started
        return result
    try:
        result.status = response.status_code
        result.headers = {k.lower(): v for k, v in response.headers.items()}
        kind = _stream_kind(result.content_type)
        if json_array_stream and result.status == 200:
            kind = "array"
        _read_body(response, result, kind, started, deadline, limits, disconnect_after_events)
    finally:
        response.close()
        result.elapsed = time.perf_counter() - started
    return result


def _read_body(
    response: httpx.Response,
    result: Exchange,
    kind: str | None,
    started: float,
    deadline: float,
    limits: Limits,
    disconnect_after_events: int | None = None,
) -> None:
    sse = SSEParser() if kind == "sse" else None
    array = JsonArrayParser() if kind == "array" else None
    parts: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_raw():
            now = time.perf_counter()
            at = now - started
            if result.ttfb is None:
                result.ttfb = at
            result.chunks.append((at, len(chunk)))
            keep = chunk[: max(0, limits.max_bytes - size)]
            parts.append(keep)
            size += len(chunk)
            if sse is not None:
                sse.feed(chunk, at)
            elif array is not None:
                array.feed(chunk, at)
            if size > limits.max_bytes:
                result.truncated = True
                result.error = f"body larger than {limits.max_bytes} bytes: stopped reading"
                break
            if now > deadline:
                result.error = f"exchange exceeded its total limit of {limits.total:g} s"
                break
            if disconnect_after_events is not None:
                seen = len(sse.events) if sse is not None else len(array.elements) if array else 0
                if seen >= disconnect_after_events:
                    result.disconnected = True
                    break
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

    A stream the client hung up on (``result.disconnected``) is not the gateway's problem.
    """
    if sse is not None:
        leftover = sse.close(end)
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


def _describe(exc: httpx.HTTPError) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"
