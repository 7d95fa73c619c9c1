"""The ``stream`` check: a streamed answer read the way a strict client reads it, event by event.

Severity of each rule (docs: suites/streaming/README.md):

    MUST (fails)   Content-Type ``text/event-stream`` (``application/json`` for Gemini's JSON
                   array); no ``Content-Length``; the stream ends on a frame boundary; every
                   event is JSON valid against the protocol's event schema; the protocol's
                   grammar (gateprobe/protocols/: openai_chat, openai_responses, anthropic, gemini)
    SHOULD (warns) ``Cache-Control: no-cache``: no protocol requires it, but a proxy may cache
                   or buffer an event stream without it (LiteLLM #28384); a MUST for a
                   target claiming ``stream.cache_control``

Failures name the event (``event[3]``) or array element (``element[3]``) they are about. Each
independent rule reports its own failure (``CheckContext.fail``): Content-Type, Content-Length,
the framing, the grammar and the event schema; within one grammar the first violation stops
that grammar. A stream sent with the wrong Content-Type is still read as one and judged.
"""

from __future__ import annotations

from typing import Any

from gateprobe.checks._registry import FLAG, CheckContext, check
from gateprobe.checks._stream_common import (
    DONE,
    Payload,
    fail,
    grammar_options,
    guarded,
    payloads,
)
from gateprobe.errors import CheckFailed
from gateprobe.http import looks_like_sse

__all__ = ["check_headers", "event_schema"]


def check_headers(ctx: CheckContext, check_name: str = "stream") -> None:
    """Content-Type and Content-Length (MUST: each its own failure, recorded with
    ``ctx.fail``), Cache-Control (SHOULD: a warning)."""
    exchange = ctx.exchange
    expected = "application/json" if ctx.stream == "array" else "text/event-stream"
    if exchange.content_type != expected:
        ctx.fail(
            fail(
                f"expected Content-Type {expected}, got {exchange.content_type or 'none'}",
                "headers.content-type",
                expected,
                exchange.content_type,
                check=check_name,
            )
        )
    length = exchange.headers.get("content-length")
    if length is not None:
        ctx.fail(
            fail(
                f"a stream must not carry Content-Length (got {length}): the whole body was "
                f"known before it was sent, so it was buffered",
                "headers.content-length",
                "absent",
                length,
                check=check_name,
            )
        )
    cache_control = exchange.headers.get("cache-control", "").lower()
    if expected == "text/event-stream" and "no-cache" not in cache_control:
        finding = CheckFailed(
            check_name,
            "no Cache-Control: no-cache on an event stream: a proxy may cache or buffer it",
            expected="no-cache",
            actual=exchange.headers.get("cache-control"),
            where="headers.cache-control",
        )
        # a MUST only for a target that claims it (capability stream.cache_control)
        (ctx.fail if ctx.target.claims("stream.cache_control") else ctx.warn)(finding)


def event_schema(ctx: CheckContext, events: list[Payload]) -> str:
    return ctx.api(events).stream_schema


def _validate(ref: str, events: list[Payload]) -> None:
    from gateprobe.schemas import validation_errors

    for p in events:
        if p.data == DONE or not isinstance(p.data, dict):
            continue  # the grammar reports these
        if "error" in p.data or p.type == "error":
            continue  # an in-band error is the grammar's (and stream_error's) finding
        errors = validation_errors(ref, p.data)
        if errors:
            where, message = errors[0]
            raise fail(
                f"{p.label} does not match {ref}: {p.label}{where.removeprefix('$')}: {message}",
                p.label + where.removeprefix("$"),
                ref,
                message,
            )


@check("stream", argument=FLAG)
def stream(ctx: CheckContext, wanted: Any) -> None:
    """The response is a complete, well-formed stream of its protocol (framing and grammar)."""
    if not wanted:
        return
    # Headers, framing, grammar and schema are judged apart and each reports its own finding
    # (ctx.fail): a wrong Content-Type or a schema nit on one chunk must not hide a broken
    # grammar, nor the other way round.
    check_headers(ctx)
    exchange = ctx.exchange
    if exchange.stream_problem:
        last = len(exchange.events or exchange.elements) - 1
        ctx.fail(
            fail(
                f"{exchange.stream_problem} (after event[{last}])"
                if exchange.events
                else exchange.stream_problem,
                "end of stream",
            )
        )
    try:
        events = payloads(ctx)
    except CheckFailed as failed:  # an event that is not JSON: nothing more can be read
        ctx.fail(failed)
        return
    if not events:
        if not exchange.stream_problem:  # a broken framing already says why there are none
            ctx.fail(_no_events(ctx))
        return
    # the grammar first: its messages say what is wrong in the protocol's terms; the schema
    # then catches what the grammar does not look at
    api = ctx.api(events)
    options = grammar_options(ctx)
    try:
        guarded("stream", lambda: api.check_stream(events, options))
    except CheckFailed as failed:
        ctx.fail(failed)
    try:
        _validate(event_schema(ctx, events), events)
    except CheckFailed as failed:
        ctx.fail(failed)


def _no_events(ctx: CheckContext) -> CheckFailed:
    body = ctx.exchange.body
    if ctx.stream != "array" and body.strip() and not looks_like_sse(body):
        preview = body[:80].decode("utf-8", errors="replace")
        return fail(
            f"the stream carried no events: the body is not an event stream; it starts with "
            f"{preview!r}",
            "events",
            "at least one event",
            0,
        )
    return fail("the stream carried no events", "events", "at least one event", 0)
