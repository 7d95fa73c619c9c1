"""Per-request LLM timings from a response read as it arrives.

``RequestTimer`` is fed the body's bytes with their arrival times (``time.perf_counter()``)
and parses them incrementally with gateprobe's SSE / JSON-array parsers, so every event is
stamped when its last byte arrived. Definitions (all from the moment the request was sent):

    ttft_ms            first event carrying visible output (text, tool-call arguments);
                       role-only, empty and usage-only events do not count
    reasoning_ttft_ms  first event carrying reasoning output (``reasoning_content``,
                       Anthropic ``thinking``, Gemini ``thought`` parts), reported apart
    ttst_ms            second event carrying visible output
    itl_ms             every gap between consecutive visible-output events (a list); events
                       that arrive in the same read have a gap of 0 (a gateway coalescing
                       chunks shows up as such, not as faster tokens)
    tpot_ms            (last visible event - first visible event) / (visible tokens - 1)
    e2e_ms             until the body ended
    output_tokens      the server's usage when it sends one (``output_tokens_source: usage``);
                       otherwise an estimate: one token per output-carrying event
                       (``estimate``), which is exact for one-token chunks and low otherwise
    chunks             output-carrying events (visible + reasoning)

A request succeeds when the status is 2xx, the stream ends with its protocol's terminator
(``[DONE]``, ``message_stop``, ``response.completed``, a Gemini ``finishReason`` or closed
array) and no in-band error arrived. Otherwise ``error_class`` says why: ``http_<status>``,
``connection``, ``in_band_error``, ``truncated``, ``bad_stream``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, NamedTuple

from gateprobe.sse import JsonArrayParser, SSEParser

_loads: Callable[[bytes | str], Any]
try:  # a C JSON parser: a streaming user decodes the frames that need it
    from orjson import loads as _loads
except ImportError:  # pragma: no cover - orjson is a dependency; json is the fallback
    from json import loads as _loads

__all__ = [
    "Delta",
    "RequestTimer",
    "SSESplitter",
    "classify_body",
    "classify_event",
    "plain_openai_frames",
]


class Delta(NamedTuple):
    """What one stream event carried."""

    visible: bool = False
    reasoning: bool = False
    output_tokens: int | None = None
    reasoning_tokens: int | None = None
    error: str | None = None
    done: bool = False


# decoding the frames around a run of template frames beats counting them up to this size
AROUND_TEMPLATE_BYTES = 2048
_NOTHING = Delta()
_DONE = Delta(done=True)
_VISIBLE = Delta(visible=True)


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _openai_chat(obj: dict[str, Any]) -> Delta:
    if obj.get("error"):
        return Delta(error=_message(obj["error"]))
    visible = reasoning = False
    for choice in obj.get("choices") or ():
        delta = choice.get("delta")
        if not delta:
            continue
        if delta.get("content"):
            visible = True
        if delta.get("reasoning_content") or delta.get("reasoning"):
            reasoning = True
        for call in delta.get("tool_calls") or ():
            if (call.get("function") or {}).get("arguments"):
                visible = True
    usage = obj.get("usage")
    if not usage:  # the common case, without building a new tuple
        return _VISIBLE if visible and not reasoning else Delta(visible, reasoning)
    details = usage.get("completion_tokens_details") or {}
    return Delta(
        visible,
        reasoning,
        _int(usage.get("completion_tokens")),
        _int(details.get("reasoning_tokens")),
    )


def _openai_responses(event: str | None, obj: dict[str, Any]) -> Delta:
    kind = event or obj.get("type") or ""
    if kind in ("response.output_text.delta", "response.function_call_arguments.delta"):
        return Delta(visible=bool(obj.get("delta")))
    if kind in ("response.reasoning_text.delta", "response.reasoning_summary_text.delta"):
        return Delta(reasoning=bool(obj.get("delta")))
    if kind == "response.completed":
        usage = (obj.get("response") or {}).get("usage") or {}
        details = usage.get("output_tokens_details") or {}
        return Delta(
            output_tokens=_int(usage.get("output_tokens")),
            reasoning_tokens=_int(details.get("reasoning_tokens")),
            done=True,
        )
    if kind in ("response.failed", "error", "response.incomplete"):
        response = obj.get("response") or {}
        return Delta(error=_message(response.get("error") or obj.get("error") or obj) or kind)
    return _NOTHING


def _anthropic(event: str | None, obj: dict[str, Any]) -> Delta:
    kind = obj.get("type") or event or ""
    if kind == "content_block_delta":
        delta = obj.get("delta") or {}
        if delta.get("type") == "thinking_delta":
            return Delta(reasoning=bool(delta.get("thinking")))
        return Delta(visible=bool(delta.get("text") or delta.get("partial_json")))
    if kind == "message_delta":
        return Delta(output_tokens=_int((obj.get("usage") or {}).get("output_tokens")))
    if kind == "message_stop":
        return Delta(done=True)
    if kind == "error":
        return Delta(error=_message(obj.get("error") or obj))
    return _NOTHING


def _gemini(obj: dict[str, Any]) -> Delta:
    if obj.get("error"):
        return Delta(error=_message(obj["error"]))
    visible = reasoning = done = False
    for candidate in obj.get("candidates") or ():
        for part in (candidate.get("content") or {}).get("parts") or ():
            if part.get("thought") and part.get("text"):
                reasoning = True
            elif part.get("text") or part.get("functionCall"):
                visible = True
        if candidate.get("finishReason"):
            done = True
    usage = obj.get("usageMetadata") or {}
    out = _int(usage.get("candidatesTokenCount"))
    thoughts = _int(usage.get("thoughtsTokenCount"))
    if out is not None and thoughts:
        out += thoughts
    return Delta(visible, reasoning, out, thoughts, done=done)


def _message(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error.get("type") or error.get("status") or error)
    return str(error)


def classify_event(protocol: str, operation: str, event: str | None, data: str | bytes) -> Delta:
    """What one SSE event (or Gemini array element) of a stream carried."""
    if protocol == "openai" and data.strip() in (b"[DONE]", "[DONE]"):
        return _DONE
    try:
        obj = _loads(data)
    except ValueError:
        return Delta(error=f"event data is not JSON: {data[:80]!r}")
    if not isinstance(obj, dict):
        return _NOTHING
    if protocol == "anthropic":
        return _anthropic(event, obj)
    if protocol == "gemini":
        return _gemini(obj)
    if operation == "responses":
        return _openai_responses(event, obj)
    return _openai_chat(obj)


def classify_body(protocol: str, operation: str, body: bytes) -> Delta:
    """Output tokens of a non-streamed answer (input tokens for embeddings)."""
    try:
        obj = _loads(body)
    except ValueError:
        return Delta(error="the body is not JSON")
    if not isinstance(obj, dict):
        return Delta(error="the body is not a JSON object")
    if protocol == "gemini":
        usage = obj.get("usageMetadata") or {}
        return Delta(visible=True, output_tokens=_int(usage.get("candidatesTokenCount")))
    usage = obj.get("usage") or {}
    if operation == "embeddings":
        return Delta(visible=True, output_tokens=0)
    tokens = usage.get("completion_tokens", usage.get("output_tokens"))
    return Delta(visible=True, output_tokens=_int(tokens))


class SSESplitter:
    """``(event, data)`` of each SSE frame, as ``gateprobe.sse.SSEParser`` dispatches them.

    A lean path for the framing every LLM API uses (LF or CRLF line ends), on bytes, with
    no per-frame objects: a load generator parses every event of every stream, and the
    WHATWG-complete parser costs several times more. A stream with lone CR line ends hands
    over to ``SSEParser`` from the current frame on (tests check both agree).
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._hold_cr = False
        self._first = True
        self._fallback: SSEParser | None = None

    @property
    def idle(self) -> bool:
        """No partial frame is buffered: the next chunk starts a frame."""
        return not self._buffer and not self._hold_cr and self._fallback is None and not self._first

    def close(self, time: float) -> tuple[list[tuple[str | None, bytes | str]], bool]:
        """The events the end of the stream completes, and whether a frame was left cut."""
        if self._fallback is not None:
            self._fallback.events.clear()
            leftover = self._fallback.close(time)
            return [(e.event, e.data) for e in self._fallback.events], leftover is not None
        return [], bool(self._buffer.strip())

    def feed(self, chunk: bytes, time: float) -> list[tuple[str | None, bytes | str]]:
        complete = self.complete(chunk, time)
        return complete if isinstance(complete, list) else self.frames(complete)

    def complete(self, chunk: bytes, time: float) -> bytes | list[tuple[str | None, bytes | str]]:
        """The frames ``chunk`` completes, as LF-framed bytes (or, after a hand-over to
        ``SSEParser``, as its events)."""
        if self._fallback is not None:
            events = self._fallback.feed(chunk, time)
            self._fallback.events.clear()
            return [(e.event, e.data) for e in events]
        if self._first and chunk:
            chunk = chunk.removeprefix(b"\xef\xbb\xbf")
            self._first = False
        buffer = self._buffer + (b"\r" if self._hold_cr else b"") + chunk
        self._hold_cr = buffer.endswith(b"\r")
        if self._hold_cr:
            buffer = buffer[:-1]  # maybe the first half of a CRLF
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n")
            if b"\r" in buffer:  # lone CRs: the complete parser from this frame on
                self._fallback = SSEParser()
                self._buffer = b""
                return self.complete(buffer + (b"\r" if self._hold_cr else b""), time)
        head, separator, self._buffer = buffer.rpartition(b"\n\n")
        return head + separator

    @staticmethod
    def frames(complete: bytes) -> list[tuple[str | None, bytes | str]]:
        out: list[tuple[str | None, bytes | str]] = []
        for frame in complete.split(b"\n\n"):
            event: str | None = None
            data: list[bytes] = []
            for line in frame.split(b"\n"):
                if line.startswith(b"data"):
                    if line.startswith(b"data:"):
                        value = line[5:]
                        data.append(value[1:] if value.startswith(b" ") else value)
                    elif line == b"data":
                        data.append(b"")
                elif line.startswith(b"event:"):
                    value = line[6:]
                    event = (value[1:] if value.startswith(b" ") else value).decode(
                        "utf-8", "replace"
                    )
            if data:
                out.append((event, data[0] if len(data) == 1 else b"\n".join(data)))
        return out


