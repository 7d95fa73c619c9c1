"""The ``stream_error`` check: how a gateway reports an upstream failure around a stream.

``stream_error: before-first-byte`` (the upstream failed before sending anything, e.g. the
mock's ``--error-503``): a real non-2xx status with a JSON error body, not a 200 event stream
that carries the error (clients and SDKs only raise on the status).

``stream_error: mid-stream`` (the upstream failed after N chunks, e.g. ``--fail-after-3``):
 - the failure is told in-band, in the protocol's own frame: OpenAI chat ``data: {"error": …}``,
   Anthropic ``event: error``, Responses ``response.failed`` (or an ``error`` event), Gemini
   an element with ``error`` (Gemini defines no in-band error, so there its absence is a
   warning, not a failure);
 - nothing follows it, and nothing anywhere claims completion: no ``[DONE]``, no usage chunk,
   no ``finish_reason``/``stop_reason``/``finishReason``, no ``message_stop``, no
   ``response.completed`` (a fabricated end makes a truncated answer look whole);
 - no raw, unframed JSON appended to the event stream (new-api's Claude relay);
 - the stream ends: a gateway that, after the failure, sends nothing more and keeps the
   connection open (the read timed out after events had come) leaves the client waiting
   until its own timeout.

``stream_error: cut`` (the upstream ended the stream after N chunks without an error and
without its terminator, e.g. the mock's ``--cut-after-3``): the gateway must not fabricate
completion: no ``finish_reason``/``stop_reason``/``finishReason``, no ``[DONE]``, no
``message_stop``, no ``response.completed``, no usage chunk (in OpenAI chat only the end of a
complete answer carries usage). It may end the stream abruptly (a cut frame or an unclosed
Gemini array included) or report an error in-band: both pass. A stream it leaves open after
the cut fails as in ``mid-stream``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from gateprobe.checks._registry import CheckContext, check
from gateprobe.checks._stream_common import DONE, Payload, fail, guarded, payloads
from gateprobe.errors import CheckFailed

__all__: list[str] = []

CHECK = "stream_error"
MODES = ("before-first-byte", "mid-stream", "cut")
# How gateprobe.http reports a read that timed out (the limit in seconds is in it).
_READ_TIMEOUT = re.compile(r"no data for ([0-9.]+) s")


@check(
    "stream_error",
    argument={"enum": list(MODES), "description": f"one of {', '.join(MODES)}"},
    judges_the_end=True,
)
def stream_error(ctx: CheckContext, mode: Any) -> None:
    """An upstream failure before or during a stream is reported the protocol's way."""
    if mode not in MODES:
        raise CheckFailed(CHECK, f"stream_error takes one of {', '.join(MODES)}, not {mode!r}")
    if mode == "before-first-byte":
        _before_first_byte(ctx)
    elif mode == "cut":
        guarded(CHECK, lambda: _cut(ctx))
    else:
        guarded(CHECK, lambda: _mid_stream(ctx))


def _before_first_byte(ctx: CheckContext) -> None:
    exchange = ctx.exchange
    status = exchange.status or 0
    if 200 <= status < 300:
        shown = ""
        events = exchange.events or exchange.elements
        if events:
            first = events[0]
            text = first.data if hasattr(first, "data") else first.text
            label = "event" if exchange.events else "element"
            shown = f"; {label}[0] carries it: {text[:120]}"
        raise fail(
            f"an upstream error before the first byte came as HTTP {status} "
            f"{exchange.content_type or 'without a content type'}{shown}",
            "status",
            "a non-2xx status with a JSON error",
            status,
            check=CHECK,
        )
    if exchange.content_type == "text/event-stream":
        raise fail(
            f"the HTTP {status} error came as an event stream; expected a JSON error body",
            "headers.content-type",
            "application/json",
            exchange.content_type,
            check=CHECK,
        )
    try:
        body = exchange.json()
    except ValueError as exc:
        raise fail(str(exc), "body", "a JSON error", exchange.text()[:120], check=CHECK) from None
    if not isinstance(body, dict) or "error" not in body:
        raise fail(
            f"the HTTP {status} body has no error object",
            "body.error",
            "an error object",
            body,
            check=CHECK,
        )


def _started(ctx: CheckContext, what: str) -> None:
    status = ctx.exchange.status
    if status != 200:
        raise fail(
            f"expected the stream to start (HTTP 200) before the upstream {what}, got "
            f"HTTP {status}",
            "status",
            200,
            status,
            check=CHECK,
        )


