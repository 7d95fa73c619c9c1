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

__all__ = [
    "Disconnect",
    "Receive",
    "Request",
    "Scope",
    "Send",
    "json_bytes",
    "parse_query",
    "read_body",
]

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
        # reversed: the first of repeated headers wins
        self.headers: dict[str, str] = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in reversed(scope["headers"])
        }
        self.body = body
        self._query: dict[str, str] | None = None

    @property
    def query(self) -> dict[str, str]:
        if self._query is None:
            self._query = parse_query(self.raw_query)
        return self._query


def parse_query(raw: bytes) -> dict[str, str]:
    """The query string as a dictionary (the last of repeated parameters wins)."""
    return dict(parse_qsl(raw.decode("latin-1"), keep_blank_values=True)) if raw else {}


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
    message = await receive()
    if not message.get("more_body", False) and message["type"] != "http.disconnect":
        body: bytes = message.get("body", b"")  # the usual case: the whole body at once
        if len(body) > limit:
            raise BodyTooLarge
        return body
    chunks: list[bytes] = []
    size = 0
    while True:
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
        message = await receive()
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

    __slots__ = ("_task", "gone")

    def __init__(self, receive: Receive) -> None:
        self.gone = False  # set by the watcher when the client has gone
        self._task = asyncio.get_running_loop().create_task(self._watch(receive))

    async def _watch(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.gone = True
                return

    async def sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True when the client disconnected meanwhile."""
        if self.gone:
            return True
        if seconds <= 0:
            return False
        task = self._task
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        if not task.done():
            await asyncio.wait((task,), timeout=seconds)  # the watcher ends on a disconnect
            if self.gone:
                return True
        remaining = deadline - loop.time()
        if remaining > 0:  # the watcher itself failed: nothing can end the wait early
            await asyncio.sleep(remaining)
        return False

    def close(self) -> None:
        self._task.cancel()
