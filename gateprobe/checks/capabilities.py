"""The ``honours`` check: the answer shows that a request option reached the model.

A gateway that rebuilds requests from the fields it knows silently drops the rest: the call
succeeds, but the upstream never saw ``reasoning_effort``, Claude ``thinking``, Gemini
``thinkingConfig``, the tools or the response format. The answer gives it away (the bundled
mock, like a real model, answers what it received): no reasoning tokens or thinking block,
no tool call, no JSON. The check reads the answer in whichever shape it has: Chat
Completions, Responses, Claude Messages or Gemini ``generateContent``.
"""

from __future__ import annotations

import json
from typing import Any

from gateprobe.checks._registry import CheckContext, check
from gateprobe.checks.basic import json_body
from gateprobe.errors import CheckFailed

__all__ = ["answer_shape"]

OPTIONS = ("reasoning", "tools", "json")


def answer_shape(body: Any) -> str | None:
    """chat, responses, anthropic or gemini: which API's non-stream answer ``body`` is."""
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("choices"), list):
        return "chat"
    if body.get("object") == "response" or isinstance(body.get("output"), list):
        return "responses"
    if body.get("type") == "message":
        return "anthropic"
    if isinstance(body.get("candidates"), list):
        return "gemini"
    return None


def _dig(body: Any, *path: str | int) -> Any:
    for step in path:
        if isinstance(step, int):
            body = body[step] if isinstance(body, list) and len(body) > step else None
        else:
            body = body.get(step) if isinstance(body, dict) else None
    return body


def _json_object(text: Any) -> bool:
    try:
        return isinstance(json.loads(text), dict | list)
    except (TypeError, ValueError):
        return False


def _items(body: Any, shape: str) -> list[dict[str, Any]]:
    """Content blocks, output items or parts: the pieces of the answer."""
    if shape == "anthropic":
        found = body.get("content")
    elif shape == "responses":
        found = body.get("output")
    elif shape == "gemini":
        found = _dig(body, "candidates", 0, "content", "parts")
    else:
        found = None
    return [i for i in found if isinstance(i, dict)] if isinstance(found, list) else []


def _reasoning(body: Any, shape: str) -> str | None:
    """None when the answer shows reasoning, else what is missing."""
    if shape == "chat":
        tokens = _dig(body, "usage", "completion_tokens_details", "reasoning_tokens")
        message = _dig(body, "choices", 0, "message") or {}
        if (isinstance(tokens, int) and tokens > 0) or message.get("reasoning_content"):
            return None
        return f"usage.completion_tokens_details.reasoning_tokens is {tokens!r}"
    items = _items(body, shape)
    if shape == "responses":
        tokens = _dig(body, "usage", "output_tokens_details", "reasoning_tokens")
        if any(i.get("type") == "reasoning" for i in items) or (
            isinstance(tokens, int) and tokens > 0
        ):
            return None
        return "no reasoning output item and no reasoning tokens"
    if shape == "anthropic":
        if any(i.get("type") in ("thinking", "redacted_thinking") for i in items):
            return None
        return "no thinking block in content"
    tokens = _dig(body, "usageMetadata", "thoughtsTokenCount")
    if any(i.get("thought") is True for i in items) or (isinstance(tokens, int) and tokens > 0):
        return None
    return "no thought part and no usageMetadata.thoughtsTokenCount"


def _tools(body: Any, shape: str) -> str | None:
    if shape == "chat":
        calls = _dig(body, "choices", 0, "message", "tool_calls")
        if not isinstance(calls, list) or not calls:
            return "choices[0].message.tool_calls is empty"
        for i, call in enumerate(calls):
            if not _json_object(_dig(call, "function", "arguments")):
                return f"tool_calls[{i}].function.arguments is not a JSON object"
        finish = _dig(body, "choices", 0, "finish_reason")
        return None if finish == "tool_calls" else f"finish_reason is {finish!r}, not tool_calls"
    items = _items(body, shape)
    if shape == "responses":
        calls = [i for i in items if i.get("type") == "function_call"]
        if not calls:
            return "no function_call output item"
        bad = [c for c in calls if not _json_object(c.get("arguments"))]
        return "a function_call's arguments are not a JSON object" if bad else None
    if shape == "anthropic":
        uses = [i for i in items if i.get("type") == "tool_use"]
        if not uses:
            return "no tool_use block in content"
        if not all(isinstance(u.get("input"), dict) for u in uses):
            return "a tool_use block's input is not an object"
        stop = body.get("stop_reason")
        return None if stop == "tool_use" else f"stop_reason is {stop!r}, not tool_use"
    calls = [i["functionCall"] for i in items if isinstance(i.get("functionCall"), dict)]
    if not calls:
        return "no functionCall part"
    if not all(isinstance(c.get("args", {}), dict) and c.get("name") for c in calls):
        return "a functionCall has no name or its args are not an object"
    return None


def _text(body: Any, shape: str) -> Any:
    if shape == "chat":
        return _dig(body, "choices", 0, "message", "content")
    items = _items(body, shape)
    if shape == "responses":
        texts = [
            c.get("text")
            for i in items
            if i.get("type") == "message"
            for c in i.get("content") or []
            if isinstance(c, dict) and c.get("type") == "output_text"
        ]
    elif shape == "anthropic":
        texts = [i.get("text") for i in items if i.get("type") == "text"]
    else:
        texts = [i.get("text") for i in items if "text" in i and not i.get("thought")]
    return "".join(t for t in texts if isinstance(t, str))


def _json(body: Any, shape: str) -> str | None:
    text = _text(body, shape)
    if _json_object(text):
        return None
    shown = text if not isinstance(text, str) or len(text) <= 60 else text[:60] + "…"
    return f"the answer text is not JSON: {shown!r}"


_PROBES = {"reasoning": _reasoning, "tools": _tools, "json": _json}
_SENT = {
    "reasoning": "the reasoning request (reasoning_effort, thinking, thinkingConfig)",
    "tools": "the tools",
    "json": "the JSON response format",
}


_OPTION = {"enum": list(OPTIONS), "description": f"one of {', '.join(OPTIONS)}"}


@check(
    "honours",
    argument={
        "anyOf": [_OPTION, {"type": "array", "minItems": 1, "items": _OPTION}],
        "description": f"one of {', '.join(OPTIONS)}, or a list of them",
    },
)
def honours(ctx: CheckContext, options: Any) -> None:
    """The answer shows each option reached the model: reasoning, tools, json (mode/schema)."""
    wanted = options if isinstance(options, list) else [options]
    body = json_body(ctx, "honours")
    shape = answer_shape(body)
    if shape is None:
        raise CheckFailed(
            "honours",
            "the answer is not a chat, responses, messages or generateContent answer",
            expected="a model answer",
            actual=ctx.exchange.text()[:200],
            where="body",
        )
    for option in wanted:
        if option not in _PROBES:
            raise CheckFailed("honours", f"unknown option {option!r} (known: {', '.join(OPTIONS)})")
        missing = _PROBES[option](body, shape)
        if missing is not None:
            raise CheckFailed(
                "honours",
                f"{_SENT[option]} did not reach the model: {missing}",
                expected=f"an answer that honours {option}",
                actual=missing,
                where="body",
            )
