"""One model call through the mock: authenticate, limit, validate, price, reserve, answer, settle.

The order is the one gateways use and clients rely on: a bad key is refused before the body
is looked at (401 before 400); a rate-limited, invalid or refused request is never charged;
an upstream failure rolls the reservation back; a success settles it to the real usage.

Policies where the seeds are silent:
- a client that disconnects mid-stream is charged its prompt and the completion tokens that
  were written to it before the disconnect, never more;
- an upstream that fails mid-stream (``fail-after-N``, ``cut-after-N``) is a failed call: the
  reservation is rolled back in full and the client is told in-band (or the stream is cut).
- a model's own budget (``ModelConfig.budget``, shared by every key) is reserved from with the
  key's quota, strictly: a call whose estimate its remainder cannot cover is refused with
  ``model_budget_status`` (429) before the upstream is called, whatever the key has left.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateprobe.mock.asgi import (
    Disconnect,
    Receive,
    Request,
    Send,
    json_bytes,
    send_bytes,
)
from gateprobe.mock.auth import present_credential
from gateprobe.mock.config import ChannelConfig, MockConfig, ModelConfig
from gateprobe.mock.defects import UPSTREAM_SECRET, UPSTREAM_URL
from gateprobe.mock.dropped import drop_options
from gateprobe.mock.errors import GatewayError, envelope
from gateprobe.mock.ledger import InsufficientQuota, KeyState, ModelBudgetExceeded, Reservation
from gateprobe.mock.retry import attempt_upstream, charge_failed_attempts
from gateprobe.mock.state import MockState
from gateprobe.mock.summed_usage import summed_usage
from gateprobe.mock.upstream import (
    NO_DIRECTIVES,
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


@dataclass(slots=True)
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
    retries: int = 0  # upstream attempts that failed before the one that answered


Frame = tuple[bytes, int]  # bytes on the wire, completion tokens they carry


class Writer(Protocol):
    """A protocol's parser and renderer.

    ``parse`` must depend only on the body, the path model, the query string and the
    configuration when ``cacheable`` is true: its result is then shared by identical
    requests, so ``render`` and ``frames`` must not change the spec or the completion.
    """

    protocol: str
    cacheable: bool
    pure: bool  # render and frames depend on spec, completion, model, created, defects only

    def parse(self, body: Any, request: Request, path_model: str | None) -> Spec: ...

    def render(self, call: Call, spec: Spec, completion: Completion | None) -> dict[str, Any]: ...

    def frames(self, call: Call, spec: Spec, completion: Completion) -> list[Frame]: ...

    def error_frames(
        self, call: Call, spec: Spec, error: GatewayError, sent: int
    ) -> list[bytes]: ...

    def end_frames(
        self, call: Call, spec: Spec, completion: Completion, sent: int, delivered: int
    ) -> list[bytes]:
        """The protocol's normal end of a stream, after ``sent`` frames that carried
        ``delivered`` output tokens (the ``fabricated-finish-on-cut`` defect)."""
        ...

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
        lowercase_bearer="lowercase-bearer-rejected" not in state.defects,
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


class Parsed:
    """What one request body parses to, and what the model generates for it.

    Identical requests (same writer, path model, query string and body bytes, under the same
    configuration object) share one ``Parsed`` from the state's ``ResultCache``, so nothing
    in it is changed after it is made: not the spec, not the completions. ``completion``
    only fills its memo, once per (model, chunks, mark), with what ``generate`` returns for them.
    """

    __slots__ = (
        "_completions",
        "_outputs",
        "base",
        "config",
        "directive_error",
        "directives",
        "spec",
    )

    def __init__(self, config: MockConfig, spec: Spec) -> None:
        self.config = config
        self.spec = spec
        self.directive_error: str | None = None  # the name's directives do not parse
        try:
            # the model name without its directives, and the directives in it
            self.base, self.directives = split_model(spec.model)
        except DirectiveError as exc:
            self.base, self.directives = spec.model, NO_DIRECTIVES
            self.directive_error = str(exc)
        self._completions: dict[tuple[str, int | None, int | None], Completion] = {}
        self._outputs: dict[tuple[Any, ...], Any] = {}

    def completion(self, model: ModelConfig, directives: Directives) -> Completion:
        gen = self.spec.gen
        assert gen is not None
        # a model id names one ModelConfig per config; the other directives change timing
        memo = (model.id, directives.chunks, directives.mark)
        found = self._completions.get(memo)
        if found is not None:
            return found
        reasoning = gen.reasoning if "reasoning" in model.capabilities else None
        if gen.model != model.id or gen.reasoning != reasoning:
            # directives in the name never change the words (chunks and mark their number)
            gen = dataclasses.replace(gen, model=model.id, reasoning=reasoning)
        config = self.config
        found = generate(
            gen,
            seed=config.seed,
            min_tokens=config.min_output_tokens,
            max_tokens=min(config.max_output_tokens, model.max_output_tokens),
            directives=directives,
            streamed=self.spec.stream,
        )
        if len(self._completions) < 4:
            self._completions[memo] = found
        return found

    def output(self, key: tuple[Any, ...]) -> Any:
        """What ``keep`` kept under ``key``: a rendered answer, or None."""
        return self._outputs.get(key)

    def keep(self, key: tuple[Any, ...], value: Any) -> None:
        outputs = self._outputs
        if len(outputs) >= 4:  # keys carry the second of ``created``: old ones are dead
            outputs.clear()
        outputs[key] = value


def _output_key(state: MockState, parsed: Parsed, kind: str, call: Call) -> tuple[Any, ...] | None:
    """The memo key of a writer's pure output for ``call``, or None when it must be rendered.

    A pure output (``Writer.pure``) depends on the spec and completion, the model, the
    second ``created`` and the defects only; the completion is the one ``parsed`` made for
    the model and the chunk count. Under another configuration than the one ``parsed`` was
    made under (defects switched while the call was in flight) it is rendered afresh.
    """
    if state.config is not parsed.config:
        return None
    return (kind, call.model.id, call.directives.chunks, call.directives.mark, call.created)


def _render(
    state: MockState,
    parsed: Parsed,
    writer: Writer,
    call: Call,
    spec: Spec,
    completion: Completion | None,
) -> bytes:
    key = _output_key(state, parsed, "render", call) if writer.pure else None
    if key is not None:
        body: bytes | None = parsed.output(key)
        if body is not None:
            return body
    body = json_bytes(writer.render(call, spec, completion))
    if key is not None:
        parsed.keep(key, body)
    return body


def _frames(
    state: MockState,
    parsed: Parsed,
    writer: Writer,
    call: Call,
    spec: Spec,
    completion: Completion,
) -> Sequence[Frame]:
    key = _output_key(state, parsed, "frames", call) if writer.pure else None
    if key is not None:
        frames: Sequence[Frame] | None = parsed.output(key)
        if frames is not None:
            return frames
    frames = tuple(writer.frames(call, spec, completion))
    if key is not None:
        parsed.keep(key, frames)
    return frames


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
    if "auth-after-validation" in state.defects:
        _parse(state, writer, request, request_id, path_model)  # the defect: body first
    key, pinned = authenticate(state, request, protocol)
    log["key"] = key.name if key else None
    _rate_limit(state, key)
    parsed = _parse(state, writer, request, request_id, path_model)
    spec = parsed.spec
    log["model"] = spec.model
    model, directives = _resolve(state, parsed, key, protocol, request)
    channel = state.channel_for(model.id, pinned)
    if channel is None:
        raise GatewayError(
            400, "invalid_channel", f"Channel '{pinned}' does not serve '{model.id}'"
        )
    log["channel"] = channel.id
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
    )
    log["upstream_request_id"] = call.upstream_id
    reservation = None
    if key is not None:
        estimate = cost_of(model, channel, prompt, ceiling)
        try:
            reservation = state.ledger.reserve(request_id, key, estimate, model=model.id)
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
    try:
        if directives.fail_attempts:
            call.retries = attempt_upstream(state, call, pinned, log)
        await _answer(
            state, parsed, writer, call, spec, completion, reservation, send, receive, log
        )
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
    parsed: Parsed,
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
            message = f"Upstream returned HTTP {status}"
            if "upstream-secret-in-error" in state.defects:
                message += f" (POST {UPSTREAM_URL} with Authorization: Bearer {UPSTREAM_SECRET})"
            error = GatewayError(status, "upstream_error", message, headers=headers)
            if spec.stream and "stream-error-as-200" in state.defects:
                await _error_as_stream(state, writer, call, spec, reservation, send, error, log)
                return
            raise error
        if spec.stream and completion is not None:
            await _stream(
                state,
                parsed,
                writer,
                call,
                spec,
                completion,
                reservation,
                send,
                watch,
                log,
                ttft,
                itl,
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
        body = _render(state, parsed, writer, call, spec, completion)
        _finish(state, call, reservation, completion, tokens, log, status=200)
        await send_bytes(send, 200, body, "application/json", _header_bytes(call))
    finally:
        if watch is not None:
            watch.close()


async def _stream(
    state: MockState,
    parsed: Parsed,
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
    frames = _frames(state, parsed, writer, call, spec, completion)
    if "stream-drops-chunk" in defects:
        token_frames = [i for i, (_, tokens) in enumerate(frames) if tokens]
        if len(token_frames) > 1:
            frames = tuple(f for i, f in enumerate(frames) if i != token_frames[1])
    every_frame = frames
    content_type = writer.stream_content_type(spec)
    if "wrong-stream-content-type" in defects:
        content_type = "application/json"
    headers = _stream_headers(state, call, content_type)
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    d = call.directives
    stop_after = d.fail_after if d.fail_after is not None else d.cut_after
    buffered = "buffered-stream" in defects
    pending: list[bytes] = []
    delivered = emitted = sent = 0
    gone = cut = False
    if stop_after is None and not buffered and ttft <= 0 and itl <= 0:
        # the common case, the loop below without what cannot happen: no waits, no stop
        for data, tokens in frames:
            if tokens and watch.gone:
                gone = True
                break
            await send({"type": "http.response.body", "body": data, "more_body": True})
            if watch.gone:
                gone = True
                break
            emitted += tokens
        delivered = emitted
        frames = ()
    for data, tokens in frames:
        if tokens:
            if stop_after is not None and emitted >= stop_after:
                cut = True
                break
            delay = ttft if emitted == 0 else itl
            # no delay: what ``watch.sleep`` would answer, without a coroutine per token
            if (await watch.sleep(delay)) if delay > 0 else watch.gone:
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
    if gone and "ignores-client-disconnect" in defects:
        tokens = completion.completion_tokens
        _finish(state, call, reservation, completion, tokens, log, status=200)
        return
    if gone:
        _finish(
            state, call, reservation, completion, delivered, log, status=499, reason="client gone"
        )
        return
    if stop_after is not None:
        if d.fail_after is not None:
            error = GatewayError(502, "upstream_error", "Upstream failed mid-stream")
            log["error"] = "upstream failed mid-stream"
            if cut and "hang-after-midstream-failure" in defects:
                # the defect: the failure is swallowed and the stream left open, silent,
                # until the client gives up (bounded by hang_seconds, as ``hang`` is)
                hung_up = await watch.sleep(state.config.hang_seconds)
                reason = "upstream cut, client gone" if hung_up else "upstream cut"
                _finish(state, call, reservation, None, delivered, log, status=200, reason=reason)
                if not hung_up:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            if "raw-error-after-stream" in defects:
                # new-api's Claude relay: the error's JSON written raw after the SSE data
                body = json_bytes(envelope(call.protocol, error, call.request_id, error.status))
                error_data = [body + b"\n"]
            else:
                error_data = writer.error_frames(call, spec, error, sent)
            for data in error_data:
                await send({"type": "http.response.body", "body": data, "more_body": True})
        elif cut and "fabricated-finish-on-cut" in defects:
            # the defect: the cut is hidden behind the protocol's normal end
            for data in writer.end_frames(call, spec, completion, sent, delivered):
                await send({"type": "http.response.body", "body": data, "more_body": True})
        _finish(state, call, reservation, None, delivered, log, status=200, reason="upstream cut")
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    if "stream-usage-summed" in defects:
        summed = summed_usage(call.protocol, (data for data, _ in every_frame))
        if summed is not None:
            call.prompt_tokens, delivered = summed
    _finish(state, call, reservation, completion, delivered, log, status=200)
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def _stream_headers(state: MockState, call: Call, content_type: str) -> list[tuple[bytes, bytes]]:
    headers = [(b"content-type", content_type.encode("latin-1"))]
    if "no-cache-control" not in state.defects:
        headers.append((b"cache-control", b"no-cache"))
    return [*headers, (b"x-accel-buffering", b"no"), *_header_bytes(call)]


async def _error_as_stream(
    state: MockState,
    writer: Writer,
    call: Call,
    spec: Spec,
    reservation: Reservation | None,
    send: Send,
    error: GatewayError,
    log: dict[str, Any],
) -> None:
    """``stream-error-as-200``: an error before the first byte, sent as a 200 event stream."""
    content_type = writer.stream_content_type(spec)
    headers = _stream_headers(state, call, content_type)
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    for data in writer.error_frames(call, spec, error, 0):
        await send({"type": "http.response.body", "body": data, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})
    log["error"] = error.code
    _finish(state, call, reservation, None, 0, log, status=200, reason="upstream error")


def common_headers(call: Call) -> dict[str, str]:
    headers = {"x-request-id": call.request_id, "x-gateprobe-upstream-request-id": call.upstream_id}
    if call.protocol == "anthropic":
        headers["request-id"] = call.request_id
    return headers


def _header_bytes(call: Call) -> list[tuple[bytes, bytes]]:
    """``common_headers(call)`` as ASGI header pairs."""
    request_id = call.request_id.encode("latin-1")
    headers = [
        (b"x-request-id", request_id),
        (b"x-gateprobe-upstream-request-id", call.upstream_id.encode("latin-1")),
    ]
    if call.protocol == "anthropic":
        headers.append((b"request-id", request_id))
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
            if call.retries and "double-charge-on-retry" in state.defects:
                cost += charge_failed_attempts(state, call, cost, detail)
        else:
            state.ledger.rollback(reservation, reason=reason or "failed")
    log["status"] = status
    log["prompt_tokens"] = call.prompt_tokens
    log["completion_tokens"] = delivered
    log["cost"] = cost
    if reason:
        log["end"] = reason
