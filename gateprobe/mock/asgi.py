"""Raw ASGI plumbing for the mock: the request, JSON and event-stream answers, disconnects.

The mock speaks ASGI directly instead of through a framework: the hot path is a dictionary
lookup, one JSON parse and one or a few ``send`` calls (see benchmarks/mock_throughput.py).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

__all__ = ["Disconnect", "Receive", "Request", "Scope", "Send", "json_bytes", "read_body"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodyTooLarge(Exception):
    pass


class Request:
    __slots__ = ("_query", "body", "headers", "method", "path", "raw_query", "scope")

    def __init__(self, scope: Scope, body: bytes) -> None:
        self.scope = scope
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.raw_query: bytes = scope.get("query_string", b"")
        self.headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            key = name.decode("latin-1").lower()
            if key not in self.headers:  # the first of repeated headers wins
                self.headers[key] = value.decode("latin-1")
        self.body = body
        self._query: dict[str, str] | None = None

    @property
    def query(self) -> dict[str, str]:
        if self._query is None:
            self._query = dict(parse_qsl(self.raw_query.decode("latin-1"), keep_blank_values=True))
        return self._query


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole request body; ``BodyTooLarge`` past ``limit`` bytes (checked before reading)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                if int(value) > limit:
                    raise BodyTooLarge
            except ValueError:
                pass
            break
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


# One encoder for every answer: ``json.dumps`` with non-default options builds a new one per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def json_bytes(obj: Any) -> bytes:
    # backslashreplace: a lone surrogate from the request (echoed in an error) stays a JSON escape
    text = _ENCODER.encode(obj)
    return text.encode("utf-8", "backslashreplace")


def header_list(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


async def send_bytes(
    send: Send, status: int, body: bytes, content_type: str, headers: list[tuple[bytes, bytes]]
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Disconnect:
    """Watches ``receive`` for the client going away while the answer is being produced.

    Waiting on it (``sleep``) returns early when the client disconnects, so a hang or a slow
    stream ends as soon as nobody is listening.
    """

    def __init__(self, receive: Receive) -> None:
        self.event = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._watch(receive))

    async def _watch(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.event.set()
                return

    @property
    def gone(self) -> bool:
        return self.event.is_set()

    async def sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True when the client disconnected meanwhile."""
        if self.event.is_set():
            return True
        if seconds <= 0:
            return False
        try:
            await asyncio.wait_for(self.event.wait(), seconds)
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        self._task.cancel()
