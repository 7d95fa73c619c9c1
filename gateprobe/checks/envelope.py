"""The error envelope check: an error answer in the shape its route's clients expect."""

from __future__ import annotations

from typing import Any

from gateprobe import protocols
from gateprobe.checks._registry import CheckContext, check
from gateprobe.checks.basic import json_body
from gateprobe.errors import CheckFailed

__all__: list[str] = []


@check(
    "error_envelope",
    argument={
        "anyOf": [{"const": True}, {"enum": list(protocols.PROTOCOLS)}],
        "description": (
            f"true (the target's envelope for the route) or {', '.join(protocols.PROTOCOLS)}"
        ),
    },
)
def error_envelope(ctx: CheckContext, wanted: Any) -> None:
    """A non-2xx JSON error in the route's envelope (the target's dialect, or the one named)."""
    route = protocols.primary(ctx.protocol).protocol
    kind = (
        wanted if isinstance(wanted, str) else ctx.target.dialect.error_envelope.get(route, route)
    )
    status = ctx.exchange.status
    if status is not None and status < 400:
        raise CheckFailed(
            "error_envelope",
            f"an error came with HTTP status {status}",
            expected="a 4xx or 5xx status",
            actual=status,
            where="status",
        )
    if ctx.exchange.content_type != "application/json":
        raise CheckFailed(
            "error_envelope",
            f"the error is {ctx.exchange.content_type or 'untyped'}, not JSON",
            expected="application/json",
            actual=ctx.exchange.content_type,
            where="headers.content-type",
        )
    problems = protocols.primary(kind).envelope_problems(json_body(ctx, "error_envelope"), status)
    if problems:
        where, message = problems[0]
        raise CheckFailed(
            "error_envelope",
            f"not a valid {kind} error envelope: {where}: {message}",
            expected=f"{kind} envelope",
            actual=message,
            where=where,
        )
