"""One model call through the mock: authenticate, limit, validate, price, reserve, answer, settle.

The order is the one gateways use and clients rely on: a bad key is refused before the body
is looked at (401 before 400); a rate-limited, invalid or refused request is never charged;
an upstream failure rolls the reservation back; a success settles it to the real usage.

Policies where the seeds are silent:
- a client that disconnects mid-stream is charged its prompt and the completion tokens that
  were written to it before the disconnect, never more;
- an upstream that fails mid-stream (``fail-after-N``, ``cut-after-N``) is a failed call: the
  reservation is rolled back in full and the client is told in-band (or the stream is cut).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateprobe.mock.asgi import (
    Disconnect,
    Receive,
    Request,
    Send,
    header_list,
    json_bytes,
    send_bytes,
)
from gateprobe.mock.auth import present_credential
from gateprobe.mock.config import ChannelConfig, ModelConfig
from gateprobe.mock.errors import GatewayError
from gateprobe.mock.ledger import InsufficientQuota, KeyState, Reservation
from gateprobe.mock.state import MockState
from gateprobe.mock.upstream import (
    Completion,
    DirectiveError,
    Directives,
    GenRequest,
    generate,
    split_model,
)

__all__ = ["Call", "Spec", "Writer", "authenticate", "common_headers", "cost_of", "run_call"]


@dataclass
class Spec:
    """A parsed call: what the writer needs to answer, whatever the endpoint."""

    model: str
    capability: str  # chat | responses | embeddings | images | rerank
    stream: bool = False
    gen: GenRequest | None = None  # set for generating endpoints
    prompt_tokens: int = 0  # for endpoints that do not generate (embeddings, images, rerank)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Call:
    request: Request
    request_id: str
    upstream_id: str
    protocol: str
    model: ModelConfig
    model_name: str  # as the client sent it
    channel: ChannelConfig
    key: KeyState | None
    directives: Directives
    created: int
    prompt_tokens: int


Frame = tuple[bytes, int]  # bytes on the wire, completion tokens they carry


class Writer(Protocol):
    protocol: str

    def parse(self, body: Any, request: Request, path_model: str | None) -> Spec: ...

    def render(self, call: Call, spec: Spec, completion: Completion | None) -> dict[str, Any]: ...

    def frames(self, call: Call, spec: Spec, completion: Completion) -> list[Frame]: ...

    def error_frames(
        self, call: Call, spec: Spec, error: GatewayError, sent: int
    ) -> list[bytes]: ...

    def stream_content_type(self, spec: Spec) -> str: ...


def authenticate(
    state: MockState, request: Request, protocol: str, *, models_route: bool = False
) -> tuple[KeyState | None, str | None]:
    """The calling key and the channel its secret pins, or a 401. None in upstream mode."""
    if state.config.mode == "upstream" or "auth-bypass" in state.defects:
        return None, None
    credential = present_credential(
        request,
        protocol,
        honour_x_api_key="x-api-key-ignored" not in state.defects,
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


def _milliseconds(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 600_000:
        raise ValueError(f"timing header out of range: {text!r}")
    return value


def _resolve(
    state: MockState, spec: Spec, key: KeyState | None, protocol: str, request: Request
) -> tuple[ModelConfig, Directives]:
    try:
        base, directives = split_model(spec.model)
        header = request.headers.get("x-gateprobe-directives")
        if header:
            directives = directives.merged(Directives.parse(header.split(",")))
        ttft = request.headers.get("x-gateprobe-ttft-ms")
        if ttft is not None:
            directives = directives.merged(Directives(ttft_ms=_milliseconds(ttft)))
        itl = request.headers.get("x-gateprobe-itl-ms")
        if itl is not None:
            directives = directives.merged(Directives(itl_ms=_milliseconds(itl)))
    except (DirectiveError, ValueError) as exc:
        raise GatewayError(400, "invalid_directive", str(exc)) from None
    not_found = GatewayError(
        404,
        "model_not_found",
        f"The model '{spec.model}' does not exist or you do not have access to it",
        param="model",
    )
    model = state.model(base)
    if (
        model is None
        or protocol not in model.protocols
        or spec.capability not in model.capabilities
    ):
        raise not_found
    if key is not None:
        if model.variants is not None and key.config.variant not in model.variants:
            raise not_found
        if key.config.models is not None and base not in key.config.models:
            raise GatewayError(
                403,
                "model_not_allowed",
                f"This API key has no access to model '{base}'",
                param="model",
            )
    scheduled = state.take_fault(base, key.name if key else None, request.path)
    if scheduled is not None:
        directives = directives.merged(scheduled)
    return model, directives


def cost_of(model: ModelConfig, channel: ChannelConfig, prompt: int, completion: int) -> int:
    if model.per_call is not None:
        return math.ceil(model.per_call * channel.multiplier)
    units = (prompt + completion * model.completion_ratio) * model.input_ratio * channel.multiplier
    return math.ceil(units)


async def run_call(
    state: MockState,
    writer: Writer,
    request: Request,
    request_id: str,
    send: Send,
    receive: Receive,
    path_model: str | None,
    log: dict[str, Any],
) -> None:
    """Answer one model call; raises GatewayError for an error answer before any byte."""
    protocol = writer.protocol
    key, pinned = authenticate(state, request, protocol)
    log["key"] = key.name if key else None
    _rate_limit(state, key)
    body = _parse_json(request.body)
    state.remember(request_id, request.method, request.path, request.query, request.headers, body)
    if not isinstance(body, dict):
        raise GatewayError(400, "invalid_request", "Request body must be a JSON object")
    spec = writer.parse(body, request, path_model)
    log["model"] = spec.model
    model, directives = _resolve(state, spec, key, protocol, request)
    channel = state.channel_for(model.id, pinned)
    if channel is None:
        raise GatewayError(
            400, "invalid_channel", f"Channel '{pinned}' does not serve '{model.id}'"
        )
    log["channel"] = channel.id
    config = state.config
    completion = None
    if spec.gen is not None:
        spec.gen.model = model.id  # directives in the name change timing, never the text
        if "reasoning" not in model.capabilities:
            spec.gen.reasoning = None
        completion = generate(
            spec.gen,
            seed=config.seed,
            min_tokens=config.min_output_tokens,
            max_tokens=min(config.max_output_tokens, model.max_output_tokens),
            directives=directives,
        )
        prompt = completion.prompt_tokens
        ceiling = max(spec.gen.max_tokens or model.max_output_tokens, completion.completion_tokens)
        ceiling = min(ceiling, 2**53)  # an absurd max_tokens must not overflow the float price
    else:
        prompt, ceiling = spec.prompt_tokens, 0
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
    )
    log["upstream_request_id"] = call.upstream_id
    reservation = None
    if key is not None:
        estimate = cost_of(model, channel, prompt, ceiling)
        try:
            reservation = state.ledger.reserve(request_id, key, estimate)
        except InsufficientQuota as exc:
            what = "API key quota" if exc.scope == "key" else "account balance"
            raise GatewayError(
                config.insufficient_quota_status,
                "insufficient_key_quota" if exc.scope == "key" else "insufficient_balance",
                f"Insufficient {what}: {exc.available} remaining, {exc.needed} needed",
            ) from None
    try:
        await _answer(state, writer, call, spec, completion, reservation, send, receive, log)
    except BaseException:
        if reservation is not None:
            state.ledger.rollback(reservation, reason="error")
        raise


def _timing(state: MockState, call: Call) -> tuple[float, float]:
    d, m, c = call.directives, call.model, state.config
    ttft = d.ttft_ms if d.ttft_ms is not None else m.ttft_ms if m.ttft_ms is not None else c.ttft_ms
    itl = d.itl_ms if d.itl_ms is not None else m.itl_ms if m.itl_ms is not None else c.itl_ms
    return ttft / 1000.0, itl / 1000.0


async def _answer(
    state: MockState,
    writer: Writer,
    call: Call,
    spec: Spec,
    completion: Completion | None,
    reservation: Reservation | None,
    send: Send,
    receive: Receive,
    log: dict[str, Any],
) -> None:
    directives = call.directives
    ttft, itl = _timing(state, call)
    watch = Disconnect(receive) if (directives.hang or ttft or itl or spec.stream) else None
    try:
        if directives.hang:
            if await watch.sleep(state.config.hang_seconds):  # type: ignore[union-attr]
                _finish(state, call, reservation, None, 0, log, status=499, reason="client gone")
                return
            raise GatewayError(504, "upstream_timeout", "Upstream did not answer in time")
        if directives.error_status is not None:
            status = directives.error_status
            headers = {"retry-after": "1"} if status == 429 else {}
            if status == 429 and "429-without-retry-after" in state.defects:
                headers = {}
            raise GatewayError(
                status, "upstream_error", f"Upstream returned HTTP {status}", headers=headers
            )
        if spec.stream and completion is not None:
            await _stream(
                state, writer, call, spec, completion, reservation, send, watch, log, ttft, itl
            )
            return
        tokens = completion.completion_tokens if completion is not None else 0
        if completion is not None and (
            directives.fail_after is not None or directives.cut_after is not None
        ):
            raise GatewayError(502, "upstream_error", "Upstream failed before completing")
        if watch is not None and await watch.sleep(ttft + itl * max(0, tokens - 1)):
            _finish(state, call, reservation, completion, 0, log, status=499, reason="client gone")
            return
        body = writer.render(call, spec, completion)
        _finish(state, call, reservation, completion, tokens, log, status=200)
        await send_bytes(
            send, 200, json_bytes(body), "application/json", header_list(common_headers(call))
        )
    finally:
        if watch is not None:
            watch.close()


async def _stream(
    state: MockState,
    writer: Writer,
    call: Call,
    spec: Spec,
    completion: Completion,
    reservation: Reservation | None,
    send: Send,
    watch: Disconnect | None,
    log: dict[str, Any],
    ttft: float,
    itl: float,
) -> None:
    assert watch is not None
    defects = state.defects
    frames = writer.frames(call, spec, completion)
    content_type = writer.stream_content_type(spec)
    if "wrong-stream-content-type" in defects:
        content_type = "application/json"
    headers = {
        "content-type": content_type,
        "cache-control": "no-cache",
        "x-accel-buffering": "no",
        **common_headers(call),
    }
    await send({"type": "http.response.start", "status": 200, "headers": header_list(headers)})
    d = call.directives
    stop_after = d.fail_after if d.fail_after is not None else d.cut_after
    buffered = "buffered-stream" in defects
    pending: list[bytes] = []
    delivered = emitted = sent = 0
    gone = False
    for data, tokens in frames:
        if tokens:
            if stop_after is not None and emitted >= stop_after:
                break
            if await watch.sleep(ttft if emitted == 0 else itl):
                gone = True
                break
            emitted += tokens
        if buffered:
            pending.append(data)
            continue
        await send({"type": "http.response.body", "body": data, "more_body": True})
        if watch.gone:
            gone = True
            break
        sent += 1
        delivered = emitted
    if buffered and not gone:
        await send({"type": "http.response.body", "body": b"".join(pending), "more_body": True})
        sent, delivered = len(pending), emitted
    if gone:
        _finish(
            state, call, reservation, completion, delivered, log, status=499, reason="client gone"
        )
        return
    if stop_after is not None:
        if d.fail_after is not None:
            error = GatewayError(502, "upstream_error", "Upstream failed mid-stream")
            log["error"] = "upstream failed mid-stream"
            for data in writer.error_frames(call, spec, error, sent):
                await send({"type": "http.response.body", "body": data, "more_body": True})
        _finish(state, call, reservation, None, delivered, log, status=200, reason="upstream cut")
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    _finish(state, call, reservation, completion, delivered, log, status=200)
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def common_headers(call: Call) -> dict[str, str]:
    headers = {"x-request-id": call.request_id, "x-gateprobe-upstream-request-id": call.upstream_id}
    if call.protocol == "anthropic":
        headers["request-id"] = call.request_id
    return headers


def _finish(
    state: MockState,
    call: Call,
    reservation: Reservation | None,
    completion: Completion | None,
    delivered: int,
    log: dict[str, Any],
    *,
    status: int,
    reason: str | None = None,
) -> None:
    """Settle a success, or a client that left after ``delivered`` tokens; else roll back."""
    charge = (status == 200 and reason is None) or (status == 499 and delivered > 0)
    cost = cost_of(call.model, call.channel, call.prompt_tokens, delivered) if charge else 0
    if reservation is not None:
        if charge:
            detail = {
                "model": call.model.id,
                "channel": call.channel.id,
                "prompt_tokens": call.prompt_tokens,
                "completion_tokens": delivered,
            }
            cost = state.ledger.settle(reservation, cost, detail=detail)
        else:
            state.ledger.rollback(reservation, reason=reason or "failed")
    log.update(
        status=status, prompt_tokens=call.prompt_tokens, completion_tokens=delivered, cost=cost
    )
    if reason:
        log["end"] = reason
