"""Checks on status, headers, content type, JSON content, schemas, request ids and secrets."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from gateprobe.checks._registry import (
    FLAG,
    MATCH_FORMAT,
    SCHEMA_REF_FORMAT,
    CheckContext,
    check,
)
from gateprobe.errors import CheckFailed

__all__ = ["json_body", "subset_differences"]


def json_body(ctx: CheckContext, check_name: str) -> Any:
    """The response body as JSON, or a CheckFailed saying what came instead."""
    try:
        return ctx.exchange.json()
    except ValueError as exc:
        raise CheckFailed(
            check_name,
            f"the response body is not JSON: {exc}",
            expected="a JSON body",
            actual=ctx.exchange.content_type or "?",
            where="body",
        ) from None


_STATUS = {
    "type": "integer",
    "minimum": 100,
    "maximum": 599,
    "description": "an HTTP status (100-599)",
}
_STATUS_ARGUMENT = {
    "anyOf": [_STATUS, {"type": "array", "minItems": 1, "items": _STATUS}],
    "description": "an HTTP status (100-599) or a list of them",
}
# Any JSON value; strings with a ``re:`` prefix are regular expressions, at any depth.
_JSON_ARGUMENT = {
    "$ref": "#/$defs/value",
    "$defs": {
        "value": {
            "format": MATCH_FORMAT,
            "items": {"$ref": "#/$defs/value"},
            "additionalProperties": {"$ref": "#/$defs/value"},
        }
    },
}


@check("status", argument=_STATUS_ARGUMENT)
def status(ctx: CheckContext, expected: Any) -> None:
    """The HTTP status is the given one, or one of a list."""
    allowed = [int(s) for s in expected] if isinstance(expected, list) else [int(expected)]
    actual = ctx.exchange.status
    if actual not in allowed:
        wanted = allowed[0] if len(allowed) == 1 else allowed
        raise CheckFailed(
            "status",
            f"expected HTTP status {wanted}, got {actual}",
            expected=wanted,
            actual=actual,
            where="status",
        )


def _matches(expected: Any, actual: str | None) -> bool:
    if expected is True:
        return actual is not None
    if expected is False:
        return actual is None
    if actual is None:
        return False
    text = str(expected)
    if text.startswith("re:"):
        return re.search(text[3:], actual) is not None
    return actual.strip().lower() == text.strip().lower()


@check(
    "headers",
    argument={
        "type": "object",
        "minProperties": 1,
        "additionalProperties": {
            "type": ["string", "boolean", "integer"],
            "format": MATCH_FORMAT,
            "description": "a value, re:<regex>, true (present) or false (absent)",
        },
        "description": "a mapping of header names to what they must be",
    },
)
def headers(ctx: CheckContext, expected: Mapping[str, Any]) -> None:
    """Response headers: a value (case-insensitive), ``re:<regex>``, true (present), false."""
    for name, wanted in expected.items():
        actual = ctx.exchange.headers.get(name.lower())
        if not _matches(wanted, actual):
            what = (
                {True: "present", False: "absent"}.get(wanted, wanted)
                if isinstance(wanted, bool)
                else wanted
            )
            raise CheckFailed(
                "headers",
                f"header {name}: expected {what}, got {actual!r}",
                expected=what,
                actual=actual,
                where=f"headers.{name.lower()}",
            )


@check(
    "content_type",
    argument={
        "type": "string",
        "pattern": r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+$",
        "description": "a media type without parameters (application/json)",
    },
)
def content_type(ctx: CheckContext, expected: str) -> None:
    """The media type (without parameters) equals the given one."""
    actual = ctx.exchange.content_type
    if actual != expected.lower():
        raise CheckFailed(
            "content_type",
            f"expected Content-Type {expected}, got {actual or 'none'}",
            expected=expected,
            actual=actual,
            where="headers.content-type",
        )


def subset_differences(expected: Any, actual: Any, path: str = "$") -> list[tuple[str, Any, Any]]:
    """Where ``actual`` does not contain ``expected`` (mappings by key, lists item by item)."""
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            return [(path, dict(expected), actual)]
        out: list[tuple[str, Any, Any]] = []
        for key, value in expected.items():
            if key not in actual:
                out.append((f"{path}.{key}", value, "<missing>"))
            else:
                out += subset_differences(value, actual[key], f"{path}.{key}")
        return out
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) < len(expected):
            return [(path, expected, actual)]
        out = []
        for i, value in enumerate(expected):
            out += subset_differences(value, actual[i], f"{path}[{i}]")
        return out
    if isinstance(expected, str) and expected.startswith("re:") and isinstance(actual, str):
        return [] if re.search(expected[3:], actual) else [(path, expected, actual)]
    return [] if expected == actual else [(path, expected, actual)]


@check("json", argument=_JSON_ARGUMENT)
def json_subset(ctx: CheckContext, expected: Any) -> None:
    """The JSON body contains the given values (a subset match; ``re:`` for patterns)."""
    body = json_body(ctx, "json")
    differences = subset_differences(expected, body)
    if differences:
        where, want, got = differences[0]
        detail = "; ".join(f"{p}: expected {e!r}, got {a!r}" for p, e, a in differences[:5])
        raise CheckFailed(
            "json", f"the JSON body differs: {detail}", expected=want, actual=got, where=where
        )


@check(
    "json_schema",
    argument={
        "type": "string",
        "format": SCHEMA_REF_FORMAT,
        "description": "a schema ref, protocol/name (openai/chat.completion)",
    },
)
def json_schema(ctx: CheckContext, ref: str) -> None:
    """The JSON body validates against schemas/<ref>.schema.json (e.g. openai/models.list)."""
    from gateprobe.schemas import validation_errors

    body = json_body(ctx, "json_schema")
    errors = validation_errors(ref, body)
    if errors:
        where, message = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise CheckFailed(
            "json_schema",
            f"does not match {ref}: {where}: {message}{more}",
            expected=ref,
            actual=message,
            where=where,
        )


@check("request_id", argument=FLAG)
def request_id(ctx: CheckContext, wanted: bool) -> None:
    """The response carries the target's request-id header (on errors: if the target claims it)."""
    name = ctx.target.dialect.request_id_header
    value = ctx.exchange.headers.get(name)
    if wanted and not value:
        error = (ctx.exchange.status or 0) >= 400
        finding = CheckFailed(
            "request_id",
            f"no {name} header in the {'error ' if error else ''}response",
            expected=f"{name} present",
            actual=None,
            where=f"headers.{name}",
        )
        # No protocol requires a request id on an error: a SHOULD unless the profile claims it.
        if error and not ctx.target.claims("errors.request_id"):
            ctx.warn(finding)
            return
        raise finding
    if not wanted and value:
        raise CheckFailed(
            "request_id",
            f"unexpected {name} header",
            expected="absent",
            actual=value,
            where=f"headers.{name}",
        )


@check("no_secret_echo", argument=FLAG)
def no_secret_echo(ctx: CheckContext, wanted: bool) -> None:
    """The key sent does not come back anywhere in the response (headers or body)."""
    if not wanted:
        return
    body = ctx.exchange.text()
    header_text = "\n".join(f"{k}: {v}" for k, v in ctx.exchange.headers.items())
    for secret in ctx.secrets:
        if len(secret) >= 8 and (secret in body or secret in header_text):
            where = "body" if secret in body else "headers"
            raise CheckFailed(
                "no_secret_echo",
                f"the response echoes the API key in its {where}",
                expected="no key in the response",
                actual="key found",
                where=where,
            )
