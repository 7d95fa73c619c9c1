"""Stream checks: the wire grammar of each protocol's event stream, and time to first event."""

from __future__ import annotations

import json
from typing import Any

from gateprobe.checks._registry import CheckContext, check
from gateprobe.errors import CheckFailed

__all__: list[str] = []


def _fail(message: str, where: str, expected: Any = None, actual: Any = None) -> CheckFailed:
    return CheckFailed("stream", message, expected=expected, actual=actual, where=where)


def _payloads(ctx: CheckContext) -> list[tuple[int, str | None, Any]]:
    """(index, event name, parsed data) of every event; '[DONE]' stays a string."""
    out: list[tuple[int, str | None, Any]] = []
    if ctx.stream == "array":
        for element in ctx.exchange.elements:
            try:
                out.append((element.index, None, json.loads(element.text)))
            except ValueError:
                raise _fail(
                    "an array element is not JSON",
                    f"element[{element.index}]",
                    "JSON",
                    element.text[:80],
                ) from None
        return out
    for event in ctx.exchange.events:
        if event.data == "[DONE]":
            out.append((event.index, event.event, "[DONE]"))
            continue
        try:
            out.append((event.index, event.event, json.loads(event.data)))
        except ValueError:
            raise _fail(
                "an event's data is not JSON", f"event[{event.index}]", "JSON", event.data[:80]
            ) from None
    return out


def _openai_chat(events: list[tuple[int, str | None, Any]]) -> None:
    done = [i for i, _, data in events if data == "[DONE]"]
    if len(done) != 1:
        raise _fail(f"expected exactly one data: [DONE], got {len(done)}", "events", 1, len(done))
    if events[-1][2] != "[DONE]":
        raise _fail("data: [DONE] is not the last event", f"event[{done[0]}]")
    ids: set[Any] = set()
    finishes: dict[int, int] = {}
    for index, _, data in events[:-1]:
        if not isinstance(data, dict):
            raise _fail("a chunk is not a JSON object", f"event[{index}]")
        if "error" in data:
            raise _fail(
                f"the stream carries an error: {str(data['error'])[:120]}", f"event[{index}]"
            )
        if data.get("object") != "chat.completion.chunk":
            raise _fail(
                "object is not chat.completion.chunk",
                f"event[{index}].object",
                "chat.completion.chunk",
                data.get("object"),
            )
        ids.add(data.get("id"))
        for choice in data.get("choices") or []:
            if choice.get("finish_reason") is not None:
                key = int(choice.get("index", 0))
                finishes[key] = finishes.get(key, 0) + 1
    if len(ids) != 1:
        raise _fail("the chunk id changes within one stream", "events[*].id", 1, len(ids))
    if not finishes or any(count != 1 for count in finishes.values()):
        raise _fail(
            "each choice needs exactly one non-null finish_reason",
            "events[*].choices[*].finish_reason",
            1,
            finishes or 0,
        )


def _openai_responses(events: list[tuple[int, str | None, Any]]) -> None:
    terminal = {"response.completed", "response.incomplete", "response.failed"}
    last_sequence = -1
    ends = 0
    for index, name, data in events:
        if data == "[DONE]":
            raise _fail("a Responses stream must not send [DONE]", f"event[{index}]")
        kind = data.get("type") if isinstance(data, dict) else None
        if name is not None and name != kind:
            raise _fail(
                f"event name {name!r} differs from data.type {kind!r}",
                f"event[{index}].type",
                name,
                kind,
            )
        sequence = data.get("sequence_number") if isinstance(data, dict) else None
        if not isinstance(sequence, int) or sequence <= last_sequence:
            raise _fail(
                "sequence_number does not increase strictly",
                f"event[{index}].sequence_number",
                f"> {last_sequence}",
                sequence,
            )
        last_sequence = sequence
        ends += kind in terminal
    if ends != 1:
        raise _fail(f"expected exactly one terminal event, got {ends}", "events", 1, ends)


def _anthropic(events: list[tuple[int, str | None, Any]]) -> None:
    kinds = []
    for index, name, data in events:
        if data == "[DONE]":
            raise _fail("an Anthropic stream must not send [DONE]", f"event[{index}]")
        kind = data.get("type") if isinstance(data, dict) else None
        if name != kind:
            raise _fail(
                f"event name {name!r} differs from data.type {kind!r}",
                f"event[{index}].type",
                name,
                kind,
            )
        if kind == "error":
            raise _fail(
                f"the stream carries an error: {str(data.get('error'))[:120]}", f"event[{index}]"
            )
        kinds.append((index, kind))
    significant = [(i, k) for i, k in kinds if k != "ping"]
    if not significant or significant[0][1] != "message_start":
        raise _fail(
            "the first event is not message_start",
            "event[0]",
            "message_start",
            significant[0][1] if significant else None,
        )
    if significant[-1][1] != "message_stop":
        raise _fail(
            "the last event is not message_stop",
            f"event[{significant[-1][0]}]",
            "message_stop",
            significant[-1][1],
        )
    open_block = False
    for index, kind in significant:
        if kind == "content_block_start":
            if open_block:
                raise _fail("a block starts before the previous one stopped", f"event[{index}]")
            open_block = True
        elif kind == "content_block_delta" and not open_block:
            raise _fail(
                "a delta outside any content block",
                f"event[{index}]",
                "content_block_start first",
                kind,
            )
        elif kind == "content_block_stop":
            if not open_block:
                raise _fail("content_block_stop without a started block", f"event[{index}]")
            open_block = False


