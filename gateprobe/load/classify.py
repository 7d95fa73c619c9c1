"""What one event of an LLM stream (or one non-streamed answer) carried, per protocol.

``classify_event`` takes one SSE event (or Gemini array element) and says whether it carried
visible output (text, tool-call arguments), reasoning output (``reasoning_content``,
Anthropic ``thinking``, Gemini ``thought`` parts), the server's token usage (output,
reasoning and input tokens: OpenAI chat's usage chunk ``prompt_tokens``, Responses'
``response.completed`` ``response.usage.input_tokens``, Anthropic's ``message_start``
``message.usage.input_tokens``, Gemini's ``usageMetadata.promptTokenCount``), an in-band
error, or the protocol's terminator (``[DONE]``, ``message_stop``, ``response.completed``,
a Gemini ``finishReason``). Role-only, empty and usage-only events carry no output.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

loads: Callable[[bytes | bytearray | str], Any]
try:  # a C JSON parser: a streaming user decodes the frames that need it
    from orjson import loads
except ImportError:  # pragma: no cover - orjson is a dependency; json is the fallback
    from json import loads

__all__ = [
    "DONE",
    "NOTHING",
    "VISIBLE",
    "Delta",
    "classify_body",
    "classify_event",
    "classify_object",
    "loads",
]


class Delta(NamedTuple):
    """What one stream event carried."""

    visible: bool = False
    reasoning: bool = False
    output_tokens: int | None = None
    reasoning_tokens: int | None = None
    error: str | None = None
    done: bool = False
    input_tokens: int | None = None


NOTHING = Delta()
DONE = Delta(done=True)
VISIBLE = Delta(visible=True)


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _openai_chat(obj: dict[str, Any]) -> Delta:
    if obj.get("error"):
        return Delta(error=_message(obj["error"]))
    visible = reasoning = False
    for choice in obj.get("choices") or ():
        delta = choice.get("delta")
        if not delta:
            continue
        if delta.get("content"):
            visible = True
        if delta.get("reasoning_content") or delta.get("reasoning"):
            reasoning = True
        for call in delta.get("tool_calls") or ():
            if (call.get("function") or {}).get("arguments"):
                visible = True
    usage = obj.get("usage")
    if not usage:  # the common case, without building a new tuple
        return VISIBLE if visible and not reasoning else Delta(visible, reasoning)
    details = usage.get("completion_tokens_details") or {}
    return Delta(
        visible,
        reasoning,
        _int(usage.get("completion_tokens")),
        _int(details.get("reasoning_tokens")),
        input_tokens=_int(usage.get("prompt_tokens")),
    )


def _openai_responses(event: str | None, obj: dict[str, Any]) -> Delta:
    kind = event or obj.get("type") or ""
    if kind in ("response.output_text.delta", "response.function_call_arguments.delta"):
        return Delta(visible=bool(obj.get("delta")))
    if kind in ("response.reasoning_text.delta", "response.reasoning_summary_text.delta"):
        return Delta(reasoning=bool(obj.get("delta")))
    if kind == "response.completed":
        usage = (obj.get("response") or {}).get("usage") or {}
        details = usage.get("output_tokens_details") or {}
        return Delta(
            output_tokens=_int(usage.get("output_tokens")),
            reasoning_tokens=_int(details.get("reasoning_tokens")),
            done=True,
            input_tokens=_int(usage.get("input_tokens")),
        )
    if kind in ("response.failed", "error", "response.incomplete"):
        response = obj.get("response") or {}
        return Delta(error=_message(response.get("error") or obj.get("error") or obj) or kind)
    return NOTHING


def _anthropic(event: str | None, obj: dict[str, Any]) -> Delta:
    kind = obj.get("type") or event or ""
    if kind == "content_block_delta":
        delta = obj.get("delta") or {}
        if delta.get("type") == "thinking_delta":
            return Delta(reasoning=bool(delta.get("thinking")))
        return Delta(visible=bool(delta.get("text") or delta.get("partial_json")))
    if kind == "message_delta":
        return Delta(output_tokens=_int((obj.get("usage") or {}).get("output_tokens")))
    if kind == "message_start":
        usage = (obj.get("message") or {}).get("usage")
        return Delta(input_tokens=_int(usage.get("input_tokens"))) if usage else NOTHING
    if kind == "message_stop":
        return Delta(done=True)
    if kind == "error":
        return Delta(error=_message(obj.get("error") or obj))
    return NOTHING


def _gemini(obj: dict[str, Any]) -> Delta:
    if obj.get("error"):
        return Delta(error=_message(obj["error"]))
    visible = reasoning = done = False
    for candidate in obj.get("candidates") or ():
        for part in (candidate.get("content") or {}).get("parts") or ():
            if part.get("thought") and part.get("text"):
                reasoning = True
            elif part.get("text") or part.get("functionCall"):
                visible = True
        if candidate.get("finishReason"):
            done = True
    usage = obj.get("usageMetadata")
    if not usage:
        return Delta(visible, reasoning, done=done)
    out = _int(usage.get("candidatesTokenCount"))
    thoughts = _int(usage.get("thoughtsTokenCount"))
    if out is not None and thoughts:
        out += thoughts
    return Delta(
        visible,
        reasoning,
        out,
        thoughts,
        done=done,
        input_tokens=_int(usage.get("promptTokenCount")),
    )


def _message(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error.get("type") or error.get("status") or error)
    return str(error)


def classify_event(protocol: str, operation: str, event: str | None, data: str | bytes) -> Delta:
    """What one SSE event (or Gemini array element) of a stream carried."""
    if protocol == "openai" and data.strip() in (b"[DONE]", "[DONE]"):
        return DONE
    try:
        obj = loads(data)
    except ValueError:
        return Delta(error=f"event data is not JSON: {data[:80]!r}")
    return classify_object(protocol, operation, event, obj)


def classify_object(protocol: str, operation: str, event: str | None, obj: Any) -> Delta:
    """``classify_event`` for an event whose JSON is already decoded."""
    if not isinstance(obj, dict):
        return NOTHING
    if protocol == "anthropic":
        return _anthropic(event, obj)
    if protocol == "gemini":
        return _gemini(obj)
    if operation == "responses":
        return _openai_responses(event, obj)
    return _openai_chat(obj)


def classify_body(protocol: str, operation: str, body: bytes) -> Delta:
    """Output and input tokens of a non-streamed answer (embeddings: input tokens only)."""
    try:
        obj = loads(body)
    except ValueError:
        return Delta(error="the body is not JSON")
    if not isinstance(obj, dict):
        return Delta(error="the body is not a JSON object")
    if protocol == "gemini":
        usage = obj.get("usageMetadata") or {}
        return Delta(
            visible=True,
            output_tokens=_int(usage.get("candidatesTokenCount")),
            input_tokens=_int(usage.get("promptTokenCount")),
        )
    usage = obj.get("usage") or {}
    prompt = _int(usage.get("prompt_tokens", usage.get("input_tokens")))
    if operation == "embeddings":
        return Delta(visible=True, output_tokens=0, input_tokens=prompt)
    tokens = usage.get("completion_tokens", usage.get("output_tokens"))
    return Delta(visible=True, output_tokens=_int(tokens), input_tokens=prompt)
