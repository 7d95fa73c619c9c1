"""The mock gateway as an ASGI application: routing, error answers, the request log.

Routes (``path_style`` moves the Claude and Gemini ones, see ``MockConfig``):

    POST /v1/chat/completions, /v1/responses, /v1/responses/compact, /v1/embeddings,
         /v1/images/generations, /v1/rerank                          OpenAI-compatible
    GET  /v1/models, /v1/models/{id}        OpenAI list, or Anthropic's with Anthropic headers
    POST /v1/messages                       Claude Messages   (or /claude/v1/messages)
    GET  /v1beta/models, POST /v1beta/models/{model}:generateContent | :streamGenerateContent
                                            Gemini            (or /gemini/{version}/...)
    GET  /api/status, /api/usage/token, /v1/dashboard/billing/subscription | usage
    *    /_gateprobe/...                    admin API (see admin.py)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from gateprobe.mock import catalog
from gateprobe.mock.admin import PREFIX as ADMIN_PREFIX
from gateprobe.mock.admin import handle_admin
from gateprobe.mock.admission import authenticate
from gateprobe.mock.asgi import (
    BodyTooLarge,
    Receive,
    Request,
    Scope,
    Send,
    header_list,
    json_bytes,
    read_body,
    send_bytes,
)
from gateprobe.mock.call_types import RequestContext, Writer
from gateprobe.mock.config import MockConfig
from gateprobe.mock.errors import GatewayError, envelope
from gateprobe.mock.pipeline import run_call
from gateprobe.mock.protocols.anthropic import MessagesWriter
from gateprobe.mock.protocols.gemini import GeminiWriter
from gateprobe.mock.protocols.openai_chat import ChatWriter
from gateprobe.mock.protocols.openai_media import EmbeddingsWriter, ImagesWriter, RerankWriter
from gateprobe.mock.protocols.openai_responses import CompactWriter, ResponsesWriter
from gateprobe.mock.state import MockState
from gateprobe.mock.upstream import DirectiveError, png_image, split_model

__all__ = ["MockGateway"]

logger = logging.getLogger("gateprobe.mock")

Handler = Callable[[RequestContext], Awaitable[None]]


@dataclass(frozen=True)
class Route:
    methods: tuple[str, ...]
    handler: Handler
    protocol: str
    reads_body: bool = True


class MockGateway:
    """The ASGI app. ``state`` holds everything mutable; the admin API resets it."""

    def __init__(self, config: MockConfig | None = None) -> None:
        self.state = MockState(config or MockConfig.default())
        self._lag_task: asyncio.Task[None] | None = None
        self._routes = self._build_routes()

    @property
    def config(self) -> MockConfig:
        return self.state.config

    def _build_routes(self) -> dict[str, Route]:
        s = self.state
        call = self._call
        routes = {
            "/v1/chat/completions": Route(("POST",), call(ChatWriter(s)), "openai"),
            "/v1/responses": Route(("POST",), call(ResponsesWriter(s)), "openai"),
            "/v1/responses/compact": Route(("POST",), call(CompactWriter(s)), "openai"),
            "/v1/embeddings": Route(("POST",), call(EmbeddingsWriter(s)), "openai"),
            "/v1/images/generations": Route(("POST",), call(ImagesWriter(s)), "openai"),
            "/v1/rerank": Route(("POST",), call(RerankWriter(s)), "openai"),
            "/v1/models": Route(("GET",), self._models, "openai", reads_body=False),
            "/api/status": Route(("GET",), self._status, "openai", reads_body=False),
            "/api/usage/token": Route(("GET",), self._token_usage, "openai", reads_body=False),
            "/api/usage/token/": Route(("GET",), self._token_usage, "openai", reads_body=False),
        }
        for prefix in ("/v1", ""):
            routes[f"{prefix}/dashboard/billing/subscription"] = Route(
                ("GET",), self._billing, "openai", reads_body=False
            )
            routes[f"{prefix}/dashboard/billing/usage"] = Route(
                ("GET",), self._billing, "openai", reads_body=False
            )
        messages = Route(("POST",), call(MessagesWriter(s)), "anthropic")
        self._gemini_call = call(GeminiWriter(s))
        style = self.config.path_style
        if style in ("standard", "both"):
            routes["/v1/messages"] = messages
        if style in ("prefixed", "both"):
            routes["/claude/v1/messages"] = messages
            routes["/claude/v1/models"] = Route(
                ("GET",), self._models, "anthropic", reads_body=False
            )
        return routes

    def _gemini_prefixes(self) -> tuple[str, ...]:
        style = self.config.path_style
        prefixes: tuple[str, ...] = ()
        if style in ("standard", "both"):
            prefixes += ("/v1beta/models",)
        if style in ("prefixed", "both"):
            prefixes += ("/gemini/v1beta/models", "/gemini/v1/models")
        return prefixes

    def _gemini_v1_models(self, path: str, headers: list[tuple[bytes, bytes]]) -> bool:
        """GET /v1/models[/{id}] with ``x-goog-api-key``: the Gemini shapes (google-genai v1)."""
        return (
            self.config.path_style != "prefixed"
            and (path == "/v1/models" or path.startswith("/v1/models/"))
            and any(name == b"x-goog-api-key" for name, _ in headers)
            and not _anthropic_headers(headers)
        )

    # -- ASGI ----------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._lag_task = asyncio.get_running_loop().create_task(self.state.loop_lag.run())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._lag_task is not None:
                    self._lag_task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await self._lag_task
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _resolve(
        self, path: str, headers: list[tuple[bytes, bytes]]
    ) -> tuple[Route | None, str, str | None]:
        """The route for ``path``, the protocol whose envelope its errors use, a path model."""
        route = self._routes.get(path)
        if route is not None:
            if path == "/v1/models":  # the only exact route that other protocols share
                if _anthropic_headers(headers):
                    return route, "anthropic", None
                if self._gemini_v1_models(path, headers):
                    return route, "gemini", None
            return route, route.protocol, None
        for prefix in self._gemini_prefixes():
            if path == prefix:
                return Route(("GET",), self._models, "gemini", reads_body=False), "gemini", None
            if path.startswith(prefix + "/"):
                rest = path[len(prefix) + 1 :]
                if ":" in rest:
                    action = rest.rpartition(":")[2]
                    if action in ("generateContent", "streamGenerateContent"):
                        return Route(("POST",), self._gemini_call, "gemini"), "gemini", rest
                    return None, "gemini", None
                return Route(("GET",), self._models, "gemini", reads_body=False), "gemini", rest
        if path.startswith("/v1/models/"):
            rest = path[11:]
            # google-genai's default API version is v1: Gemini calls on /v1/models/ too.
            if self.config.path_style != "prefixed" and rest.rpartition(":")[2] in (
                "generateContent",
                "streamGenerateContent",
            ):
                return Route(("POST",), self._gemini_call, "gemini"), "gemini", rest
            if self._gemini_v1_models(path, headers):
                return Route(("GET",), self._models, "gemini", reads_body=False), "gemini", rest
            return Route(("GET",), self._models, "openai", reads_body=False), "openai", rest
        if path.startswith(ADMIN_PREFIX):
            return Route(("GET", "POST", "PUT", "PATCH"), self._admin, "openai"), "openai", None
        return None, _protocol_of(path), None

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        state = self.state
        request_id = state.request_id()
        path: str = scope["path"]
        method: str = scope["method"]
        route, protocol, path_model = self._resolve(path, scope["headers"])
        log: dict[str, Any] = {"request_id": request_id, "path": path, "status": 200}
        response_started = False
        body = b""

        def tracked_send(message: MutableMapping[str, Any]) -> Awaitable[None]:
            # a plain function handing back the server's awaitable: no coroutine per send
            nonlocal response_started
            response_started = True
            return send(message)

        try:
            if route is None:
                raise GatewayError(404, "unknown_url", f"Invalid URL ({method} {path})")
            if method not in route.methods:
                raise GatewayError(
                    405,
                    "method_not_allowed",
                    f"Method {method} not allowed on {path}",
                    headers={"allow": ", ".join(route.methods)},
                )
            if route.reads_body:
                body = await read_body(scope, receive, state.config.max_body_bytes)
            request = Request(scope, body)
            ctx = RequestContext(request, request_id, tracked_send, receive, path_model, log)
            await route.handler(ctx)
        except BodyTooLarge:
            too_large = GatewayError(
                413,
                "request_too_large",
                f"Request body exceeds {state.config.max_body_bytes} bytes",
            )
            await self._send_error(send, protocol, too_large, request_id, log)
        except GatewayError as error:
            if response_started:
                logger.warning("%s error after the response started: %s", request_id, error.message)
            else:
                streaming = "stream-auth-error-as-sse" in state.defects and _asks_stream(path, body)
                await self._send_error(send, protocol, error, request_id, log, streaming)
        except Exception:
            logger.exception("%s internal error on %s %s", request_id, method, path)
            if not response_started:
                internal = GatewayError(500, "internal_error", "Internal error in the mock gateway")
                await self._send_error(send, protocol, internal, request_id, log)
        finally:
            latency = (time.perf_counter() - started) * 1000.0
            if not path.startswith(ADMIN_PREFIX):
                log["latency_ms"] = round(latency, 3)
                log["time"] = time.time()
                state.usage.add(log)
            if logger.isEnabledFor(logging.INFO):
                logger.info(
                    "%s %s %s %s %.1fms key=%s model=%s%s",
                    request_id,
                    method,
                    path,
                    log.get("status"),
                    latency,
                    log.get("key") or "-",
                    log.get("model") or "-",
                    f" end={log['end']}" if "end" in log else "",
                )

    async def _send_error(
        self,
        send: Send,
        protocol: str,
        error: GatewayError,
        request_id: str,
        log: dict[str, Any],
        streaming: bool = False,
    ) -> None:
        # The admin API controls the mock; the defects break the gateway, never it.
        admin = str(log.get("path", "")).startswith(ADMIN_PREFIX)
        defects = frozenset() if admin else self.state.defects
        status = error.status
        log["status"] = status
        log["error"] = error.code
        headers = {"x-request-id": request_id, **error.headers}
        if protocol == "anthropic":
            headers["request-id"] = request_id
        if "openai-envelope-on-messages" in defects and protocol == "anthropic":
            protocol = "openai"
        if "html-error-page" in defects:
            page = (
                f"<!doctype html><html><head><title>{status}</title></head><body><h1>Error "
                f"{status}</h1><p>{error.message}</p></body></html>"
            ).encode()
            await send_bytes(send, status, page, "text/html; charset=utf-8", header_list(headers))
            return
        body = envelope(protocol, error, request_id, status)
        wire_status = 200 if "error-status-200" in defects else status
        if streaming:  # the defect: the stream request's error framed as an event stream
            frame = b"event: error\ndata: " + json_bytes(body) + b"\n\n"
            await send_bytes(send, wire_status, frame, "text/event-stream", header_list(headers))
            return
        await send_bytes(
            send, wire_status, json_bytes(body), "application/json", header_list(headers)
        )

    async def _json(self, send: Send, request_id: str, body: Any, protocol: str = "openai") -> None:
        headers = {"x-request-id": request_id}
        if protocol == "anthropic":
            headers["request-id"] = request_id
        await send_bytes(send, 200, json_bytes(body), "application/json", header_list(headers))

    # -- handlers ------------------------------------------------------------------------

    def _call(self, writer: Writer) -> Handler:
        state = self.state

        def handler(ctx: RequestContext) -> Awaitable[None]:
            # hands back run_call's coroutine: no extra coroutine per request
            return run_call(state, writer, ctx)

        return handler

    async def _models(self, ctx: RequestContext) -> None:
        state = self.state
        request, request_id, send, log = ctx.request, ctx.request_id, ctx.send, ctx.log
        gemini = (
            request.path.startswith(self._gemini_prefixes()) if self._gemini_prefixes() else False
        ) or self._gemini_v1_models(request.path, request.scope["headers"])
        anthropic = not gemini and (
            request.path.startswith("/claude/") or _anthropic_headers(request.scope["headers"])
        )
        protocol = "gemini" if gemini else "anthropic" if anthropic else "openai"
        key, _ = authenticate(state, request, protocol, models_route=True)
        log["key"] = key.name if key else None
        visible = state.visible_models(
            key.config.variant if key else None, key.config.models if key else None
        )
        listed = state.listed(visible, protocol)
        path_model = ctx.path_model
        if path_model is None:
            body = (
                catalog.gemini_list(listed)
                if gemini
                else catalog.anthropic_list(listed)
                if anthropic
                else catalog.openai_list(listed)
            )
            await self._json(send, request_id, body, protocol)
            return
        wanted = path_model.removeprefix("models/")
        log["model"] = wanted
        base = wanted
        if state.config.mode == "upstream":
            # the name a gateway forwards may carry directives: the model is the part before;
            # directives that do not parse make it no name of the catalog (a 404 below)
            with contextlib.suppress(DirectiveError):
                base = split_model(wanted)[0]
        found = next((m for m in listed if m.id == base), None)
        if found is None:
            raise GatewayError(
                404, "model_not_found", f"The model '{wanted}' does not exist", param="model"
            )
        if found.id != wanted:
            found = dataclasses.replace(found, id=wanted)  # answered under the name asked
        body = catalog.gemini_model(found) if gemini else catalog.openai_model(found)
        await self._json(send, request_id, body, protocol)

    async def _status(self, ctx: RequestContext) -> None:
        await self._json(ctx.send, ctx.request_id, catalog.status(self.state, ctx.request))

    async def _billing(self, ctx: RequestContext) -> None:
        request, request_id, send, log = ctx.request, ctx.request_id, ctx.send, ctx.log
        key, _ = authenticate(self.state, request, "openai")
        log["key"] = key.name if key else None
        if request.path.endswith("/subscription"):
            body = catalog.billing_subscription(self.state, key)
        else:
            body = catalog.billing_usage(self.state, key)
        await self._json(send, request_id, body)

    async def _token_usage(self, ctx: RequestContext) -> None:
        request, request_id, send, log = ctx.request, ctx.request_id, ctx.send, ctx.log
        try:
            body = catalog.token_usage(self.state, request)
        except GatewayError as error:
            log["status"] = error.status
            payload = {"success": False, "message": f"{error.message} (request id: {request_id})"}
            await send_bytes(
                send,
                error.status,
                json_bytes(payload),
                "application/json",
                header_list({"x-request-id": request_id}),
            )
            return
        log["key"] = body["data"]["name"]
        await self._json(send, request_id, body)

    async def _admin(self, ctx: RequestContext) -> None:
        request, request_id, send = ctx.request, ctx.request_id, ctx.send
        if request.path.startswith(ADMIN_PREFIX + "images/") and request.method == "GET":
            name = request.path[len(ADMIN_PREFIX + "images/") :].removesuffix(".png")
            try:
                prompt = base64.urlsafe_b64decode(name + "=" * (-len(name) % 4)).decode()
            except (ValueError, UnicodeDecodeError):
                raise GatewayError(404, "not_found", "No such image") from None
            png = png_image(self.state.config.seed, prompt)
            await send_bytes(send, 200, png, "image/png", header_list({"x-request-id": request_id}))
            return
        body: Any = None
        if request.body:
            try:
                body = json.loads(request.body)
            except ValueError:
                raise GatewayError(400, "invalid_json", "Request body is not valid JSON") from None
        status, payload = handle_admin(self.state, request, body)
        if request.path.rstrip("/").endswith("/reset"):
            self._routes = self._build_routes()
        await send_bytes(
            send,
            status,
            json_bytes(payload),
            "application/json",
            header_list({"x-request-id": request_id}),
        )


def _anthropic_headers(headers: list[tuple[bytes, bytes]]) -> bool:
    names = {name for name, _ in headers}
    return b"x-api-key" in names and b"anthropic-version" in names


def _asks_stream(path: str, body: bytes) -> bool:
    """Whether a request asked for a stream (for the stream-auth-error-as-sse defect)."""
    if path.endswith(":streamGenerateContent"):
        return True
    try:
        data = json.loads(body) if body else None
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("stream") is True


def _protocol_of(path: str) -> str:
    if path.startswith(("/v1beta", "/gemini")):
        return "gemini"
    if path.startswith(("/claude", "/v1/messages")):
        return "anthropic"
    return "openai"
