"""OpenAI Chat Completions: POST /v1/chat/completions, plain and streamed."""

from __future__ import annotations

from typing import Any

from gateprobe.mock.asgi import Request
from gateprobe.mock.call_types import Call, Frame, Spec
from gateprobe.mock.errors import GatewayError, envelope
from gateprobe.mock.protocols.common import (
    WriterBase,
    canonical,
    dumps,
    invalid,
    opt_bool,
    opt_int,
    opt_str,
    req_list,
    req_str,
    sse,
)
from gateprobe.mock.upstream import REASONING_PIECES, Completion, GenRequest, ToolSpec

__all__ = ["ChatWriter", "message_texts", "openai_tools", "reasoning_effort", "usage_block"]

FINGERPRINT = "fp_gateprobe"
DONE = b"data: [DONE]\n\n"


def message_texts(messages: list[Any], field: str = "messages") -> list[str]:
    """The text of OpenAI-style messages (string content or a list of parts)."""
    texts: list[str] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise invalid(f"{field}[{i}]", f"'{field}[{i}]' must be an object with a 'role'")
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    texts.append(part["text"])
        elif content is not None:
            raise invalid(
                f"{field}[{i}].content", f"'{field}[{i}].content' must be a string or array"
            )
    return texts


def openai_tools(body: dict[str, Any]) -> tuple[list[ToolSpec], str]:
    tools = body.get("tools")
    specs: list[ToolSpec] = []
    if tools is not None:
        if not isinstance(tools, list):
            raise invalid("tools", "Field 'tools' must be an array")
        for i, tool in enumerate(tools):
            fn = tool.get("function", tool) if isinstance(tool, dict) else None
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                raise invalid(f"tools[{i}]", f"'tools[{i}]' must name a function")
            specs.append(ToolSpec(fn["name"], fn.get("parameters") or {}))
    choice = body.get("tool_choice", "auto")
    if isinstance(choice, dict):
        function = choice.get("function")
        name = (function.get("name") if isinstance(function, dict) else None) or choice.get("name")
        if not isinstance(name, str):
            raise invalid("tool_choice", "'tool_choice' must name a function")
        choice = name
    elif choice not in ("auto", "none", "required"):
        raise invalid("tool_choice", "'tool_choice' must be auto, none, required or a function")
    return specs, choice


def _response_format(body: dict[str, Any]) -> tuple[dict[str, Any] | None, bool]:
    fmt = body.get("response_format")
    if fmt is None:
        return None, False
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return None, False
    if kind == "json_object":
        return None, True
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise invalid("response_format", "'response_format.json_schema.schema' is required")
        return schema, True
    raise invalid(
        "response_format", "'response_format.type' must be text, json_object or json_schema"
    )


def reasoning_effort(effort: str | None, field: str = "reasoning_effort") -> str | None:
    if effort is not None and effort not in REASONING_PIECES:
        raise invalid(field, f"Field '{field}': unsupported reasoning effort '{effort}'")
    return effort


def usage_block(c: Completion, delivered: int | None = None) -> dict[str, Any]:
    completion = c.completion_tokens if delivered is None else delivered
    return {
        "prompt_tokens": c.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": c.prompt_tokens + completion,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": len(c.reasoning)},
    }


