"""The ``stream_equals_plain`` check: the joined stream is the answer the plain call gives.

For a deterministic request (the mock's generation is; a real model needs ``temperature: 0``
and even then may differ), a gateway must not drop, duplicate, reorder or rewrite chunks. The
check sends the same request without streaming (``CheckContext.call``) and compares the text,
the tool calls (name and parsed arguments) and the finish reason, naming the event where the
joined text first departs from the plain answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from gateprobe.checks._registry import FLAG, CheckContext, check
from gateprobe.checks._stream_common import DONE, Payload, fail, guarded, is_responses, payloads
from gateprobe.errors import CheckFailed

__all__ = ["Answer", "joined_answer", "plain_answer", "plain_request"]

CHECK = "stream_equals_plain"


@dataclass
class Answer:
    text: str = ""
    tools: list[tuple[str, Any]] = field(default_factory=list)  # (name, parsed arguments)
    finish: str | None = None
    pieces: list[tuple[int, str]] = field(default_factory=list)  # (text offset, event label)

    def label_at(self, offset: int) -> str:
        found = self.pieces[0][1] if self.pieces else "end of stream"
        for start, label in self.pieces:
            if start > offset:
                break
            found = label
        return found


def _args(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def joined_answer(protocol: str | None, responses: bool, events: list[Payload]) -> Answer:
    answer = Answer()

    def add(text: Any, p: Payload) -> None:
        if isinstance(text, str) and text:
            answer.pieces.append((len(answer.text), p.label))
            answer.text += text

    tools: dict[Any, list[str]] = {}
    for p in events:
        data = p.data
        if data == DONE or not isinstance(data, dict):
            continue
        if protocol == "anthropic":
            if p.type == "content_block_start":
                block = data.get("content_block") or {}
                if block.get("type") == "tool_use":
                    tools[data.get("index")] = [block.get("name", ""), ""]
            elif p.type == "content_block_delta":
                delta = data.get("delta") or {}
                if delta.get("type") == "text_delta":
                    add(delta.get("text"), p)
                elif delta.get("type") == "input_json_delta" and data.get("index") in tools:
                    tools[data["index"]][1] += delta.get("partial_json") or ""
            elif p.type == "message_delta":
                answer.finish = (data.get("delta") or {}).get("stop_reason") or answer.finish
        elif protocol == "gemini":
            for candidate in data.get("candidates") or []:
                for part in (candidate.get("content") or {}).get("parts") or []:
                    if part.get("thought"):
                        continue
                    add(part.get("text"), p)
                    if "functionCall" in part:
                        call = part["functionCall"]
                        tools[len(tools)] = [call.get("name", ""), json.dumps(call.get("args"))]
                answer.finish = candidate.get("finishReason") or answer.finish
        elif responses:
            kind = p.type or ""
            if kind == "response.output_text.delta":
                add(data.get("delta"), p)
            elif kind == "response.output_item.added":
                item = data.get("item") or {}
                if item.get("type") == "function_call":
                    tools[data.get("output_index")] = [item.get("name", ""), ""]
            elif kind == "response.function_call_arguments.delta":
                if data.get("output_index") in tools:
                    tools[data["output_index"]][1] += data.get("delta") or ""
            elif kind in ("response.completed", "response.incomplete", "response.failed"):
                answer.finish = (data.get("response") or {}).get("status")
        else:
            for choice in data.get("choices") or []:
                delta = choice.get("delta") or {}
                add(delta.get("content"), p)
                for call in delta.get("tool_calls") or []:
                    found = tools.setdefault(call.get("index", 0), ["", ""])
                    function = call.get("function") or {}
                    found[0] += function.get("name") or ""
                    found[1] += function.get("arguments") or ""
                answer.finish = choice.get("finish_reason") or answer.finish
    answer.tools = [(name, _args(args)) for name, args in tools.values()]
    return answer


def plain_answer(protocol: str | None, responses: bool, body: Any) -> Answer:
    answer = Answer()
    if not isinstance(body, dict):
        return answer
    if protocol == "anthropic":
        for block in body.get("content") or []:
            if block.get("type") == "text":
                answer.text += block.get("text") or ""
            elif block.get("type") == "tool_use":
                answer.tools.append((block.get("name", ""), block.get("input")))
        answer.finish = body.get("stop_reason")
    elif protocol == "gemini":
        for candidate in (body.get("candidates") or [])[:1]:
            for part in (candidate.get("content") or {}).get("parts") or []:
                if part.get("thought"):
                    continue
                answer.text += part.get("text") or ""
                if "functionCall" in part:
                    call = part["functionCall"]
                    answer.tools.append((call.get("name", ""), call.get("args")))
            answer.finish = candidate.get("finishReason")
    elif responses:
        for item in body.get("output") or []:
            if item.get("type") == "message":
                for part in item.get("content") or []:
                    if part.get("type") == "output_text":
                        answer.text += part.get("text") or ""
            elif item.get("type") == "function_call":
                answer.tools.append((item.get("name", ""), _args(item.get("arguments") or "")))
        answer.finish = body.get("status")
    else:
        choice = (body.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        answer.text = message.get("content") or ""
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            answer.tools.append((function.get("name", ""), _args(function.get("arguments", ""))))
        answer.finish = choice.get("finish_reason")
    return answer


def plain_request(ctx: CheckContext) -> dict[str, Any]:
    """This step's request as a raw step spec, without streaming."""
    request = ctx.exchange.request
    parts = urlsplit(request.url)
    base_path = urlsplit(ctx.target.base_url).path.rstrip("/")
    path = parts.path[len(base_path) :] if parts.path.startswith(base_path) else parts.path
    path = path.replace(":streamGenerateContent", ":generateContent")
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "alt"]
    if query:
        path += "?" + urlencode(query)
    try:
        body = json.loads(request.body or b"null")
    except ValueError:
        body = None
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
    headers = {k: v for k, v in request.headers.items() if k != "content-length"}
    return {"method": request.method, "path": path, "body": body, "headers": headers, "key": None}


