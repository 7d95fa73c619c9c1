"""The ``honours`` check: the answer shows that a request option reached the model.

A gateway that rebuilds requests from the fields it knows silently drops the rest: the call
succeeds, but the upstream never saw ``reasoning_effort``, Claude ``thinking``, Gemini
``thinkingConfig``, the tools or the response format. The answer gives it away (the bundled
mock, like a real model, answers what it received): no reasoning tokens or thinking block,
no tool call, no JSON. The check reads the answer in whichever shape it has: Chat
Completions, Responses, Claude Messages or Gemini ``generateContent``.
"""

from __future__ import annotations

from typing import Any

from gateprobe import protocols
from gateprobe.checks._registry import CheckContext, check
from gateprobe.checks.basic import json_body
from gateprobe.errors import CheckFailed
from gateprobe.protocols import Api, json_object

__all__: list[str] = []

OPTIONS = ("reasoning", "tools", "json")


def _reasoning(body: Any, api: Api) -> str | None:
    return api.reasoning_missing(body)


def _tools(body: Any, api: Api) -> str | None:
    return api.tools_missing(body)


def _json(body: Any, api: Api) -> str | None:
    text = api.plain_answer(body).text
    if json_object(text):
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
    api = protocols.api_of_answer(body)
    if api is None:
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
        missing = _PROBES[option](body, api)
        if missing is not None:
            raise CheckFailed(
                "honours",
                f"{_SENT[option]} did not reach the model: {missing}",
                expected=f"an answer that honours {option}",
                actual=missing,
                where="body",
            )
