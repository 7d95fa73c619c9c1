"""The Gemini ``streamGenerateContent`` stream grammar (used by the ``stream`` check).

Rules (all MUST; each failure names the event or array element):
 1. without ``alt=sse`` a JSON array (``application/json``) whose elements are objects; with
    ``alt=sse`` ``data:`` events; never ``[DONE]``;
 2. every element has ``candidates`` (or a ``promptFeedback`` for a blocked prompt) and no
    ``error``;
 3. some candidate carries a ``finishReason`` (or the prompt was blocked): the stream was not
    cut short (Gemini has no terminator; the end of the body is the signal);
 4. ``usageMetadata`` counts never fall from one element to the next: the last one is
    authoritative.
"""

from __future__ import annotations

from typing import Any

from gateprobe.checks._stream_common import DONE, Payload, fail

__all__ = ["check_gemini_stream"]

COUNTS = ("promptTokenCount", "candidatesTokenCount", "thoughtsTokenCount", "totalTokenCount")


def check_gemini_stream(events: list[Payload]) -> None:
    for p in events:
        if p.data == DONE:
            raise fail(f"a Gemini stream must not send data: [DONE] ({p.label})", p.label)
        if not isinstance(p.data, dict):
            raise fail(f"{p.label} is not a JSON object", p.label, "an object", p.data)
        if "error" in p.data:
            raise fail(
                f"{p.label} carries an error: {str(p.data['error'])[:120]}",
                f"{p.label}.error",
                "no error",
                p.data["error"],
            )
        if "candidates" not in p.data and "promptFeedback" not in p.data:
            raise fail(f"{p.label} has no candidates", f"{p.label}.candidates")
    if not any(_finished(p.data) for p in events):
        raise fail(
            f"no candidate carries a finishReason: the stream was cut short after "
            f"{events[-1].label}",
            "events[*].candidates[*].finishReason",
            "a finishReason",
            None,
        )
    _usage(events)


def _finished(data: dict[str, Any]) -> bool:
    candidates = data.get("candidates") or []
    if any(isinstance(c, dict) and c.get("finishReason") for c in candidates):
        return True
    return bool((data.get("promptFeedback") or {}).get("blockReason"))


def _usage(events: list[Payload]) -> None:
    previous: dict[str, tuple[int, str]] = {}
    for p in events:
        meta = p.data.get("usageMetadata")
        if not isinstance(meta, dict):
            continue
        for name in COUNTS:
            value = meta.get(name)
            if not isinstance(value, int):
                continue
            before = previous.get(name)
            if before is not None and value < before[0]:
                raise fail(
                    f"{p.label}.usageMetadata.{name} fell from {before[0]} ({before[1]}) to "
                    f"{value}: usage must be cumulative, the last one authoritative",
                    f"{p.label}.usageMetadata.{name}",
                    f">= {before[0]}",
                    value,
                )
            previous[name] = (value, p.label)