def _gemini(events: list[tuple[int, str | None, Any]], kind: str) -> None:
    for index, _, data in events:
        label = f"element[{index}]" if kind == "array" else f"event[{index}]"
        if data == "[DONE]":
            raise _fail("a Gemini stream must not send [DONE]", label)
        if not isinstance(data, dict):
            raise _fail("an element is not a JSON object", label)
        if "error" in data:
            raise _fail(f"the stream carries an error: {str(data['error'])[:120]}", label)
        if "candidates" not in data and "promptFeedback" not in data:
            raise _fail("an element has no candidates", f"{label}.candidates")
    # Gemini streams have no terminator: the finishReason (or a blocked prompt) ends them.
    finished = any(
        isinstance(data, dict)
        and (
            any(isinstance(c, dict) and c.get("finishReason") for c in data.get("candidates") or [])
            or bool((data.get("promptFeedback") or {}).get("blockReason"))
        )
        for _, _, data in events
    )
    if not finished:
        raise _fail(
            "no candidate carries a finishReason: the stream was cut short",
            "events[*].candidates[*].finishReason",
            "a finishReason",
            None,
        )


@check("stream")
def stream(ctx: CheckContext, wanted: Any) -> None:
    """The response is a complete, well-formed stream of its protocol (framing and grammar)."""
    if not wanted:
        return
    exchange = ctx.exchange
    expected_type = "application/json" if ctx.stream == "array" else "text/event-stream"
    if exchange.content_type != expected_type:
        raise _fail(
            f"expected Content-Type {expected_type}, got {exchange.content_type or 'none'}",
            "headers.content-type",
            expected_type,
            exchange.content_type,
        )
    if exchange.stream_problem:
        raise _fail(exchange.stream_problem, "end of stream")
    events = _payloads(ctx)
    if not events:
        raise _fail("the stream carried no events", "events", "at least one event", 0)
    if ctx.protocol == "anthropic":
        _anthropic(events)
    elif ctx.protocol == "gemini":
        _gemini(events, ctx.stream or "sse")
    elif any(name and name.startswith("response.") for _, name, _ in events):
        _openai_responses(events)
    else:
        _openai_chat(events)


def _carries_output(protocol: str | None, name: str | None, text: str) -> bool:
    """Whether an event carries generated output (a token), not just framing or metadata."""
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip() != "[DONE]"
    if not isinstance(data, dict):
        return False
    kind: str = data["type"] if isinstance(data.get("type"), str) else name or ""
    if protocol == "anthropic":
        return kind == "content_block_delta"
    if kind.startswith("response."):
        return kind.endswith(".delta")
    if "candidates" in data:
        return any(
            isinstance(c, dict) and (c.get("content") or {}).get("parts")
            for c in data["candidates"] or []
        )
    for choice in data.get("choices") or []:
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if isinstance(delta, dict) and any(
            delta.get(field)
            for field in ("content", "tool_calls", "function_call", "refusal", "reasoning_content")
        ):
            return True
    return False


@check("max_ttft_ms")
def max_ttft_ms(ctx: CheckContext, limit: float) -> None:
    """The first token (first event carrying output) arrives within the given milliseconds.

    Framing that gateways send before any output (an OpenAI role chunk, Anthropic's
    message_start, ping and content_block_start) does not count; a stream in which no event
    carries output is timed by its first event.
    """
    frames = [(e.index, e.time, e.event, e.data) for e in ctx.exchange.events] + [
        (e.index, e.time, None, e.text) for e in ctx.exchange.elements
    ]
    if not frames:
        raise CheckFailed(
            "max_ttft_ms",
            "no event arrived",
            expected=f"<= {limit} ms",
            actual=None,
            where="events",
        )
    label = "element" if ctx.exchange.elements else "event"
    output = [f for f in frames if _carries_output(ctx.protocol, f[2], f[3])]
    index, at, _, _ = output[0] if output else frames[0]
    actual = at * 1000
    if actual > float(limit):
        raise CheckFailed(
            "max_ttft_ms",
            f"first token after {actual:.1f} ms ({label}[{index}]), limit {limit} ms",
            expected=f"<= {limit} ms",
            actual=round(actual, 1),
            where=f"{label}[{index}]",
        )