class ChatWriter(WriterBase):
    protocol = "openai"
    pure = True

    def parse(self, body: dict[str, Any], request: Request, path_model: str | None) -> Spec:
        model = req_str(body, "model")
        messages = req_list(body, "messages")
        texts = message_texts(messages)
        max_tokens = opt_int(body, "max_completion_tokens") or opt_int(body, "max_tokens")
        stream = opt_bool(body, "stream")
        options = body.get("stream_options")
        include_usage = False
        if options is not None:
            if not isinstance(options, dict):
                raise invalid("stream_options", "'stream_options' must be an object")
            include_usage = bool(options.get("include_usage", False))
        tools, choice = openai_tools(body)
        schema, json_mode = _response_format(body)
        effort = reasoning_effort(opt_str(body, "reasoning_effort"))
        gen = GenRequest(
            model=model,
            texts=texts,
            messages=len(messages),
            max_tokens=max_tokens,
            tools=tools,
            tool_choice=choice,
            json_schema=schema,
            json_mode=json_mode,
            reasoning=effort,
            fingerprint=canonical(messages, body.get("tools"), choice, body.get("response_format")),
        )
        return Spec(model, "chat", stream, gen, options={"include_usage": include_usage})

    def render(self, call: Call, spec: Spec, c: Completion | None) -> dict[str, Any]:
        assert c is not None
        message: dict[str, Any] = {"role": "assistant", "content": c.text or None, "refusal": None}
        if c.reasoning:
            message["reasoning_content"] = "".join(c.reasoning)
        if c.tool_calls:
            message["tool_calls"] = [
                {
                    "id": t.id,
                    "type": "function",
                    "function": {"name": t.name, "arguments": t.arguments},
                }
                for t in c.tool_calls
            ]
        return {
            "id": f"chatcmpl-{c.digest}",
            "object": "chat.completion",
            "created": call.created,
            "model": call.model_name,
            "system_fingerprint": FINGERPRINT,
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": c.finish_reason}
            ],
            "usage": usage_block(c),
        }

    def frames(self, call: Call, spec: Spec, c: Completion) -> list[Frame]:
        include_usage = spec.options.get("include_usage", False)
        usage_tail = ',"usage":null}' if include_usage else "}"
        head = (
            f'{{"id":"chatcmpl-{c.digest}","object":"chat.completion.chunk","created":{call.created},'
            f'"model":{dumps(call.model_name)},"system_fingerprint":"{FINGERPRINT}","choices":['
        )

        def chunk(delta: str, finish: str = "null") -> bytes:
            return sse(
                f'{head}{{"index":0,"delta":{delta},"logprobs":null,"finish_reason":{finish}}}]'
                f"{usage_tail}"
            )

        defects = self.defects
        opening_delta = '{"content":""}' if "no-role-in-first-delta" in defects else None
        frames: list[Frame] = [(chunk(opening_delta or '{"role":"assistant","content":""}'), 0)]
        frames += [(chunk(f'{{"reasoning_content":{dumps(p)}}}'), 1) for p in c.reasoning]
        frames += [(chunk(f'{{"content":{dumps(p)}}}'), 1) for p in self.stream_pieces(c)]
        for index, tool in enumerate(c.tool_calls):
            opening = {
                "index": index,
                "id": tool.id,
                "type": "function",
                "function": {"name": tool.name, "arguments": ""},
            }
            frames.append((chunk(f'{{"tool_calls":[{dumps(opening)}]}}'), 0))
            frames += [
                (
                    chunk(
                        f'{{"tool_calls":[{{"index":{index},"function":{{"arguments":{dumps(p)}}}}}]}}'
                    ),
                    1,
                )
                for p in tool.pieces
            ]
        frames.append((chunk("{}", f'"{c.finish_reason}"'), 0))
        if "finish-reason-on-every-chunk" in defects:
            finished = f'"finish_reason":"{c.finish_reason}"'.encode()
            frames = [(data.replace(b'"finish_reason":null', finished), n) for data, n in frames]
        if "unstable-chunk-id" in defects:
            chunk_id = f"chatcmpl-{c.digest}".encode()
            frames = [
                (data.replace(chunk_id, chunk_id + b"-%d" % i) if i >= 2 else data, n)
                for i, (data, n) in enumerate(frames)
            ]
        if not include_usage and "usage-chunk-without-include-usage" in defects:
            frames.append((sse(f'{head}],"usage":{dumps(usage_block(c))}}}'), 0))
        if include_usage:
            choices = (
                '{"index":0,"delta":{},"logprobs":null,"finish_reason":null}'
                if "usage-chunk-with-choices" in self.defects
                else ""
            )
            usage = self.streamed_usage(usage_block(c))
            frames.append((sse(f'{head}{choices}],"usage":{dumps(usage)}}}'), 0))
        if "missing-done" not in self.defects:
            frames.append((DONE, 0))
        return frames

    def error_frames(self, call: Call, spec: Spec, error: GatewayError, sent: int) -> list[bytes]:
        frames = [sse(dumps(envelope("openai", error, call.request_id, error.status)))]
        if "done-after-stream-error" in self.defects and sent:
            # new-api / one-api: a synthesised usage chunk and [DONE] after the truncation
            usage = {"prompt_tokens": call.prompt_tokens, "completion_tokens": 0}
            usage["total_tokens"] = call.prompt_tokens
            fabricated = {
                "id": f"chatcmpl-{call.request_id}",
                "object": "chat.completion.chunk",
                "created": call.created,
                "model": call.model_name,
                "choices": [],
                "usage": usage,
            }
            frames += [sse(dumps(fabricated)), DONE]
        return frames

    def end_frames(
        self, call: Call, spec: Spec, c: Completion, sent: int, delivered: int
    ) -> list[bytes]:
        base = {
            "id": f"chatcmpl-{c.digest}",
            "object": "chat.completion.chunk",
            "created": call.created,
            "model": call.model_name,
            "system_fingerprint": FINGERPRINT,
        }
        include_usage = spec.options.get("include_usage", False)
        choice = {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
        finish: dict[str, Any] = {**base, "choices": [choice]}
        if include_usage:
            finish["usage"] = None
        frames = [sse(dumps(finish))]
        if include_usage:
            frames.append(sse(dumps({**base, "choices": [], "usage": usage_block(c, delivered)})))
        return [*frames, DONE]

    def stream_content_type(self, spec: Spec) -> str:
        return "text/event-stream; charset=utf-8"