@check("stream_equals_plain", argument=FLAG)
def stream_equals_plain(ctx: CheckContext, wanted: Any) -> None:
    """The joined stream (text, tool calls, finish reason) equals the plain answer."""
    if not wanted:
        return
    if ctx.call is None:
        raise CheckFailed(CHECK, "no target to send the plain request to", where="call")
    guarded(CHECK, lambda: _compare(ctx))


def _compare(ctx: CheckContext) -> None:
    assert ctx.call is not None
    events = payloads(ctx, CHECK)
    responses = ctx.protocol == "openai" and is_responses(ctx, events)
    streamed = joined_answer(ctx.protocol, responses, events)
    plain_exchange = ctx.call(plain_request(ctx))
    if plain_exchange.status != 200:
        raise fail(
            f"the plain request answered HTTP {plain_exchange.status}",
            "plain.status",
            200,
            plain_exchange.status,
            check=CHECK,
        )
    try:
        plain = plain_answer(ctx.protocol, responses, plain_exchange.json())
    except ValueError as exc:
        raise fail(f"the plain answer: {exc}", "plain.body", check=CHECK) from None
    if streamed.text != plain.text:
        offset = next(
            (i for i, (a, b) in enumerate(zip(streamed.text, plain.text, strict=False)) if a != b),
            min(len(streamed.text), len(plain.text)),
        )
        where = streamed.label_at(offset)
        raise fail(
            f"the joined stream text departs from the plain answer at character {offset} "
            f"({where}): stream {streamed.text[offset : offset + 30]!r}, plain "
            f"{plain.text[offset : offset + 30]!r}",
            where,
            plain.text[:200],
            streamed.text[:200],
            check=CHECK,
        )
    if streamed.tools != plain.tools:
        raise fail(
            "the streamed tool calls differ from the plain answer's",
            "tool calls",
            plain.tools,
            streamed.tools,
            check=CHECK,
        )
    if streamed.finish != plain.finish:
        raise fail(
            f"the stream finished with {streamed.finish!r}, the plain answer with {plain.finish!r}",
            "finish reason",
            plain.finish,
            streamed.finish,
            check=CHECK,
        )
