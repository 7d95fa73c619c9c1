"""Checks on model lists: what a key is shown, and whether that matches what it may call.

A model list is read in its protocol's shape (OpenAI and Anthropic ``data[].id``, Gemini
``models[].name`` without its ``models/`` prefix). ``models_match_calls`` then calls every
listed model, and every model the target profile names that is not listed, with the same key
and the operation that fits the model (an embeddings model with embeddings, not chat): a
listed model the gateway refuses, or an unlisted one it serves, is a failure (LiteLLM #25550,
new-api #78/#474).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateprobe import protocols
from gateprobe.checks._registry import CheckContext, check
from gateprobe.checks.basic import json_body
from gateprobe.errors import CheckFailed
from gateprobe.http import Exchange

__all__ = ["listed_models"]

# The operation that calls the model of a target.models entry: the entry's own, unless its
# API probes its models with another (a Responses model answers chat too, and every gateway
# has chat). A model no entry names is called with chat.
_OPERATION_OF_ENTRY = protocols.model_probes()
DEFAULT_LIMIT = 40


def listed_models(body: Any, protocol: str) -> list[str] | None:
    """The model ids of a list answer of ``protocol``, or None when it is not a list."""
    return protocols.primary(protocol).listed_models(body)


def _list_of(ctx: CheckContext, name: str) -> list[str]:
    protocol = protocols.primary(ctx.protocol).protocol
    ids = listed_models(json_body(ctx, name), protocol)
    if ids is None:
        raise CheckFailed(
            name,
            f"the answer is not a {protocol} model list",
            expected=f"a {protocol} model list",
            actual=ctx.exchange.text()[:200],
            where="body",
        )
    return ids


def _model_named(ctx: CheckContext, item: Any) -> str:
    """An id, ``{model: id}``, or ``{model_of: <target.models entry>}`` for the protocol."""
    if not isinstance(item, Mapping):
        return str(item)
    if "model_of" in item:
        model = ctx.target.model(str(item["model_of"]), protocols.primary(ctx.protocol).protocol)
        if model is None:
            raise CheckFailed(
                "model_listed", f"the target names no {item['model_of']!r} model", where="target"
            )
        return model
    return str(item["model"])


_MODEL = {"type": "string", "minLength": 1, "description": "a model id"}
_LISTED_ITEM = {
    "anyOf": [
        _MODEL,
        {
            "type": "object",
            "additionalProperties": False,
            "properties": {"model": _MODEL, "model_of": _MODEL, "listed": {"type": "boolean"}},
            "anyOf": [{"required": ["model"]}, {"required": ["model_of"]}],
            "description": "{model: id} or {model_of: <target.models entry>}",
        },
    ],
    "description": "a model id, {model: id} or {model_of: <target.models entry>}, with "
    "listed: true or false",
}


@check(
    "model_listed",
    argument={
        "anyOf": [_LISTED_ITEM, {"type": "array", "minItems": 1, "items": _LISTED_ITEM}],
        "description": "a model id, {model: id} or {model_of: <target.models entry>} (with "
        "listed: true or false), or a list of them",
    },
)
def model_listed(ctx: CheckContext, expected: Any) -> None:
    """The model list shows (``listed: true``) or hides (``false``) each given model."""
    wanted = expected if isinstance(expected, list) else [expected]
    ids = set(_list_of(ctx, "model_listed"))
    for item in wanted:
        model = _model_named(ctx, item)
        listed = bool(item.get("listed", True)) if isinstance(item, Mapping) else True
        if listed and model not in ids:
            raise CheckFailed(
                "model_listed",
                f"model {model} is not in the list",
                expected=f"{model} listed",
                actual=sorted(ids),
                where="body",
            )
        if not listed and model in ids:
            raise CheckFailed(
                "model_listed",
                f"model {model} is in the list, but this key may not use it",
                expected=f"{model} not listed",
                actual=sorted(ids),
                where="body",
            )


def _operation(ctx: CheckContext, protocol: str, model: str) -> tuple[str, str]:
    """(protocol, operation) that calls ``model``: the operation of the target.models entry
    that names it, chat otherwise.

    An operation the protocol does not define (only OpenAI defines embeddings, images and
    rerank) is called on the protocol that does: such a model may be listed under another
    protocol (LiteLLM answers every protocol's model list from one list).
    """
    for entry, operation in _OPERATION_OF_ENTRY.items():
        home = protocols.protocol_of_operation(protocol, operation)
        named = {ctx.target.model(entry, protocol), ctx.target.model(entry, home)}
        if model in named:
            return home, operation
    return protocol, "chat"


def _profile_models(ctx: CheckContext, protocol: str) -> list[str]:
    out: list[str] = []
    for capability in ctx.target.models:
        model = ctx.target.model(capability, protocol)
        if model is not None and model not in out:
            out.append(model)
    return out


def _refused(ctx: CheckContext, answer: Exchange) -> bool:
    """An answer that says "you may not call this model" (not quota, rate or a bad parameter).

    A 400 counts only when it is about the model: a listed model may reject the probe's
    parameters (an o-series model and ``max_tokens``) and still be callable.
    """
    dialect = ctx.target.dialect
    status = answer.status
    if status in {403, 404, dialect.unknown_model_status, dialect.model_forbidden_status}:
        return True
    if status != 400:
        return False
    try:
        error = answer.json().get("error")
    except (ValueError, AttributeError):
        return False
    if not isinstance(error, dict):
        return False
    about = f"{error.get('code') or ''} {error.get('param') or ''} {error.get('type') or ''}"
    return "model" in about.lower()


@check(
    "models_match_calls",
    argument={
        "anyOf": [
            {"type": "boolean"},
            {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "skip": {"type": "array", "items": _MODEL},
                    "also_try": {"type": "array", "items": _MODEL},
                    "limit": {"type": "integer", "minimum": 1, "description": "a number >= 1"},
                },
            },
        ],
        "description": "true, false or {skip: [models], also_try: [models], limit: N}",
    },
)
def models_match_calls(ctx: CheckContext, options: Any) -> None:
    """Every listed model is callable with the same key, and no unlisted profile model is."""
    if options is False:
        return
    settings = options if isinstance(options, Mapping) else {}
    api = protocols.primary(ctx.protocol)
    protocol = api.protocol
    listed = _list_of(ctx, "models_match_calls")
    call = ctx.call
    if call is None:
        raise CheckFailed("models_match_calls", "this check needs a reachable target")
    key = f"literal:{ctx.secrets[0]}" if ctx.secrets else None
    skip = {str(m) for m in settings.get("skip", ())}
    limit = int(settings.get("limit", DEFAULT_LIMIT))
    body = json_body(ctx, "models_match_calls")

    def answer_of(model: str) -> Exchange:
        via, operation = _operation(ctx, protocol, model)
        return call({"protocol": via, "operation": operation, "model": model, "key": key})

    problems: list[str] = []
    for model in [m for m in listed if m not in skip][:limit]:
        if not api.generates(body, model):
            continue
        answer = answer_of(model)
        if _refused(ctx, answer):
            problems.append(f"{model} is listed but not callable (HTTP {answer.status})")
    candidates = [*_profile_models(ctx, protocol), *(str(m) for m in settings.get("also_try", ()))]
    for model in candidates:
        if model in listed or model in skip:
            continue
        if _operation(ctx, protocol, model)[0] != protocol:
            continue  # an embeddings model, say, has no place in an Anthropic or Gemini list
        status = answer_of(model).status
        if status is not None and 200 <= status < 300:
            problems.append(f"{model} is callable but not listed (HTTP {status})")
    if problems:
        raise CheckFailed(
            "models_match_calls",
            "the model list does not match what the key can call: " + "; ".join(problems),
            expected="listed models callable, unlisted ones refused",
            actual=problems,
            where="body",
        )
