"""What the stream checks share: events parsed once, failures that name the event index."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from gateprobe.checks._registry import CheckContext
from gateprobe.protocols import DONE, GrammarOptions, Payload, fail

__all__ = ["DONE", "Payload", "fail", "grammar_options", "guarded", "payloads", "request_body"]


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


def grammar_options(ctx: CheckContext) -> GrammarOptions:
    """What a stream grammar needs of the step: the body sent and the target's dialect."""
    return GrammarOptions(request_body(ctx), ctx.target.dialect.usage_chunk_by_default)


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
