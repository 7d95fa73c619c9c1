"""Timing checks: time to first token, and whether a stream is delivered incrementally.

What counts as output (a token) and how the figures are measured: gateprobe/stream_metrics.py.
"""

from __future__ import annotations

from typing import Any

from gateprobe.checks._registry import CheckContext, check
from gateprobe.errors import CheckFailed
from gateprobe.stream_metrics import output_events

__all__: list[str] = []

DEFAULT_MIN_SPREAD_MS = 50.0


@check(
    "max_ttft_ms",
    argument={"type": "number", "exclusiveMinimum": 0, "description": "milliseconds (> 0)"},
)
def max_ttft_ms(ctx: CheckContext, limit: float) -> None:
    """The first token (first event carrying output) arrives within the given milliseconds.

    Framing that gateways send before any output (an OpenAI role chunk, Anthropic's
    message_start, ping and content_block_start) does not count; a stream in which no event
    carries output is timed by its first event.
    """
    exchange = ctx.exchange
    frames = [(e.index, e.time) for e in exchange.events] + [
        (e.index, e.time) for e in exchange.elements
    ]
    if not frames:
        raise CheckFailed(
            "max_ttft_ms",
            "no event arrived",
            expected=f"<= {limit} ms",
            actual=None,
            where="events",
        )
    label = "element" if exchange.elements else "event"
    output = output_events(exchange.events, exchange.elements)
    index, at = output[0] if output else frames[0]
    actual = at * 1000
    if actual > float(limit):
        raise CheckFailed(
            "max_ttft_ms",
            f"first token after {actual:.1f} ms ({label}[{index}]), limit {limit} ms",
            expected=f"<= {limit} ms",
            actual=round(actual, 1),
            where=f"{label}[{index}]",
        )


@check(
    "stream_incremental",
    argument={
        "anyOf": [
            {"type": "boolean"},
            {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "min_spread_ms": {
                        "type": "number",
                        "minimum": 0,
                        "description": "milliseconds (>= 0)",
                    }
                },
            },
        ],
        "description": "true, false or {min_spread_ms: N}",
    },
)
def stream_incremental(ctx: CheckContext, wanted: Any) -> None:
    """Output events arrive spread over time, not all at once (no buffering on the way).

    ``true``, or ``{min_spread_ms: N}``: the first output event must arrive at least N ms
    (default 50) before the last. Use it with a paced upstream (the mock's ``--itl-50``), or a
    fast upstream would legitimately deliver everything at once.
    """
    if not wanted:
        return
    spread = DEFAULT_MIN_SPREAD_MS
    if isinstance(wanted, dict):
        spread = float(wanted.get("min_spread_ms", spread))
    exchange = ctx.exchange
    label = "element" if exchange.elements else "event"
    output = output_events(exchange.events, exchange.elements)
    if len(output) < 2:
        raise CheckFailed(
            "stream_incremental",
            f"only {len(output)} output event(s): cannot tell an incremental stream from a "
            f"buffered one (ask for more chunks, e.g. --chunks-10)",
            expected="at least 2 output events",
            actual=len(output),
            where=f"{label}s",
        )
    (first, first_at), (last, last_at) = output[0], output[-1]
    actual = (last_at - first_at) * 1000
    if actual < spread:
        chunks = len(exchange.chunks)
        raise CheckFailed(
            "stream_incremental",
            f"the first output event ({label}[{first}], +{first_at * 1000:.1f} ms) arrived only "
            f"{actual:.1f} ms before the last ({label}[{last}], +{last_at * 1000:.1f} ms), in "
            f"{chunks} network chunk(s): the stream was buffered, not delivered incrementally",
            expected=f">= {spread:g} ms between the first and last output event",
            actual=round(actual, 1),
            where=f"{label}[{first}]..{label}[{last}]",
        )
