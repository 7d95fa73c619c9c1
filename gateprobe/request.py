"""A step's request made concrete: the HTTP request gateprobe sends for it.

A step names a protocol and an operation (``openai`` + ``chat``); this module turns that,
with the target's prefixes, keys and models and what the API knows of itself (its
operations, credential forms, how a stream is asked for: gateprobe/protocols/), into a
concrete HTTP request. A step may also give a raw ``method`` and ``path``; then only auth
and headers come from here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateprobe import protocols
from gateprobe.errors import UsageError
from gateprobe.protocols import PROTOCOLS
from gateprobe.target import Target

__all__ = ["BuiltRequest", "build_request"]

DIRECTIVES_HEADER = "x-gateprobe-directives"
# One mock directive: a name and a number (error-503, itl-20), or a bare word (hang).
_DIRECTIVE = re.compile(r"[a-z][a-z-]*(-\d+(\.\d+)?)?")


@dataclass(frozen=True)
class BuiltRequest:
    method: str
    url: str  # path and query, relative to the target's base URL
    headers: dict[str, str]
    json_body: Any
    content: bytes | None
    protocol: str | None
    stream: str | None  # None, "sse" or "array"
    secret: str | None  # the key sent, so checks can look for it in answers
    disconnect_after_events: int | None = None  # hang up after this many stream events
    fault: str | None = None  # the upstream directives this request carries ("error-503")
    operation: str | None = None
    read_timeout: float | None = None  # overrides the target's read limit for this request


def build_request(spec: Mapping[str, Any], target: Target) -> BuiltRequest:
    """``spec`` is a step's request with its templates already rendered."""
    protocol = spec.get("protocol")
    if protocol is not None and protocol not in PROTOCOLS:
        raise UsageError(f"unknown protocol {protocol!r} (known: {', '.join(PROTOCOLS)})")
    stream_flag = spec.get("stream", False)
    fault = _fault_tokens(spec.get("fault"))
    # Header names are kept lower-case, so an override or a removal hits whatever case it names.
    headers: dict[str, str] = {k.lower(): v for k, v in target.headers_for(protocol).items()}
    query: dict[str, str] = {str(k): str(v) for k, v in (spec.get("query") or {}).items()}
    json_body: Any = None
    content: bytes | None = None
    stream: str | None = None
    if "operation" in spec:
        if protocol is None:
            raise UsageError("an operation needs a protocol")
        api = protocols.api(protocol, spec["operation"])
        operation = protocols.operations(protocol).get(spec["operation"])
        if operation is None:
            known = ", ".join(protocols.operations(protocol))
            raise UsageError(f"unknown {protocol} operation {spec['operation']!r} (known: {known})")
        # model_of names another target.models entry (per protocol), e.g. restricted_denied
        capability = str(spec.get("model_of") or operation.capability)
        model = spec.get("model") or target.model(capability, protocol) or ""
        # model_suffix carries the mock's directives (--error-503) onto whichever model
        model = f"{model}{spec.get('model_suffix') or ''}"
        if fault and target.directives == "model":
            model += "".join(f"--{token}" for token in fault)
        method = spec.get("method") or operation.method
        path = target.paths[protocol] + operation.path.replace("{model}", str(model))
        if operation.body is not None:
            json_body = dict(operation.body)
            if api.model_in_body:
                json_body["model"] = model
            if isinstance(spec.get("body"), Mapping):
                json_body.update(spec["body"])
            elif "body" in spec:
                json_body = spec["body"]
        if stream_flag:
            stream = "array" if stream_flag == "array" else "sse"
            path = api.stream_request(path, json_body, query, stream)
    else:
        method = spec.get("method", "GET")
        path = str(spec["path"])
        if protocol is not None:
            path = path.replace("{prefix}", target.paths[protocol])
        if "body" in spec:
            json_body = spec["body"]
        if stream_flag:
            stream = "array" if stream_flag == "array" else "sse"
    if "raw_body" in spec:
        json_body, content = None, str(spec["raw_body"]).encode()
        headers.setdefault("content-type", "application/json")
    if spec.get("pad_body_bytes") is not None:
        json_body = _padded(json_body, spec["pad_body_bytes"])
    secret = _apply_auth(spec, target, protocol, headers, query)
    for name, value in (spec.get("headers") or {}).items():
        if value is None:
            headers.pop(str(name).lower(), None)
        else:
            headers[str(name).lower()] = str(value)
    if fault and (target.directives == "header" or "operation" not in spec):
        # a raw path has no model to carry them: the header is the only way
        headers[DIRECTIVES_HEADER] = ",".join(fault)
    if query:
        from urllib.parse import urlencode

        path += ("&" if "?" in path else "?") + urlencode(query)
    disconnect = spec.get("disconnect_after_events")
    if disconnect is not None:
        try:
            disconnect = int(disconnect)
        except (TypeError, ValueError):
            raise UsageError(
                f"disconnect_after_events must be a whole number, got {disconnect!r}"
            ) from None
    return BuiltRequest(
        method,
        path,
        headers,
        json_body,
        content,
        protocol,
        stream,
        secret,
        disconnect,
        fault=",".join(fault) or None,
        operation=spec.get("operation"),
        read_timeout=_seconds(spec.get("read_timeout"), "read_timeout"),
    )


