"""The ``stream-usage-summed`` defect: a gateway that adds up a stream's usage reports.

A stream's usage is cumulative in every protocol (OpenAI's one usage chunk or
``response.completed``, Claude's ``message_start`` then ``message_delta``, Gemini's
``usageMetadata`` repeated on every chunk): the last report is the call's usage. one-api #415
summed the reports instead and overbilled. This reads the reports out of the frames the mock
sent and adds them up, as that gateway did; the defect charges (and logs) the sum.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["summed_usage"]


def _payloads(frame: bytes) -> Iterator[Any]:
    """The JSON of an SSE frame's ``data:`` lines, or of one element of a JSON array stream."""
    text = frame.decode("utf-8", errors="replace")
    lines = [line[5:] for line in text.splitlines() if line.startswith("data:")]
    if not lines:
        lines = [text.strip().lstrip("[,").rstrip("]").strip()]
    for line in lines:
        try:
            yield json.loads(line)
        except ValueError:
            continue


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _report(protocol: str, payload: Any) -> tuple[int, int] | None:
    """The (prompt, completion) tokens one event reports, or None when it reports none."""
    if not isinstance(payload, dict):
        return None
    if protocol == "gemini":
        meta = payload.get("usageMetadata")
        if not isinstance(meta, dict):
            return None
        candidates = _count(meta.get("candidatesTokenCount"))
        thoughts = _count(meta.get("thoughtsTokenCount"))
        return _count(meta.get("promptTokenCount")), candidates + thoughts
    usage = payload.get("usage")
    for holder in ("message", "response"):  # Claude's message_start, Responses' events
        inner = payload.get(holder)
        if isinstance(inner, dict) and isinstance(inner.get("usage"), dict):
            usage = inner["usage"]
    if not isinstance(usage, dict):
        return None
    prompt = _count(usage.get("prompt_tokens", usage.get("input_tokens")))
    output = _count(usage.get("completion_tokens", usage.get("output_tokens")))
    return prompt, output


def summed_usage(protocol: str, frames: Iterable[bytes]) -> tuple[int, int] | None:
    """Every usage report in ``frames`` added up; None when the stream reports no usage."""
    prompt = completion = 0
    seen = False
    for frame in frames:
        for payload in _payloads(frame):
            report = _report(protocol, payload)
            if report is not None:
                seen = True
                prompt += report[0]
                completion += report[1]
    return (prompt, completion) if seen else None
