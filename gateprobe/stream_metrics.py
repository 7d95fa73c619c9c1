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

from gateprobe import protocols
from gateprobe.sse import ArrayElement, SSEEvent

__all__ = ["OutputEvent", "carries_output", "output_events", "stream_metrics", "usage_tokens"]

OutputEvent = tuple[int, float]  # (event or element index, arrival in seconds)


def carries_output(name: str | None, text: str, *, visible: bool = False) -> bool:
    """Whether an event carries generated output (a token), not just framing or metadata.

    ``visible``: only output that is not reasoning (thinking deltas, thought parts). The
    record does not say which API answered, so the event's shape does (gateprobe/protocols/).
    """
    try:
        data = json.loads(text)
    except ValueError:
        return False
    api = protocols.api_of_event(name, data)
    return api is not None and api.carries_output(name, data, visible)


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
    for p in protocols.decoded(events, elements):
        api = protocols.api_of_event(p.name, p.data)
        if api is None:
            continue
        count = api.classify(p.name, p.data).output_tokens
        if count is not None:
            found = count
    return found


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
