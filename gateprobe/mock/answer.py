"""Answering an admitted call: the upstream's error, a plain body, or a timed stream.

The answer waits as the upstream would (``ttft`` before the first token, ``itl`` between
tokens: the directives', else the model's, else the configuration's), watching for the client
to go away, and settles the call (``settle.finish``) with what was delivered:

- a client that disconnects mid-stream is charged its prompt and the completion tokens that
  were written to it before the disconnect, never more;
- an upstream that fails mid-stream (``fail-after-N``, ``cut-after-N``) is a failed call: the
  reservation is rolled back in full and the client is told in-band (or the stream is cut).

A plain answer is settled before its body is sent, so a client that has read the answer sees
the ledger charged. An error raised here reaches ``pipeline.run_call``, which rolls back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateprobe.mock.asgi import Disconnect, Send, json_bytes, send_bytes
from gateprobe.mock.call_types import Call, Frame, Parsed, RequestContext, Spec, Writer
from gateprobe.mock.defects import UPSTREAM_SECRET, UPSTREAM_URL
from gateprobe.mock.errors import GatewayError, envelope
from gateprobe.mock.settle import finish
from gateprobe.mock.state import MockState
from gateprobe.mock.summed_usage import summed_usage
from gateprobe.mock.upstream import Completion

__all__ = ["answer", "common_headers"]


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


def _timing(state: MockState, call: Call) -> tuple[float, float]:
    d, m, c = call.directives, call.model, state.config
    ttft = d.ttft_ms if d.ttft_ms is not None else m.ttft_ms if m.ttft_ms is not None else c.ttft_ms
    itl = d.itl_ms if d.itl_ms is not None else m.itl_ms if m.itl_ms is not None else c.itl_ms
    return ttft / 1000.0, itl / 1000.0


async def answer(state: MockState, call: Call, ctx: RequestContext) -> None:
    """Answer an admitted call and settle it; raises GatewayError for an error before any byte."""
    spec, completion, reservation, log = call.spec, call.completion, call.reservation, ctx.log
    directives = call.directives
    ttft, itl = _timing(state, call)
    # a watcher only where there is a wait to end early, or a stream to stop writing
    watch = Disconnect(ctx.receive) if (directives.hang or ttft or itl or spec.stream) else None
    try:
        if directives.hang:
            if await watch.sleep(state.config.hang_seconds):  # type: ignore[union-attr]
                finish(state, call, reservation, None, 0, log, status=499, reason="client gone")
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
                await _error_as_stream(state, call, ctx.send, error, log)
                return
            raise error
        if spec.stream and completion is not None:
            await _stream(state, call, completion, ctx.send, watch, log, ttft, itl)
            return
        tokens = completion.completion_tokens if completion is not None else 0
        if completion is not None and (
            directives.fail_after is not None or directives.cut_after is not None
        ):
            raise GatewayError(502, "upstream_error", "Upstream failed before completing")
        if watch is not None and await watch.sleep(ttft + itl * max(0, tokens - 1)):
            finish(state, call, reservation, completion, 0, log, status=499, reason="client gone")
            return
        body = _render(state, call.parsed, call.writer, call, spec, completion)
        finish(state, call, reservation, completion, tokens, log, status=200)
        await send_bytes(ctx.send, 200, body, "application/json", _header_bytes(call))
    finally:
        if watch is not None:
            watch.close()


async def _stream(
    state: MockState,
    call: Call,
    completion: Completion,
    send: Send,
    watch: Disconnect | None,
    log: dict[str, Any],
    ttft: float,
    itl: float,
) -> None:
    assert watch is not None
    writer, spec, reservation = call.writer, call.spec, call.reservation
    defects = state.config.defects  # the ``state.defects`` property's set, without the call
    frames = _frames(state, call.parsed, writer, call, spec, completion)
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
        finish(state, call, reservation, completion, tokens, log, status=200)
        return
    if gone:
        finish(
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
                finish(state, call, reservation, None, delivered, log, status=200, reason=reason)
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
        finish(state, call, reservation, None, delivered, log, status=200, reason="upstream cut")
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    if "stream-usage-summed" in defects:
        summed = summed_usage(call.protocol, (data for data, _ in every_frame))
        if summed is not None:
            call.prompt_tokens, delivered = summed
    finish(state, call, reservation, completion, delivered, log, status=200)
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def _stream_headers(state: MockState, call: Call, content_type: str) -> list[tuple[bytes, bytes]]:
    headers = [(b"content-type", content_type.encode("latin-1"))]
    if "no-cache-control" not in state.config.defects:
        headers.append((b"cache-control", b"no-cache"))
    return [*headers, (b"x-accel-buffering", b"no"), *_header_bytes(call)]


async def _error_as_stream(
    state: MockState,
    call: Call,
    send: Send,
    error: GatewayError,
    log: dict[str, Any],
) -> None:
    """``stream-error-as-200``: an error before the first byte, sent as a 200 event stream."""
    writer, spec, reservation = call.writer, call.spec, call.reservation
    content_type = writer.stream_content_type(spec)
    headers = _stream_headers(state, call, content_type)
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    for data in writer.error_frames(call, spec, error, 0):
        await send({"type": "http.response.body", "body": data, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})
    log["error"] = error.code
    finish(state, call, reservation, None, 0, log, status=200, reason="upstream error")


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
