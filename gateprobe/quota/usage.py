"""What a response says it used, and what it delivered: read from the exchange record.

Streaming usage is cumulative in every protocol, so it is taken once, from the last report:
OpenAI's usage chunk (or ``response.completed``), Claude's ``message_start`` input and last
``message_delta`` output, Gemini's last ``usageMetadata``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from gateprobe.http import Exchange

__all__ = ["Usage", "content_pieces", "model_of", "usage_of"]

_GEMINI_MODEL = re.compile(r"/models/([^/:?]+)")


@dataclass(frozen=True)
class Usage:
    prompt: int | None
    completion: int | None


def _payloads(ex: Exchange) -> list[Any]:
    """The JSON of each stream event or array element, or the body as one payload."""
    texts = [e.data for e in ex.events] or [e.text for e in ex.elements]
    if not texts:
        try:
            return [ex.json()]
        except ValueError:
            return []
    out = []
    for text in texts:
        try:
            out.append(json.loads(text))
        except ValueError:
            continue
    return out


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def usage_of(ex: Exchange, protocol: str | None) -> Usage:
    """The usage the response reports (the last cumulative report of a stream)."""
    prompt: int | None = None
    completion: int | None = None
    for payload in _payloads(ex):
        if not isinstance(payload, dict):
            continue
        if protocol == "gemini":
            meta = payload.get("usageMetadata")
            if isinstance(meta, dict):
                prompt = _int(meta.get("promptTokenCount"))
                completion = _int(meta.get("candidatesTokenCount"))
                thoughts = _int(meta.get("thoughtsTokenCount"))
                if completion is not None and thoughts:
                    completion += thoughts
            continue
        if protocol == "anthropic":
            usage = payload.get("usage")
            message = payload.get("message")
            if isinstance(message, dict) and isinstance(message.get("usage"), dict):
                usage = message["usage"]
            if isinstance(usage, dict):
                prompt = _int(usage.get("input_tokens")) if "input_tokens" in usage else prompt
                out = _int(usage.get("output_tokens"))
                completion = out if out is not None else completion
            continue
        response = payload.get("response")
        usage = payload.get("usage")
        if isinstance(response, dict) and isinstance(response.get("usage"), dict):
            usage = response["usage"]
        if isinstance(usage, dict):
            prompt = _int(usage.get("prompt_tokens", usage.get("input_tokens")))
            completion = _int(usage.get("completion_tokens", usage.get("output_tokens")))
    return Usage(prompt, completion)


def content_pieces(ex: Exchange, protocol: str | None) -> int:
    """How many pieces of generated content arrived (the mock sends one token per piece)."""
    count = 0
    for payload in _payloads(ex):
        if not isinstance(payload, dict):
            continue
        if protocol == "anthropic":
            count += payload.get("type") == "content_block_delta"
        elif protocol == "gemini":
            for candidate in payload.get("candidates") or []:
                parts = (candidate.get("content") or {}).get("parts") or []
                count += any(p.get("text") for p in parts if isinstance(p, dict))
        elif payload.get("type") == "response.output_text.delta":
            count += 1
        else:
            for choice in payload.get("choices") or []:
                delta = choice.get("delta") or {}
                count += bool(delta.get("content") or delta.get("tool_calls"))
    return count


def model_of(ex: Exchange) -> str | None:
    """The model the request named: its JSON ``model``, or Gemini's path segment."""
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