def _hung(ctx: CheckContext, events: list[Payload], what: str) -> bool:
    """Records a failure and says True when the gateway left the stream open, silent.

    A read timeout after events came (the step's ``read_timeout``, or the target's) means the
    gateway neither went on nor closed the stream after the upstream's failure.
    """
    error = ctx.exchange.error or ""
    found = _READ_TIMEOUT.match(error)
    if found is None or not (ctx.exchange.events or ctx.exchange.elements):
        return False
    last = events[-1].label if events else "none"
    ctx.fail(
        fail(
            f"after the upstream {what} the gateway sent nothing more for {found.group(1)} s "
            f"and did not close the stream (last event: {last}); a client waits until its own "
            f"timeout",
            "end of stream",
            "the stream ends (an in-band error, or closed) soon after the upstream failure",
            error,
            check=CHECK,
        )
    )
    return True


def _cut(ctx: CheckContext) -> None:
    """The upstream cut the stream: nothing may claim the answer was complete."""
    _started(ctx, "cut the stream")
    events = payloads(ctx, CHECK)
    api = ctx.api(events)
    _hung(ctx, events, "cut the stream")
    for p in events:
        claim = api.claims_completion(p)
        if claim is not None:
            ctx.fail(
                fail(
                    f"{p.label} carries {claim} although the upstream cut the stream: a "
                    f"truncated answer must not look complete",
                    p.label,
                    "no completion marker in a cut stream (an abrupt end or an in-band error)",
                    claim,
                    check=CHECK,
                )
            )
            return  # the first claim says it; the ones after it are the same fabrication


def _mid_stream(ctx: CheckContext) -> None:
    exchange = ctx.exchange
    _started(ctx, "failed")
    kind = "element" if exchange.elements else "event"
    count = len(exchange.events or exchange.elements)
    if exchange.stream_problem:
        tail = exchange.body.decode("utf-8", "replace").rstrip()[-160:]
        after = f"after {kind}[{count - 1}]" if count else "before any event"
        raise fail(
            f"raw text outside any frame {after} (the error must be framed as an event): "
            f"{tail.splitlines()[-1] if tail else exchange.stream_problem}",
            f"{kind}[{count}]" if count else "body",
            "a protocol-framed error event",
            exchange.stream_problem,
            check=CHECK,
        )
    events = payloads(ctx, CHECK)
    api = ctx.api(events)
    hung = _hung(ctx, events, "failed mid-stream")
    errors = [p for p in events if api.is_error(p)]
    first_error = events.index(errors[0]) if errors else len(events)
    for position, p in enumerate(events):
        claim = api.claims_completion(p)
        if claim is None:
            continue
        if position > first_error:
            raise fail(
                f"{p.label} ({claim}) comes after the in-band error at {errors[0].label}: "
                f"a fabricated end makes the truncated answer look complete",
                p.label,
                f"nothing after {errors[0].label}",
                claim,
                check=CHECK,
            )
        raise fail(
            f"{p.label} carries {claim} although the upstream failed: a truncated stream "
            f"must not look complete",
            p.label,
            "no completion marker in a failed stream",
            claim,
            check=CHECK,
        )
    if not errors:
        if hung:
            return  # it did not end: "ended without an error" would say the wrong thing
        last = f"after {events[-1].label}" if events else "before any event"
        if not api.in_band_error_required:
            # Gemini defines no in-band error: a stream that just ends (new-api, LiteLLM) is
            # allowed, if nothing in it claimed completion (checked above); Google's own API
            # sends an element with ``error``, so its absence is worth a warning
            ctx.warn(
                CheckFailed(
                    CHECK,
                    f"the stream ended {last} without an error element: the client cannot tell "
                    f"a failure from a cut connection",
                    expected=api.in_band_error,
                    where="end of stream",
                )
            )
            return
        raise fail(
            f"no in-band error: the stream ended {last} without telling the client it failed",
            "end of stream",
            api.in_band_error,
            None,
            check=CHECK,
        )
    error = errors[0]
    framing = api.error_frame_problem(error)
    if framing is not None:
        raise fail(framing, f"{error.label}.event", "error", error.name, check=CHECK)
    if error is not events[-1]:
        following = events[events.index(error) + 1]
        shown = DONE if following.data == DONE else following.type or json.dumps(following.data)
        raise fail(
            f"{following.label} ({shown[:80]}) comes after the in-band error at {error.label}: "
            f"nothing may follow it",
            following.label,
            f"nothing after {error.label}",
            shown,
            check=CHECK,
        )
