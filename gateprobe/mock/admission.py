"""Admitting a model call: authenticate, rate-limit, parse, resolve the model, reserve quota.

The order is the one gateways use and clients rely on: a bad key is refused before the body
is looked at (401 before 400, unless the ``auth-after-validation`` defect); a rate-limited,
invalid or refused request is never charged, because the quota is reserved last, once
everything else has passed. Every refusal is a ``GatewayError`` raised before any byte of
the answer is sent.

A model's own budget (``ModelConfig.budget``, shared by every key) is reserved from with the
key's quota, strictly: a call whose estimate its remainder cannot cover is refused with
``model_budget_status`` (429) before the upstream is called, whatever the key has left.
"""

from __future__ import annotations

import json
import time
from typing import Any

from gateprobe.mock.asgi import Request
from gateprobe.mock.auth import present_credential
from gateprobe.mock.call_types import Call, Parsed, RequestContext, Spec, Writer
from gateprobe.mock.config import ModelConfig
from gateprobe.mock.dropped import drop_options
from gateprobe.mock.errors import GatewayError
from gateprobe.mock.ledger import InsufficientQuota, KeyState, ModelBudgetExceeded
from gateprobe.mock.settle import cost_of
from gateprobe.mock.state import MockState
from gateprobe.mock.upstream import DirectiveError, Directives

__all__ = ["admit", "authenticate"]


def authenticate(
    state: MockState, request: Request, protocol: str, *, models_route: bool = False
) -> tuple[KeyState | None, str | None]:
    """The calling key and the channel its secret pins, or a 401. None in upstream mode."""
    # on every call: ``state.config.defects`` and ``key.config.name`` here and in ``admit`` are
    # what the ``state.defects`` and ``key.name`` properties return, without a Python call each
    if state.config.mode == "upstream" or "auth-bypass" in state.config.defects:
        return None, None
    credential = present_credential(
        request,
        protocol,
        honour_x_api_key="x-api-key-ignored" not in state.config.defects,
        lowercase_bearer="lowercase-bearer-rejected" not in state.config.defects,
        models_route=models_route,
    )
    key = state.ledger.lookup(credential.secret)
    pinned = request.headers.get("x-gateprobe-channel")
    if key is None and "-" in credential.secret:
        token, _, suffix = credential.secret.rpartition("-")
        candidate = state.ledger.lookup(token)
        if candidate is not None and suffix in state.channels:
            key, pinned = candidate, suffix
    if key is None:
        message = "Invalid API key"
        if "key-echoed-in-error" in state.defects:
            message += f": {credential.secret}"
        raise GatewayError(401, "invalid_api_key", message)
    if key.config.status == "disabled":
        raise GatewayError(401, "key_disabled", "API key is disabled")
    if key.config.status == "expired":
        raise GatewayError(401, "key_expired", "API key has expired")
    return key, pinned


def _rate_limit(state: MockState, key: KeyState | None) -> None:
    if key is None:
        return
    limit = key.config.rpm or state.config.rpm
    if limit is None:
        return
    wait = state.limiter.admit(key.name, limit)
    if wait:
        headers = {} if "429-without-retry-after" in state.defects else {"retry-after": str(wait)}
        raise GatewayError(
            429,
            "rate_limit_exceeded",
            f"Rate limit reached: {limit} requests per {state.config.rate_window_seconds:g}s",
            headers=headers,
        )