def _fault_tokens(value: Any) -> list[str]:
    """``"chunks-8, fail-after-3"`` -> ``["chunks-8", "fail-after-3"]``."""
    if value is None:
        return []
    tokens = [t.strip() for t in str(value).split(",") if t.strip()]
    for token in tokens:
        if not _DIRECTIVE.fullmatch(token):
            raise UsageError(
                f"fault: {token!r} is not a directive (error-503, fail-after-3, hang, ...)"
            )
    return tokens


def _seconds(value: Any, name: str) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{name} must be a number of seconds, got {value!r}") from None
    if seconds <= 0:
        raise UsageError(f"{name} must be positive, got {value!r}")
    return seconds


def _padded(body: Any, size: Any) -> dict[str, Any]:
    """``body`` with a filler field of ``size`` bytes (for body-size limits)."""
    try:
        count = int(size)
    except (TypeError, ValueError):
        raise UsageError(f"pad_body_bytes must be a whole number, got {size!r}") from None
    if not isinstance(body, Mapping):
        raise UsageError("pad_body_bytes needs a JSON object body")
    return {**body, "gateprobe_padding": "x" * max(0, count)}


def _apply_auth(
    spec: Mapping[str, Any],
    target: Target,
    protocol: str | None,
    headers: dict[str, str],
    query: dict[str, str],
) -> str | None:
    kind = spec.get("key", "valid")
    secret: str | None
    if kind is None:
        secret = None
    elif str(kind).startswith("literal:"):
        secret = str(kind)[len("literal:") :]
    else:
        secret = target.key(str(kind))
        if secret is None:
            raise UsageError(f"the target provides no key of kind {kind!r}")
    style = spec.get("auth", "default")
    home = protocols.primary(protocol)
    if style == "default":
        style = home.default_auth
    # the protocol's own version headers, and those of the API whose credential form is used
    # (x-api-key goes with anthropic-version wherever it is sent)
    for api in (home, *(a for a in protocols.APIS if a.primary and a.default_auth == style)):
        for name, value in api.version_headers.items():
            headers.setdefault(name, value)
    if style == "none" or (secret is None and not str(style).startswith("raw:")):
        return None
    if style == "bearer":
        headers["authorization"] = f"Bearer {secret}"
    elif style == "x-api-key":
        headers["x-api-key"] = str(secret)
    elif style == "x-goog-api-key":
        headers["x-goog-api-key"] = str(secret)
    elif style == "query":
        query["key"] = str(secret)
    elif str(style).startswith("raw:"):
        headers["authorization"] = str(style)[len("raw:") :].replace("{key}", secret or "")
    else:
        raise UsageError(f"unknown auth style {style!r}")
    return secret
