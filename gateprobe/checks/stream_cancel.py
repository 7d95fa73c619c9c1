"""The ``stream_cancelled`` check: a client that hangs up mid-stream is seen to have gone.

The step hangs up (``disconnect_after_events: N``); the check then asks the bundled mock's
admin API (``GET /_gateprobe/usage``, the target's ``admin`` key) how it recorded the request
(found by the response's request-id header) and expects the cancellation: status 499, ``end:
client gone``. Billing consequences are the quota suite's. Only the bundled mock (as the
target, or a gateway in front of it that forwards the request id) can answer this.
"""

from __future__ import annotations

import time
from typing import Any

from gateprobe.checks._registry import FLAG, CheckContext, check
from gateprobe.errors import CheckFailed

__all__: list[str] = []

CHECK = "stream_cancelled"
WAIT_SECONDS = 3.0  # the mock logs the request when its handler ends, just after the hang-up


def _fail(message: str, where: str, expected: Any = None, actual: Any = None) -> CheckFailed:
    return CheckFailed(CHECK, message, expected=expected, actual=actual, where=where)


def _record(ctx: CheckContext, request_id: str) -> dict[str, Any] | None:
    assert ctx.call is not None
    spec = {"method": "GET", "path": "/_gateprobe/usage?limit=200", "key": "admin"}
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        answer = ctx.call(spec)
        if answer.status != 200:
            raise _fail(
                f"the mock's admin API answered HTTP {answer.status} to GET /_gateprobe/usage",
                "admin",
                200,
                answer.status,
            )
        try:
            records = answer.json().get("records") or []
        except (ValueError, AttributeError):
            records = []
        for record in records:
            if isinstance(record, dict) and record.get("request_id") == request_id:
                return record
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)


@check("stream_cancelled", argument=FLAG)
def stream_cancelled(ctx: CheckContext, wanted: Any) -> None:
    """The mock observed the client's mid-stream hang-up (needs disconnect_after_events)."""
    if not wanted:
        return
    exchange = ctx.exchange
    count = len(exchange.events or exchange.elements)
    label = "element" if exchange.elements else "event"
    if not exchange.disconnected:
        raise _fail(
            f"the client did not hang up (the stream ended after {count} {label}s): give the "
            f"step disconnect_after_events",
            "request.disconnect_after_events",
            "a hang-up mid-stream",
            None,
        )
    if ctx.call is None:
        raise _fail("no target to ask about the cancellation", "call")
    header = ctx.target.dialect.request_id_header
    request_id = exchange.headers.get(header)
    if not request_id:
        raise _fail(f"no {header} header: cannot find the request in the mock's log", header)
    record = _record(ctx, request_id)
    hung_up = f"{label}[{count - 1}]"
    if record is None:
        raise _fail(
            f"the mock has no record of request {request_id} {WAIT_SECONDS:g} s after the "
            f"client hung up at {hung_up}",
            "admin usage",
            request_id,
            None,
        )
    if record.get("status") != 499 or record.get("end") != "client gone":
        raise _fail(
            f"the client hung up after {hung_up}, but the mock logged request {request_id} as "
            f"HTTP {record.get('status')} with {record.get('completion_tokens')} completion "
            f"tokens: it did not notice the cancellation",
            hung_up,
            "status 499, end: client gone",
            {k: record.get(k) for k in ("status", "end", "completion_tokens")},
        )
