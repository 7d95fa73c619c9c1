"""What one event of an LLM stream (or one non-streamed answer) carried, by protocol name.

The knowledge is the API's (``gateprobe.protocols``: ``Api.classify``); these functions find
the API for callers that hold a protocol and an operation. The load generator's hot path
resolves its API once per request (``RequestTimer``) and calls it directly.
"""

from __future__ import annotations

from typing import Any

from gateprobe import protocols
from gateprobe.protocols import NOTHING, TERMINATED, VISIBLE, Delta, loads

__all__ = [
    "DONE",
    "NOTHING",
    "VISIBLE",
    "Delta",
    "classify_body",
    "classify_event",
    "classify_object",
    "loads",
]

DONE = TERMINATED


def classify_event(protocol: str, operation: str, event: str | None, data: str | bytes) -> Delta:
    """What one SSE event (or Gemini array element) of a stream carried."""
    return protocols.api(protocol, operation).classify_data(event, data)


def classify_object(protocol: str, operation: str, event: str | None, obj: Any) -> Delta:
    """``classify_event`` for an event whose JSON is already decoded."""
    return protocols.api(protocol, operation).classify_value(event, obj)


def classify_body(protocol: str, operation: str, body: bytes) -> Delta:
    """Output and input tokens of a non-streamed answer (embeddings: input tokens only)."""
    return protocols.api(protocol, operation).classify_answer(operation, body)
