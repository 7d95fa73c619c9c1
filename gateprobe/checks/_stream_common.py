"""What the stream checks share: events parsed once, failures that name the event index."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from gateprobe.checks._registry import CheckContext
from gateprobe.errors import CheckFailed

__all__ = ["DONE", "Payload", "fail", "guarded", "is_responses", "payloads", "request_body"]

DONE = "[DONE]"


@dataclass(frozen=True)
class Payload:
    index: int
    name: str | None  # the SSE ``event:`` field; None for data-only frames and array elements
    data: Any  # the parsed JSON; the string "[DONE]" for OpenAI's terminator
    label: str  # "event[3]" or "element[3]": how failures name it
    time: float  # arrival, seconds from the request

    @property
    def type(self) -> str | None:
        kind = self.data.get("type") if isinstance(self.data, dict) else None
        return kind if isinstance(kind, str) else None


def fail(
    message: str, where: str, expected: Any = None, actual: Any = None, *, check: str = "stream"
) -> CheckFailed:
    return CheckFailed(check, message, expected=expected, actual=actual, where=where)


def payloads(ctx: CheckContext, check: str = "stream") -> list[Payload]:
    """Every event (or array element) with its JSON parsed; raises on the first that is not JSON."""
    out: list[Payload] = []
    for element in ctx.exchange.elements:
        label = f"element[{element.index}]"
        try:
            out.append(Payload(element.index, None, json.loads(element.text), label, element.time))
        except ValueError:
            raise fail(
                f"{label} is not JSON", label, "JSON", element.text[:80], check=check
            ) from None
    for event in ctx.exchange.events:
        label = f"event[{event.index}]"
        if event.data.strip() == DONE:
            out.append(Payload(event.index, event.event, DONE, label, event.time))
            continue
        try:
            out.append(Payload(event.index, event.event, json.loads(event.data), label, event.time))
        except ValueError:
            raise fail(
                f"{label}'s data is not JSON", label, "JSON", event.data[:80], check=check
            ) from None
    return out


def request_body(ctx: CheckContext) -> dict[str, Any]:
    """The JSON body this step sent ({} when there was none or it was not an object)."""
    try:
        body = json.loads(ctx.exchange.request.body or b"")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def is_responses(ctx: CheckContext, events: list[Payload]) -> bool:
    """An OpenAI Responses stream (not chat): by the path, else by its event types."""
    path = urlsplit(ctx.exchange.request.url).path.rstrip("/")
    if path.endswith("/responses"):
        return True
    if path.endswith("/chat/completions"):
        return False
    return any((p.type or p.name or "").startswith("response.") for p in events)


def guarded(check_name: str, run: Callable[[], None]) -> None:
    """Run a check's rules; an event of a shape they did not foresee fails, never crashes."""
    try:
        run()
    except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
        raise fail(
            f"an event has an unexpected shape ({type(exc).__name__}: {exc})",
            "events",
            "events of the protocol's shape",
            str(exc)[:120],
            check=check_name,
        ) from None