def plain_openai_frames(complete: bytes) -> tuple[int, bool] | None:
    """(visible-content events, saw ``[DONE]``) of LF-framed OpenAI chat frames that are all
    plain text chunks, counted without decoding; None when a frame needs the full parse
    (errors, reasoning, tool calls, a usage object, a second choice, spaced JSON, comments).

    This is the hot path of a streaming load: a few C-level byte scans per socket read
    instead of a JSON decode per event. Inside a JSON string every quote and newline is
    escaped, so the quoted markers only match keys, and a blank line only ends a frame.
    """
    frames = complete.count(b"\n\n")
    done = complete.count(b"data: [DONE]")
    if complete.count(b"data: {") + done != frames:
        return None
    if b'"error"' in complete or b'"tool_calls"' in complete or b'"reasoning' in complete:
        return None
    if complete.count(b'"usage"') != complete.count(b'"usage":null'):
        return None
    if complete.count(b'"index":') != complete.count(b'"index":0'):
        return None
    content = complete.count(b'"content":"')
    if complete.count(b'"content"') != content:
        return None
    return content - complete.count(b'"content":""'), done > 0


class RequestTimer:
    """Timestamps one response's output events; ``record()`` gives the per-request figures."""

    def __init__(self, protocol: str, operation: str, stream: str | None, start: float) -> None:
        self.protocol = protocol
        self.operation = operation
        self.stream = stream
        self.start = start
        self.visible_times: list[float] = []
        self.reasoning_first: float | None = None
        self.reasoning_chunks = 0
        self.output_tokens: int | None = None
        self.reasoning_tokens: int | None = None
        self.error: str | None = None
        self.done = False
        self.bytes = 0
        self._sse = SSESplitter() if stream == "sse" else None
        self._openai_chat = protocol == "openai" and operation == "chat"
        self._template: tuple[bytes, bytes, int] | None = None
        self._array = JsonArrayParser() if stream == "array" else None
        self._body: list[bytes] = []

    def feed(self, chunk: bytes, time: float) -> None:
        self.bytes += len(chunk)
        if self._sse is not None:
            complete = self._sse.complete(chunk, time)
            if isinstance(complete, bytes):
                if not complete:
                    return
                if self._openai_chat:
                    self._feed_openai_block(complete, time)
                    return
                complete = SSESplitter.frames(complete)
            for event, data in complete:
                self._apply(classify_event(self.protocol, self.operation, event, data), time)
        elif self._array is not None:
            for element in self._array.feed(chunk, time):
                self._apply(classify_event(self.protocol, self.operation, None, element.text), time)
            self._array.elements.clear()
        else:
            self._body.append(chunk)

    def _feed_openai_block(self, complete: bytes, time: float) -> None:
        """Plain frames are counted; only the frames that need it are decoded.

        The frames of one stream differ only in their text: the run of frames that fit the
        stream's template (see _learn_template) is counted with a handful of byte scans and
        the few frames around it (the role chunk, the finish and usage chunks) are decoded.
        A block that does not fit is counted by plain_openai_frames, the usage chunk (which
        ends the stream) decoded; any other block is decoded.
        """
        span = self._template_span(complete)
        if span is not None:
            first, end, visible = span
            if first:
                self._decode(complete[:first], time)
            if visible:  # every event of one read has the same time: the order is kept
                self.visible_times.extend(itertools.repeat(time, visible))
            if end < len(complete):
                self._decode(complete[end:], time)
            return
        at = complete.find(b'"usage":{')
        if at < 0:
            counted = plain_openai_frames(complete)
            rest = b""
        else:
            before = complete.rfind(b"\n\n", 0, at)
            cut = before + 2 if before >= 0 else 0  # 0: the usage frame comes first
            counted = plain_openai_frames(complete[:cut]) if cut else (0, False)
            rest = complete[cut:]
        if counted is None:
            self._decode(complete, time)
            return
        if counted[0]:
            self.visible_times.extend(itertools.repeat(time, counted[0]))
        self.done = self.done or counted[1]
        if rest:
            self._decode(rest, time)

    def _template_span(self, block: bytes) -> tuple[int, int, int] | None:
        """(start, end, visible events) of the run of template frames in a block of
        complete frames, when the rest around it is small enough to decode; else None."""
        template = self._template or self._learn_template(block)
        if template is None:
            return None
        prefix = template[0]
        first = block.find(prefix)
        if first < 0 or (first and block[first - 2 : first] != b"\n\n"):
            return None
        end = block.find(b"\n\n", block.rfind(prefix)) + 2
        if first + len(block) - end > AROUND_TEMPLATE_BYTES:
            return None
        visible = self._template_run(block[first:end] if first or end < len(block) else block)
        if visible is None:
            self._template = None  # the stream changed its shape: learn again
            return None
        return first, end, visible

    def _template_run(self, run: bytes) -> int | None:
        """Visible events of a run made only of template frames (see _learn_template),
        checked with a handful of byte scans; None when it is not such a run."""
        assert self._template is not None
        prefix, suffix, quotes = self._template
        frames = run.count(b"\n\n")
        if (
            run.count(prefix) != frames
            or run.count(suffix) != frames
            or run.count(b'"') != frames * quotes  # no quote in any text
            or b"\\" + suffix in run  # a text ending in a backslash: decode
        ):
            return None
        return frames - run.count(prefix + suffix)

    def _learn_template(self, block: bytes) -> tuple[bytes, bytes, int] | None:
        """The bytes around the text of the block's first frame with visible text only (no
        reasoning, usage or error; decoded to check): the chunks of one stream differ only
        in their text (same id, created, model), so a run of frames that all have that
        prefix and suffix, with no other quote, is counted by a few byte scans."""
        marker = b'"content":"'
        at = block.find(marker)
        while at >= 0 and block[at + len(marker) : at + len(marker) + 1] == b'"':
            at = block.find(marker, at + len(marker))  # an empty text (the role chunk)
        if at < 0:
            return None
        start = block.rfind(b"\n\n", 0, at)
        start = start + 2 if start >= 0 else 0
        stop = block.find(b"\n\n", at)
        if stop < 0:
            return None
        frame = block[start : stop + 2]
        frames = SSESplitter.frames(frame)
        if (
            len(frames) != 1
            or frames[0][0] is not None
            or frame.count(b'"content"') != 1
            # visible output and nothing else: no reasoning, usage or error
            or classify_event(self.protocol, self.operation, None, frames[0][1]) is not _VISIBLE
        ):
            return None
        text = at - start + len(marker)
        end = frame.find(b'"', text)
        if end <= text or frame[end - 1 : end] == b"\\":
            return None
        prefix, suffix = frame[:text], frame[end:]
        self._template = (prefix, suffix, prefix.count(b'"') + suffix.count(b'"'))
        return self._template

    def _decode(self, block: bytes, time: float) -> None:
        for event, data in SSESplitter.frames(block):
            self._apply(classify_event(self.protocol, self.operation, event, data), time)

    def _apply(self, delta: Delta, time: float) -> None:
        if delta.visible:
            self.visible_times.append(time)
        if delta.reasoning:
            self.reasoning_chunks += 1
            if self.reasoning_first is None:
                self.reasoning_first = time
        if delta.output_tokens is not None:
            self.output_tokens = delta.output_tokens
        if delta.reasoning_tokens is not None:
            self.reasoning_tokens = delta.reasoning_tokens
        if delta.error is not None and self.error is None:
            self.error = delta.error
        if delta.done:
            self.done = True

    def finish(self, end: float, status: int) -> dict[str, Any]:
        """The per-request figures (milliseconds), with success judged as the module says."""
        error_class: str | None = None
        error = self.error
        if not 200 <= status < 300:
            error_class = "connection" if status == 0 else f"http_{status}"
        elif self._sse is not None:
            events, leftover = self._sse.close(end)
            for event, data in events:
                self._apply(classify_event(self.protocol, self.operation, event, data), end)
            error = self.error
            if error is not None:
                error_class = "in_band_error"
            elif not self.done:
                error_class = "truncated"
                error = "the stream ended without its terminator" + (
                    " (mid-frame)" if leftover else ""
                )
        elif self._array is not None:
            problem = self._array.close(end)
            if error is not None:
                error_class = "in_band_error"
            elif problem is not None:
                error_class = "truncated" if "not closed" in problem else "bad_stream"
                error = problem
        else:
            delta = classify_body(self.protocol, self.operation, b"".join(self._body))
            if delta.error is not None:
                error_class, error = "bad_stream", delta.error
            else:
                self.output_tokens = delta.output_tokens
        return self._record(end, status, error_class, error)

    def _record(
        self, end: float, status: int, error_class: str | None, error: str | None
    ) -> dict[str, Any]:
        ms = 1000.0
        times = self.visible_times
        streamed = self.stream is not None
        chunks = len(times) + self.reasoning_chunks
        tokens: int | None = self.output_tokens
        source = "usage"
        if tokens is None:
            tokens, source = (chunks if streamed else None), "estimate"
        visible_tokens: int | None = None
        if tokens is not None:
            visible_tokens = tokens - (self.reasoning_tokens or 0)
            if source == "estimate":
                visible_tokens = len(times)
        tpot = None
        if streamed and len(times) >= 2 and visible_tokens is not None and visible_tokens >= 2:
            tpot = (times[-1] - times[0]) * ms / (visible_tokens - 1)
        return {
            "ok": error_class is None,
            "status": status,
            "error_class": error_class,
            "error": error[:300] if error else None,
            "e2e_ms": round((end - self.start) * ms, 3),
            "ttft_ms": round((times[0] - self.start) * ms, 3) if streamed and times else None,
            "ttst_ms": round((times[1] - self.start) * ms, 3) if len(times) >= 2 else None,
            "reasoning_ttft_ms": (
                round((self.reasoning_first - self.start) * ms, 3)
                if self.reasoning_first is not None
                else None
            ),
            "itl_ms": [round((b - a) * ms, 3) for a, b in itertools.pairwise(times)],
            "tpot_ms": round(tpot, 3) if tpot is not None else None,
            "output_tokens": tokens,
            "output_tokens_source": source if tokens is not None else None,
            "reasoning_tokens": self.reasoning_tokens,
            "chunks": chunks,
            "bytes": self.bytes,
        }
