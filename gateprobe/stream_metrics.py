"""Per-request stream timing: TTFT, gaps between output events, chunks and tokens.

Definitions (see ../shared/reference/load-testing.md, "chunk != token"):

    ttft_ms          request sent -> first event that carries output (a content, reasoning,
                     tool-argument delta); framing such as an OpenAI role chunk, Anthropic's
                     message_start/ping/content_block_start or a Responses ``response.created``
                     does not count
    visible_ttft_ms  the same, to the first output that is not reasoning (what a user sees
                     first from a thinking model; equal to ttft_ms otherwise)
    gaps_ms          the time between consecutive output events (inter-event latency; one
                     event may carry several tokens, so this is not a per-token figure)
    output_events    events that carry output; ``events`` counts every event
    network_chunks   body reads as they arrived from the socket (a buffering proxy shows as
                     few large chunks)
    output_tokens    the server's own count from the stream's usage, when it sent one
    tokens_per_event output_tokens / output_events, when both are known

Times are from the moment the request was sent, in the clock the exchange recorded.
"""

from __future__ import annotations

import itertools
import json
import statistics
from collections.abc import Sequence
from typing import Any

from gateprobe.sse import ArrayElement, SSEEvent

__all__ = ["OutputEvent", "carries_output", "output_events", "stream_metrics", "usage_tokens"]

OutputEvent = tuple[int, float]  # (event or element index, arrival in seconds)

_VISIBLE_FIELDS = ("content", "tool_calls", "function_call", "refusal")
_DELTA_FIELDS = (*_VISIBLE_FIELDS, "reasoning_content", "reasoning")


def carries_output(name: str | None, text: str, *, visible: bool = False) -> bool:
    """Whether an event carries generated output (a token), not just framing or metadata.

    ``visible``: only output that is not reasoning (thinking deltas, thought parts).
    """
    try:
        data = json.loads(text)
    except ValueError:
        return False
    if not isinstance(data, dict):
        return False
    kind: str = data["type"] if isinstance(data.get("type"), str) else name or ""
    if kind == "content_block_delta":  # Anthropic
        delta = data.get("delta")
        kind_of_delta = delta.get("type") if isinstance(delta, dict) else None
        return not visible or kind_of_delta not in ("thinking_delta", "signature_delta")
    if kind.startswith("response."):  # OpenAI Responses
        return kind.endswith(".delta") and not (visible and ".reasoning" in kind)
    if "candidates" in data:  # Gemini
        return any(
            isinstance(c, dict)
            and any(
                isinstance(p, dict)
                and (p.get("text") or p.get("functionCall"))
                and not (visible and p.get("thought"))
                for p in ((c.get("content") or {}).get("parts") or [])
            )
            for c in data["candidates"] or []
        )
    for choice in data.get("choices") or []:  # OpenAI chat
        delta = choice.get("delta") if isinstance(choice, dict) else None
        fields = _VISIBLE_FIELDS if visible else _DELTA_FIELDS
        if isinstance(delta, dict) and any(delta.get(f) for f in fields):
            return True
    return False


def output_events(
    events: Sequence[SSEEvent], elements: Sequence[ArrayElement], *, visible: bool = False
) -> list[OutputEvent]:
    frames = [(e.index, e.time) for e in events if carries_output(e.event, e.data, visible=visible)]
    return frames + [
        (e.index, e.time) for e in elements if carries_output(None, e.text, visible=visible)
    ]


def usage_tokens(events: Sequence[SSEEvent], elements: Sequence[ArrayElement]) -> int | None:
    """The output tokens the server reported last in the stream (usage is cumulative)."""
    found: int | None = None
    texts = [e.data for e in events] + [e.text for e in elements]
    for text in texts:
        try:
            data = json.loads(text)
        except ValueError:
            continue
        if not isinstance(data, dict):
            continue
        count = _tokens_in(data)
        if count is not None:
            found = count
    return found


def _tokens_in(data: dict[str, Any]) -> int | None:
    usage = data.get("usage")
    if isinstance(usage, dict):  # OpenAI chat usage chunk, Anthropic message_delta
        value = usage.get("completion_tokens", usage.get("output_tokens"))
        return value if isinstance(value, int) else None
    message = data.get("message") or data.get("response")  # message_start, response.completed
    if isinstance(message, dict) and isinstance(message.get("usage"), dict):
        value = message["usage"].get("output_tokens")
        return value if isinstance(value, int) else None
    meta = data.get("usageMetadata")  # Gemini
    if isinstance(meta, dict):
        total = sum(
            v
            for k, v in meta.items()
            if k in ("candidatesTokenCount", "thoughtsTokenCount") and isinstance(v, int)
        )
        return total
    return None


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def stream_metrics(
    events: Sequence[SSEEvent],
    elements: Sequence[ArrayElement],
    chunks: Sequence[tuple[float, int]],
) -> dict[str, Any] | None:
    """The figures above for one recorded stream; None when the response was not a stream."""
    if not events and not elements:
        return None
    output = output_events(events, elements)
    visible = output_events(events, elements, visible=True)
    gaps = [_ms(b[1] - a[1]) for a, b in itertools.pairwise(output)]
    tokens = usage_tokens(events, elements)
    label = "element" if elements else "event"
    metrics: dict[str, Any] = {
        "ttft_ms": _ms(output[0][1]) if output else None,
        "ttft_at": f"{label}[{output[0][0]}]" if output else None,
        "visible_ttft_ms": _ms(visible[0][1]) if visible else None,
        "output_span_ms": _ms(output[-1][1] - output[0][1]) if output else None,
        "events": len(events) + len(elements),
        "output_events": len(output),
        "network_chunks": len(chunks),
        "output_tokens": tokens,
        "tokens_per_event": round(tokens / len(output), 3) if tokens and output else None,
        "gaps_ms": None,
    }
    if gaps:
        ordered = sorted(gaps)
        metrics["gaps_ms"] = {
            "count": len(gaps),
            "min": ordered[0],
            "median": round(statistics.median(ordered), 3),
            "mean": round(statistics.fmean(ordered), 3),
            "p90": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
            "max": ordered[-1],
        }
    return metrics