def _parse_json(body: bytes) -> Any:
    if not body:
        raise GatewayError(400, "invalid_json", "Request body is empty; a JSON object is required")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise GatewayError(400, "invalid_json", f"Request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise GatewayError(400, "invalid_json", "Request body is nested too deeply") from None


def _parse(
    state: MockState, writer: Writer, request: Request, request_id: str, path_model: str | None
) -> Parsed:
    """The parsed request, from the cache when an identical one was parsed before."""
    config = state.config
    cache = state.results
    body = request.body
    cache_key = (writer, path_model, request.raw_query, body)
    parsed: Parsed | None = cache.get(cache_key) if writer.cacheable else None
    remember = (request_id, request.method, request.path, request.raw_query, request.headers, body)
    if parsed is not None and parsed.config is config:
        state.remember(*remember)
        return parsed
    data = _parse_json(body)
    state.remember(*remember)
    if not isinstance(data, dict):
        raise GatewayError(400, "invalid_request", "Request body must be a JSON object")
    data = drop_options(data, state.defects)
    parsed = Parsed(config, writer.parse(data, request, path_model))
    if writer.cacheable:
        cache.put(cache_key, parsed, len(body) + len(request.raw_query))
    return parsed


def _milliseconds(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 600_000:
        raise ValueError(f"timing header out of range: {text!r}")
    return value


_DIRECTIVE_HEADERS = frozenset(
    ("x-gateprobe-directives", "x-gateprobe-ttft-ms", "x-gateprobe-itl-ms")
)


def _resolve(
    state: MockState, parsed: Parsed, key: KeyState | None, protocol: str, request: Request
) -> tuple[ModelConfig, Directives]:
    spec = parsed.spec
    if parsed.directive_error is not None:
        raise GatewayError(400, "invalid_directive", parsed.directive_error)
    base, directives = parsed.base, parsed.directives
    headers = request.headers
    if not headers.keys().isdisjoint(_DIRECTIVE_HEADERS):
        try:
            header = headers.get("x-gateprobe-directives")
            if header:
                directives = directives.merged(Directives.parse(header.split(",")))
            ttft = headers.get("x-gateprobe-ttft-ms")
            if ttft is not None:
                directives = directives.merged(Directives(ttft_ms=_milliseconds(ttft)))
            itl = headers.get("x-gateprobe-itl-ms")
            if itl is not None:
                directives = directives.merged(Directives(itl_ms=_milliseconds(itl)))
        except (DirectiveError, ValueError) as exc:
            raise GatewayError(400, "invalid_directive", str(exc)) from None
    model = state.model(base)
    if model is None or not state.serves(model, protocol, spec.capability):
        raise _not_found(spec)
    if key is not None:
        if (
            model.variants is not None
            and key.config.variant not in model.variants
            and "variant-not-honoured" not in state.defects
        ):
            raise _not_found(spec)
        if key.config.models is not None and base not in key.config.models:
            raise GatewayError(
                403,
                "model_not_allowed",
                f"This API key has no access to model '{base}'",
                param="model",
            )
    if state.faults:
        scheduled = state.take_fault(base, key.name if key else None, request.path)
        if scheduled is not None:
            directives = directives.merged(scheduled)
    return model, directives


def _not_found(spec: Spec) -> GatewayError:
    return GatewayError(
        404,
        "model_not_found",
        f"The model '{spec.model}' does not exist or you do not have access to it",
        param="model",
    )


def admit(state: MockState, writer: Writer, ctx: RequestContext) -> Call:
    """Admit one model call, its quota reserved; raises GatewayError for a refusal."""
    request, request_id, log = ctx.request, ctx.request_id, ctx.log
    protocol = writer.protocol
    if "auth-after-validation" in state.config.defects:
        _parse(state, writer, request, request_id, ctx.path_model)  # the defect: body first
    key, pinned = authenticate(state, request, protocol)
    log["key"] = key.config.name if key else None
    _rate_limit(state, key)
    parsed = _parse(state, writer, request, request_id, ctx.path_model)
    spec = parsed.spec
    log["model"] = spec.model
    model, directives = _resolve(state, parsed, key, protocol, request)
    channel = state.channel_for(model.id, pinned)
    if channel is None:
        raise GatewayError(
            400, "invalid_channel", f"Channel '{pinned}' does not serve '{model.id}'"
        )
    log["channel"] = channel.id
    # the configuration the call was parsed under: its statuses answer a refused reservation
    config = parsed.config
    completion = None
    if spec.gen is not None:
        completion = parsed.completion(model, directives)
        prompt = completion.prompt_tokens
        ceiling = max(spec.gen.max_tokens or model.max_output_tokens, completion.completion_tokens)
        ceiling = min(ceiling, 2**53)  # an absurd max_tokens must not overflow the float price
    else:
        prompt, ceiling = spec.prompt_tokens, 0
    if spec.stream:
        # a stream's writer may note things in the options for its error frames: its own copy
        spec = Spec(
            spec.model,
            spec.capability,
            spec.stream,
            spec.gen,
            spec.prompt_tokens,
            dict(spec.options),
        )
    call = Call(
        request,
        request_id,
        f"up-{request_id[3:]}",
        protocol,
        model,
        spec.model,
        channel,
        key,
        directives,
        int(time.time()),
        prompt,
        spec,
        completion,
        parsed,
        writer,
        pinned,
    )
    log["upstream_request_id"] = call.upstream_id
    if key is not None:
        # the estimate prices the most the call can produce; settling refunds what it did not
        estimate = cost_of(model, channel, prompt, ceiling)
        try:
            call.reservation = state.ledger.reserve(request_id, key, estimate, model=model.id)
        except ModelBudgetExceeded as exc:
            raise GatewayError(
                config.model_budget_status,
                "model_budget_exceeded",
                f"Budget exceeded for model '{exc.model}': {max(exc.available, 0)} of "
                f"{exc.budget} quota units left, {exc.needed} needed",
                openai_type="model_budget_exceeded",
            ) from None
        except InsufficientQuota as exc:
            what = "API key quota" if exc.scope == "key" else "account balance"
            raise GatewayError(
                config.insufficient_quota_status,
                "insufficient_key_quota" if exc.scope == "key" else "insufficient_balance",
                f"Insufficient {what}: {exc.available} remaining, {exc.needed} needed",
            ) from None
    return call
