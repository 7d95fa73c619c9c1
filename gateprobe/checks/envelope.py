"""The error envelope check: an error answer in the shape its route's clients expect."""

from __future__ import annotations

from typing import Any

from gateprobe.checks._registry import CheckContext, check
from gateprobe.checks.basic import json_body
from gateprobe.errors import CheckFailed

__all__ = ["ANTHROPIC_ERROR_TYPES"]

ANTHROPIC_ERROR_TYPES = frozenset(
    {
        "invalid_request_error",
        "authentication_error",
        "billing_error",
        "permission_error",
        "not_found_error",
        "request_too_large",
        "rate_limit_error",
        "api_error",
        "timeout_error",
        "overloaded_error",
    }
)


def _problems(kind: str, body: Any, status: int | None) -> list[tuple[str, str]]:
    if not isinstance(body, dict):
        return [("$", "the body is not a JSON object")]
    if kind == "anthropic":
        error = body.get("error")
        out = []
        if body.get("type") != "error":
            out.append(("$.type", f"expected 'error', got {body.get('type')!r}"))
        if not isinstance(error, dict):
            return [*out, ("$.error", "missing or not an object")]
        if error.get("type") not in ANTHROPIC_ERROR_TYPES:
            out.append(
                ("$.error.type", f"{error.get('type')!r} is not a documented Anthropic error type")
            )
        if not isinstance(error.get("message"), str):
            out.append(("$.error.message", "missing or not a string"))
        return out
    error = body.get("error")
    if not isinstance(error, dict):
        return [("$.error", "missing or not an object")]
    if kind == "gemini":
        out = []
        if not isinstance(error.get("code"), int) or isinstance(error.get("code"), bool):
            out.append(("$.error.code", "missing or not an integer"))
        elif status is not None and error["code"] != status:
            out.append(("$.error.code", f"{error['code']} differs from the HTTP status {status}"))
        for name in ("message", "status"):
            if not isinstance(error.get(name), str):
                out.append((f"$.error.{name}", "missing or not a string"))
        return out
    out = []
    for name in ("message", "type", "param", "code"):
        if name not in error:
            out.append(
                (f"$.error.{name}", "missing (OpenAI errors carry message, type, param and code)")
            )
    if "message" in error and not isinstance(error["message"], str):
        out.append(("$.error.message", "not a string"))
    return out


@check(
    "error_envelope",
    argument={
        "anyOf": [{"const": True}, {"enum": ["openai", "anthropic", "gemini"]}],
        "description": "true (the target's envelope for the route) or openai, anthropic, gemini",
    },
)
def error_envelope(ctx: CheckContext, wanted: Any) -> None:
    """A non-2xx JSON error in the route's envelope (the target's dialect, or the one named)."""
    kind = (
        wanted
        if isinstance(wanted, str)
        else (
            ctx.target.dialect.error_envelope.get(
                ctx.protocol or "openai", ctx.protocol or "openai"
            )
        )
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
    problems = _problems(kind, json_body(ctx, "error_envelope"), status)
    if problems:
        where, message = problems[0]
        raise CheckFailed(
            "error_envelope",
            f"not a valid {kind} error envelope: {where}: {message}",
            expected=f"{kind} envelope",
            actual=message,
            where=where,
        )
