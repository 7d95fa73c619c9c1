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
    input_tokens       the server's usage of the prompt, when it sends one (OpenAI chat's
                       usage chunk, Responses' ``response.completed``, Anthropic's
                       ``message_start``, Gemini's ``usageMetadata``, a plain body's usage)
    chunks             output-carrying events (visible + reasoning)

The figures are a ``record.TimedRecord``. A request succeeds when the status is 2xx, the
stream ends with its protocol's terminator (``[DONE]``, ``message_stop``,
``response.completed``, a Gemini ``finishReason`` or closed array) and no in-band error
arrived. Otherwise ``error_class`` says why: ``http_<status>``,
``connection``, ``in_band_error``, ``truncated``, ``bad_stream``.
"""

from __future__ import annotations

import itertools
from typing import Any

from gateprobe import protocols
from gateprobe.load.framing import (
    AROUND_TEMPLATE_BYTES,
    ArraySplitter,
    ChunkTemplate,
    Element,
    ElementTemplate,
    SSESplitter,
    plain_openai_frames,
)
from gateprobe.load.record import TimedRecord
from gateprobe.protocols import VISIBLE, Delta, loads

__all__ = ["RequestTimer"]


class RequestTimer:
    """Timestamps one response's output events; ``record()`` gives the per-request figures."""

    def __init__(
        self,
        protocol: str,
        operation: str,
        stream: str | None,
        start: float,
        template: ChunkTemplate | ElementTemplate | None = None,
    ) -> None:
        """``template``: the ``template`` of an earlier stream of the same request, used
        instead of learning one again (see ChunkTemplate and ElementTemplate)."""
        self.protocol = protocol
        self.operation = operation
        self.stream = stream
        self.start = start
        self.visible_times: list[float] = []
        self.reasoning_first: float | None = None
        self.reasoning_chunks = 0
        self.output_tokens: int | None = None
        self.reasoning_tokens: int | None = None
        self.input_tokens: int | None = None
        self.error: str | None = None
        self.done = False
        self.bytes = 0
        self._sse = SSESplitter() if stream == "sse" else None
        # resolved once: every event of the stream is the API's to classify
        self._api = api = protocols.api(protocol, operation)
        self._classify = api.classify_data
        self._counts_plain = api.plain_frames_countable  # see plain_openai_frames
        self._templated = api.output_marker is not None  # see ChunkTemplate
        self._chunk_template: ChunkTemplate | None = None
        self._earlier = template if isinstance(template, ChunkTemplate) else None
        self._array = (
            ArraySplitter(template if isinstance(template, ElementTemplate) else None)
            if stream == "array"
            else None
        )
        self._body: list[bytes] = []

    def feed(self, chunk: bytes, time: float) -> None:
        self.bytes += len(chunk)
        if self._sse is not None:
            complete = self._sse.complete(chunk, time)
            if isinstance(complete, bytes):
                if not complete:
                    return
                if self._templated:
                    self._feed_block(complete, time)
                    return
                complete = SSESplitter.frames(complete)
            for event, data in complete:
                self._apply(self._classify(event, data), time)
        elif self._array is not None:
            self._apply_elements(self._array.feed(chunk, time), time)
        else:
            self._body.append(chunk)

    def _feed_block(self, complete: bytes, time: float) -> None:
        """Plain frames are counted; only the frames that need it are decoded.

        The text events of one stream differ only in their text: the run of frames that fit
        the stream's template (see ``ChunkTemplate``) is counted with a handful of byte scans
        and the few frames around it (OpenAI's role, finish and usage chunks, Anthropic's
        message and block starts and stops) are decoded. An OpenAI block that does not fit
        is counted by plain_openai_frames, the usage chunk (which ends the stream) decoded;
        any other block is decoded.
        """
        span = self._template_span(complete)
        if span is not None:
            first, end, visible = span
            if first:
                self._decode(complete[:first], time)
            if visible:  # every event of one read has the same time: the order is kept
                self.visible_times.extend(itertools.repeat(time, visible))
            template = self._chunk_template
            if template is not None and template.usage:  # Gemini: usage in every chunk
                self._usage_of(template.last_frame(complete[first:end]))
            if end < len(complete):
                self._decode(complete[end:], time)
            return
        if not self._counts_plain:
            self._decode(complete, time)
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
        """(start, end, visible events) of the block's run of template frames (see
        ``ChunkTemplate``), learning or recalling the stream's template first."""
        template = self._chunk_template
        if template is None:
            earlier = self._earlier
            template = (earlier.recall(block) if earlier is not None else None) or (
                ChunkTemplate.learn(block, self._api)
            )
            if template is None:
                return None
            self._chunk_template = template
        span = template.span(block, AROUND_TEMPLATE_BYTES if self._counts_plain else None)
        if span is None:
            return None
        first, end, visible = span
        if visible is None:
            self._chunk_template = None  # the stream changed its shape: learn again
            return None
        return first, end, visible

    @property
    def template(self) -> ChunkTemplate | ElementTemplate | None:
        """What this stream taught about its text events, for the next stream of the same
        request (see ChunkTemplate and ElementTemplate)."""
        if self._array is not None:
            return self._array.template
        return self._chunk_template

    def _apply_elements(self, elements: list[Element], time: float) -> None:
        api = self._api
        usage_from: Element | None = None  # the last counted element, when its usage is
        for element in elements:
            if element.counted:
                if element.visible:
                    self.visible_times.append(time)
                usage_from = element
                continue
            if element.json_text is not None:  # from the complete parser
                delta = api.classify_data(None, element.json_text)
            else:
                delta = api.classify_value(None, element.value)
                self._learn_element(element, delta)
            self._apply(delta, time)
            if (
                delta.output_tokens is not None
                or delta.reasoning_tokens is not None
                or delta.input_tokens is not None
            ):
                usage_from = None
        if usage_from is not None and usage_from.raw is not None:
            self._usage_of_value(loads(usage_from.raw))

    def _learn_element(self, element: Element, delta: Delta) -> None:
        array, key = self._array, self._api.output_marker
        if array is None or array.template is not None or element.raw is None or key is None:
            return
        if delta._replace(output_tokens=None, reasoning_tokens=None, input_tokens=None) == VISIBLE:
            array.template = ElementTemplate.learn(element.raw, key)

    def _usage_of(self, frame: bytes) -> None:
        """The token counts of a counted frame (its output is counted already)."""
        for event, data in SSESplitter.frames(frame):
            self._usage_of_value(loads(data), event)

    def _usage_of_value(self, value: Any, event: str | None = None) -> None:
        delta = self._api.classify_value(event, value)
        if delta.output_tokens is not None:
            self.output_tokens = delta.output_tokens
        if delta.reasoning_tokens is not None:
            self.reasoning_tokens = delta.reasoning_tokens
        if delta.input_tokens is not None:
            self.input_tokens = delta.input_tokens

    def _decode(self, block: bytes, time: float) -> None:
        for event, data in SSESplitter.frames(block):
            self._apply(self._classify(event, data), time)

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
        if delta.input_tokens is not None:
            self.input_tokens = delta.input_tokens
        if delta.error is not None and self.error is None:
            self.error = delta.error
        if delta.done:
            self.done = True

    def finish(self, end: float, status: int) -> TimedRecord:
        """The per-request figures (milliseconds), with success judged as the module says."""
        error_class: str | None = None
        error = self.error
        if not 200 <= status < 300:
            error_class = "connection" if status == 0 else f"http_{status}"
        elif self._sse is not None:
            events, leftover = self._sse.close(end)
            for event, data in events:
                self._apply(self._classify(event, data), end)
            error = self.error
            if error is not None:
                error_class = "in_band_error"
            elif not self.done:
                error_class = "truncated"
                error = "the stream ended without its terminator" + (
                    " (mid-frame)" if leftover else ""
                )
        elif self._array is not None:
            elements, problem = self._array.close(end)
            self._apply_elements(elements, end)
            error = self.error
            if error is not None:
                error_class = "in_band_error"
            elif problem is not None:
                error_class = "truncated" if "not closed" in problem else "bad_stream"
                error = problem
        else:
            delta = self._api.classify_answer(self.operation, b"".join(self._body))
            if delta.error is not None:
                error_class, error = "bad_stream", delta.error
            else:
                self.output_tokens = delta.output_tokens
                self.input_tokens = delta.input_tokens
        return self._record(end, status, error_class, error)

    def _record(
        self, end: float, status: int, error_class: str | None, error: str | None
    ) -> TimedRecord:
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
            # events of one read share their time: their gap is 0 without a rounding
            "itl_ms": [
                round((b - a) * ms, 3) if b != a else 0.0 for a, b in itertools.pairwise(times)
            ],
            "tpot_ms": round(tpot, 3) if tpot is not None else None,
            "output_tokens": tokens,
            "output_tokens_source": source if tokens is not None else None,
            "reasoning_tokens": self.reasoning_tokens,
            "input_tokens": self.input_tokens,
            "chunks": chunks,
            "bytes": self.bytes,
        }
