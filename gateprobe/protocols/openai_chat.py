"""OpenAI Chat Completions, and what the ``openai`` protocol shares (prefix, auth, envelope).

The stream grammar, rule by rule (the ``stream`` check):

Rules (all MUST; each failure names the event):
 1. every frame before ``[DONE]`` is a JSON ``chat.completion.chunk`` and carries no ``error``;
 2. ``id``, ``created``, ``model`` and ``object`` are the same on every chunk;
 3. the first delta carries ``role: assistant``;
 4. ``data: [DONE]`` exactly once, last;
 5. with ``stream_options.include_usage``: exactly one usage chunk, right before ``[DONE]``,
    with ``choices: []``; ``usage`` null (or absent) on every other chunk. Without it: no usage
    chunk, unless the target's dialect declares ``usage_chunk_by_default`` (new-api);
 6. exactly one non-null ``finish_reason`` per choice, on that choice's last chunk;
 7. tool-call deltas reassemble, per index, into one stable id, one name and arguments that
    parse as a JSON object.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from gateprobe.protocols._api import (
    DONE,
    NOTHING,
    VISIBLE,
    Answer,
    Api,
    Delta,
    GrammarOptions,
    Operation,
    Payload,
    as_int,
    dig,
    error_message,
    error_object,
    fail,
    json_object,
    parsed_arguments,
)

__all__ = ["OPENAI_CHAT", "PROMPT"]

PROMPT = "Say hello in five words."

STABLE_FIELDS = ("id", "object", "created", "model")


def check_chat_stream(events: list[Payload], options: GrammarOptions) -> None:
    chunks = _chunks(events)
    _stable(chunks)
    _role_first(chunks)
    _done(events)
    _usage(options, chunks, events)
    _finish_reasons(chunks)
    _tool_calls(chunks)


def _chunks(events: list[Payload]) -> list[Payload]:
    chunks = []
    for p in events:
        if p.data == DONE:
            continue
        if not isinstance(p.data, dict):
            raise fail(
                f"{p.label} is not a JSON object", p.label, "an object", type(p.data).__name__
            )
        if "error" in p.data:
            raise fail(
                f"{p.label} carries an error: {str(p.data['error'])[:120]}",
                f"{p.label}.error",
                "no error",
                p.data["error"],
            )
        if p.data.get("object") != "chat.completion.chunk":
            raise fail(
                f"{p.label}.object is {p.data.get('object')!r}, not chat.completion.chunk",
                f"{p.label}.object",
                "chat.completion.chunk",
                p.data.get("object"),
            )
        chunks.append(p)
    return chunks


def _stable(chunks: list[Payload]) -> None:
    if not chunks:
        return
    first = chunks[0]
    for p in chunks[1:]:
        for name in STABLE_FIELDS:
            if p.data.get(name) != first.data.get(name):
                raise fail(
                    f"{p.label}.{name} is {p.data.get(name)!r} but {first.label} had "
                    f"{first.data.get(name)!r}: {name} must not change within one stream",
                    f"{p.label}.{name}",
                    first.data.get(name),
                    p.data.get(name),
                )


def _role_first(chunks: list[Payload]) -> None:
    for p in chunks:
        choices = p.data.get("choices") or []
        if not choices:
            continue
        delta = choices[0].get("delta") if isinstance(choices[0], dict) else None
        role = delta.get("role") if isinstance(delta, dict) else None
        if role != "assistant":
            raise fail(
                f"the first delta ({p.label}) carries no role: assistant",
                f"{p.label}.choices[0].delta.role",
                "assistant",
                role,
            )
        return


def _done(events: list[Payload]) -> None:
    done = [p for p in events if p.data == DONE]
    if len(done) != 1:
        where = ", ".join(p.label for p in done) or "end of stream"
        raise fail(f"expected exactly one data: [DONE], got {len(done)}", where, 1, len(done))
    if events[-1].data != DONE:
        raise fail(
            f"{events[-1].label} comes after data: [DONE] ({done[0].label}): [DONE] must be last",
            events[-1].label,
            f"nothing after {done[0].label}",
            events[-1].data if isinstance(events[-1].data, str) else events[-1].type,
        )


def _finish_reasons(chunks: list[Payload]) -> None:
    finished: dict[int, Payload] = {}
    seen: set[int] = set()
    for p in chunks:
        for choice in p.data.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            index = int(choice.get("index", 0))
            seen.add(index)
            if index in finished:
                earlier = finished[index]
                what = (
                    "a second non-null finish_reason"
                    if choice.get("finish_reason") is not None
                    else "a chunk"
                )
                raise fail(
                    f"choice {index} has {what} at {p.label} after its finish_reason at "
                    f"{earlier.label}: the finish_reason must be on the choice's last chunk, once",
                    f"{p.label}.choices[{index}].finish_reason",
                    f"one finish_reason, at {earlier.label}",
                    choice.get("finish_reason"),
                )
            if choice.get("finish_reason") is not None:
                finished[index] = p
    missing = sorted(seen - set(finished)) or ([] if seen else [0])
    if missing:
        raise fail(
            f"choice {missing[0]} has no non-null finish_reason",
            f"events[*].choices[{missing[0]}].finish_reason",
            "one non-null finish_reason",
            None,
        )


def _usage(options: GrammarOptions, chunks: list[Payload], events: list[Payload]) -> None:
    stream_options = options.request.get("stream_options")
    asked = stream_options.get("include_usage") if isinstance(stream_options, dict) else None
    usage = [p for p in chunks if p.data.get("usage") is not None]
    if asked is True:
        if len(usage) != 1:
            where = ", ".join(p.label for p in usage) or "end of stream"
            raise fail(
                f"stream_options.include_usage was set: expected exactly one usage chunk, "
                f"got {len(usage)}",
                where,
                1,
                len(usage),
            )
        (p,) = usage
        if p.data.get("choices"):
            raise fail(
                f"the usage chunk {p.label} carries {len(p.data['choices'])} choices; "
                f"expected choices: []",
                f"{p.label}.choices",
                [],
                len(p.data["choices"]),
            )
        done = next(i for i, e in enumerate(events) if e.data == DONE)
        if events.index(p) != done - 1:
            raise fail(
                f"the usage chunk {p.label} is not the one right before data: [DONE] "
                f"({events[done].label})",
                p.label,
                events[done - 1].label,
                p.label,
            )
        return
    by_default = options.usage_chunk_by_default and asked is None
    if usage and not by_default:
        p = usage[0]
        told = "was false" if asked is False else "was not set"
        raise fail(
            f"{p.label} carries usage although stream_options.include_usage {told}",
            f"{p.label}.usage",
            None,
            p.data.get("usage"),
        )


def _tool_calls(chunks: list[Payload]) -> None:
    calls: dict[int, dict[str, Any]] = {}
    for p in chunks:
        for choice in p.data.get("choices") or []:
            delta = choice.get("delta") if isinstance(choice, dict) else None
            for call in (delta or {}).get("tool_calls") or []:
                index = int(call.get("index", 0))
                found = calls.setdefault(index, {"id": None, "name": "", "args": "", "at": p})
                if call.get("id") is not None:
                    if found["id"] is not None and call["id"] != found["id"]:
                        raise fail(
                            f"tool call {index} changes id at {p.label}: {call['id']!r} after "
                            f"{found['id']!r} ({found['at'].label})",
                            f"{p.label}.choices[0].delta.tool_calls[{index}].id",
                            found["id"],
                            call["id"],
                        )
                    found["id"] = call["id"]
                function = call.get("function") or {}
                found["name"] += function.get("name") or ""
                found["args"] += function.get("arguments") or ""
    for index, found in sorted(calls.items()):
        where = f"{found['at'].label}.choices[0].delta.tool_calls[{index}]"
        if not found["id"] or not found["name"]:
            raise fail(
                f"tool call {index} (from {found['at'].label}) has no id or no function name",
                where,
                "an id and a name",
                {"id": found["id"], "name": found["name"]},
            )
        try:
            arguments = json.loads(found["args"])
        except ValueError as exc:
            raise fail(
                f"tool call {index}'s joined arguments are not JSON ({exc})",
                f"{where}.function.arguments",
                "a JSON object",
                found["args"][:120],
            ) from None
        if not isinstance(arguments, dict):
            raise fail(
                f"tool call {index}'s joined arguments are not a JSON object",
                f"{where}.function.arguments",
                "a JSON object",
                found["args"][:120],
            )


_VISIBLE_FIELDS = ("content", "tool_calls", "function_call", "refusal")
_DELTA_FIELDS = (*_VISIBLE_FIELDS, "reasoning_content", "reasoning")


class OpenAIChat(Api):
    name = "openai_chat"
    protocol = "openai"
    primary = True
    default_prefix = "/v1"
    default_auth = "bearer"
    credentials = ("bearer",)
    operations = {
        "chat": Operation(
            "POST",
            "/chat/completions",
            "chat",
            {"messages": [{"role": "user", "content": PROMPT}], "max_tokens": 64},
        ),
        "models": Operation("GET", "/models", "chat", None),
        "model": Operation("GET", "/models/{model}", "chat", None),
        "embeddings": Operation("POST", "/embeddings", "embeddings", {"input": PROMPT}),
        "images": Operation("POST", "/images/generations", "images", {"prompt": PROMPT}),
        "rerank": Operation(
            "POST", "/rerank", "rerank", {"query": "hello", "documents": ["hello world", "goodbye"]}
        ),
    }
    features = {
        "models": None,
        "chat": None,
        "chat.stream": None,
        "chat.tools": None,
        "chat.json": None,
        "chat.reasoning": None,
        "embeddings": "serves POST /v1/embeddings",
        "images": "serves POST /v1/images/generations",
        "rerank": "serves POST /v1/rerank",
    }
    stream_usage_request = {"stream_options": {"include_usage": True}}
    stream_schema = "openai/chat.completion.chunk"
    terminator = DONE
    output_marker = b'"content"'
    plain_frames_countable = True
    in_band_error = 'data: {"error": …}'

    def claims_path(self, path: str) -> bool:
        return path.rstrip("/").endswith("/chat/completions")

    def owns_event(self, event: str | None, data: dict[str, Any]) -> bool:
        return isinstance(data.get("choices"), list)

    def envelope_problems(self, body: Any, status: int | None) -> list[tuple[str, str]]:
        error, out = error_object(body)
        if error is None:
            return out
        for name in ("message", "type", "param", "code"):
            if name not in error:
                out.append(
                    (
                        f"$.error.{name}",
                        "missing (OpenAI errors carry message, type, param and code)",
                    )
                )
        if "message" in error and not isinstance(error["message"], str):
            out.append(("$.error.message", "not a string"))
        return out

    def recognises(self, body: Any) -> bool:
        return isinstance(body, dict) and isinstance(body.get("choices"), list)

    def plain_answer(self, body: Any) -> Answer:
        answer = Answer()
        if not isinstance(body, dict):
            return answer
        choice = (body.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        answer.text = message.get("content") or ""
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            answer.tools.append(
                (function.get("name", ""), parsed_arguments(function.get("arguments", "")))
            )
        answer.finish = choice.get("finish_reason")
        return answer

    def reasoning_missing(self, body: Any) -> str | None:
        tokens = dig(body, "usage", "completion_tokens_details", "reasoning_tokens")
        message = dig(body, "choices", 0, "message") or {}
        if (isinstance(tokens, int) and tokens > 0) or message.get("reasoning_content"):
            return None
        return f"usage.completion_tokens_details.reasoning_tokens is {tokens!r}"

    def tools_missing(self, body: Any) -> str | None:
        calls = dig(body, "choices", 0, "message", "tool_calls")
        if not isinstance(calls, list) or not calls:
            return "choices[0].message.tool_calls is empty"
        for i, call in enumerate(calls):
            if not json_object(dig(call, "function", "arguments")):
                return f"tool_calls[{i}].function.arguments is not a JSON object"
        finish = dig(body, "choices", 0, "finish_reason")
        return None if finish == "tool_calls" else f"finish_reason is {finish!r}, not tool_calls"

    def check_stream(self, events: list[Payload], options: GrammarOptions) -> None:
        check_chat_stream(events, options)

    def classify(self, event: str | None, obj: dict[str, Any]) -> Delta:
        if obj.get("error"):
            return Delta(error=error_message(obj["error"]))
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
            if not reasoning:
                return VISIBLE if visible else NOTHING
            return Delta(visible, reasoning)
        details = usage.get("completion_tokens_details") or {}
        return Delta(
            visible,
            reasoning,
            as_int(usage.get("completion_tokens")),
            as_int(details.get("reasoning_tokens")),
            input_tokens=as_int(usage.get("prompt_tokens")),
        )

    def carries_output(self, event: str | None, obj: dict[str, Any], visible: bool) -> bool:
        fields = _VISIBLE_FIELDS if visible else _DELTA_FIELDS
        for choice in obj.get("choices") or []:
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if isinstance(delta, dict) and any(delta.get(f) for f in fields):
                return True
        return False

    def joined_answer(self, events: Sequence[Payload]) -> Answer:
        answer = Answer()
        tools: dict[Any, list[str]] = {}
        for p in events:
            if not isinstance(p.data, dict):
                continue
            for choice in p.data.get("choices") or []:
                delta = choice.get("delta") or {}
                answer.add(delta.get("content"), p.label)
                for call in delta.get("tool_calls") or []:
                    found = tools.setdefault(call.get("index", 0), ["", ""])
                    function = call.get("function") or {}
                    found[0] += function.get("name") or ""
                    found[1] += function.get("arguments") or ""
                answer.finish = choice.get("finish_reason") or answer.finish
        answer.tools = [(name, parsed_arguments(args)) for name, args in tools.values()]
        return answer

    def claims_completion(self, p: Payload) -> str | None:
        data = p.data
        if data == DONE:
            return "data: [DONE]"
        if not isinstance(data, dict):
            return None
        if data.get("usage") is not None:
            return "a usage chunk"
        for choice in data.get("choices") or []:
            if isinstance(choice, dict) and choice.get("finish_reason") is not None:
                return f"finish_reason {choice['finish_reason']!r}"
        return None

    def content_pieces(self, p: Payload) -> int:
        if not isinstance(p.data, dict):
            return 0
        count = 0
        for choice in p.data.get("choices") or []:
            delta = choice.get("delta") or {}
            count += bool(delta.get("content") or delta.get("tool_calls"))
        return count


OPENAI_CHAT = OpenAIChat()
