"""What a response says it used, and what it delivered: read from the exchange record.

Streaming usage is cumulative in every protocol, so it is taken once, from the last report;
which events report it is the API's (gateprobe/protocols/).
"""

from __future__ import annotations

import json
import re
from urllib.parse import unquote

from gateprobe import protocols
from gateprobe.http import Exchange
from gateprobe.protocols import Api, Usage

__all__ = ["Usage", "content_pieces", "model_of", "usage_of"]

_GEMINI_MODEL = re.compile(r"/models/([^/:?]+)")


def _api(ex: Exchange, protocol: str | None, events: list[protocols.Payload]) -> Api:
    return protocols.api_for_path(protocol, ex.request.url, events)


def usage_of(ex: Exchange, protocol: str | None) -> Usage:
    """The usage the response reports (the last cumulative report of a stream)."""
    events = protocols.decoded(ex.events, ex.elements)
    api = _api(ex, protocol, events)
    if ex.events or ex.elements:
        return api.stream_usage(events)
    try:
        body = ex.json()
    except ValueError:
        return Usage(None, None)
    return api.plain_usage(body)


def content_pieces(ex: Exchange, protocol: str | None) -> int:
    """How many pieces of generated content arrived (the mock sends one token per piece)."""
    events = protocols.decoded(ex.events, ex.elements)
    api = _api(ex, protocol, events)
    return sum(api.content_pieces(p) for p in events)


def model_of(ex: Exchange) -> str | None:
    """The model the request named: its JSON ``model``, or the model in the path."""
    body = ex.request.body
    if body:
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("model"), str):
            return str(data["model"])
    found = _GEMINI_MODEL.search(ex.request.url)
    return unquote(found.group(1)) if found else None
