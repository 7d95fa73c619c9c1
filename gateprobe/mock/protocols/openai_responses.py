"""OpenAI Responses: POST /v1/responses (plain and streamed) and POST /v1/responses/compact."""

from __future__ import annotations

import base64
from typing import Any

from gateprobe.mock.asgi import Request
from gateprobe.mock.call_types import Call, Frame, Spec
from gateprobe.mock.errors import GatewayError
from gateprobe.mock.protocols.common import (
    WriterBase,
    canonical,
    dumps,
    invalid,
    opt_bool,
    opt_int,
    opt_str,
    req_str,
    sse,
)
from gateprobe.mock.protocols.openai_chat import reasoning_effort
from gateprobe.mock.upstream import Completion, GenRequest, ToolSpec, prompt_tokens

__all__ = ["CompactWriter", "ResponsesWriter"]


def _input_texts(value: Any) -> tuple[list[str], int]:
    """Texts and message count of a Responses ``input`` (a string or a list of items)."""
    if isinstance(value, str):
        return [value], 1
    if not isinstance(value, list) or not value:
        raise invalid("input", "Field 'input' must be a string or a non-empty array")
    texts: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise invalid(f"input[{i}]", f"'input[{i}]' must be an object")
        content = item.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts += [
                p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
            ]
        elif isinstance(item.get("output"), str):
            texts.append(item["output"])
    return texts, len(value)


def _tools(body: dict[str, Any]) -> tuple[list[ToolSpec], str]:
    tools = body.get("tools") or []
    if not isinstance(tools, list):
        raise invalid("tools", "Field 'tools' must be an array")
    specs = [
        ToolSpec(t["name"], t.get("parameters") or {})
        for t in tools
        if isinstance(t, dict) and t.get("type") == "function" and isinstance(t.get("name"), str)
    ]
    choice = body.get("tool_choice", "auto")
    if isinstance(choice, dict):
        choice = choice.get("name") or "auto"
    if not isinstance(choice, str):
        raise invalid("tool_choice", "'tool_choice' must be a string or an object")
    return specs, choice


def _usage(c: Completion, output_tokens: int | None = None) -> dict[str, Any]:
    out = c.completion_tokens if output_tokens is None else output_tokens
    return {
        "input_tokens": c.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": out,
        "output_tokens_details": {"reasoning_tokens": len(c.reasoning)},
        "total_tokens": c.prompt_tokens + out,
    }


class ResponsesWriter(WriterBase):
    protocol = "openai"

    def parse(self, body: dict[str, Any], request: Request, path_model: str | None) -> Spec:
        model = req_str(body, "model")
        if "input" not in body:
            raise GatewayError(
                400, "missing_field", "Missing required field 'input'", param="input"
            )
        texts, count = _input_texts(body["input"])
        instructions = opt_str(body, "instructions")
        if instructions:
            texts.append(instructions)
        tools, choice = _tools(body)
        reasoning = body.get("reasoning")
        effort = reasoning_effort(
            reasoning.get("effort") if isinstance(reasoning, dict) else None, "reasoning.effort"
        )
        fmt = (
            ((body.get("text") or {}).get("format") or {})
            if isinstance(body.get("text"), dict)
            else {}
        )
        schema = fmt.get("schema") if fmt.get("type") == "json_schema" else None
        gen = GenRequest(
            model=model,
            texts=texts,
            messages=count,
            max_tokens=opt_int(body, "max_output_tokens"),
            tools=tools,
            tool_choice=choice,
            json_schema=schema if isinstance(schema, dict) else None,
            json_mode=fmt.get("type") in ("json_object", "json_schema"),
            reasoning=effort,
            fingerprint=canonical(body["input"], instructions, body.get("tools"), choice, fmt),
        )
        options = {
            "instructions": instructions,
            "max_output_tokens": gen.max_tokens,
            "effort": effort,
            "tool_choice": choice,
            "tools": body.get("tools") or [],
        }
        return Spec(model, "responses", opt_bool(body, "stream"), gen, options=options)

    # -- shapes --------------------------------------------------------------------------

    def _items(self, c: Completion, *, done: bool) -> list[dict[str, Any]]:
        status = "completed" if done else "in_progress"
        items: list[dict[str, Any]] = []
        if c.reasoning:
            items.append(
                {
                    "type": "reasoning",
                    "id": f"rs_{c.digest}",
                    "summary": [],
                    "content": [
                        {"type": "reasoning_text", "text": "".join(c.reasoning) if done else ""}
                    ],
                }
            )
        for tool in c.tool_calls:
            items.append(
                {
                    "type": "function_call",
                    "id": f"fc_{c.digest}",
                    "call_id": tool.id,
                    "name": tool.name,
                    "arguments": tool.arguments if done else "",
                    "status": status,
                }
            )
        if c.pieces or not c.tool_calls:
            items.append(
                {
                    "type": "message",
                    "id": f"msg_{c.digest}",
                    "status": status,
                    "role": "assistant",
                    "content": [
                        {"type": "output_text", "text": c.text, "annotations": [], "logprobs": []}
                    ]
                    if done
                    else [],
                }
            )
        return items

    def _response(self, call: Call, spec: Spec, c: Completion, status: str) -> dict[str, Any]:
        done = status != "in_progress"
        incomplete = done and c.finish_reason == "length"
        return {
            "id": f"resp_{c.digest}",
            "object": "response",
            "created_at": call.created,
            "status": "incomplete" if incomplete else status,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
            "instructions": spec.options.get("instructions"),
            "max_output_tokens": spec.options.get("max_output_tokens"),
            "model": call.model_name,
            "output": self._items(c, done=True) if done else [],
            "parallel_tool_calls": True,
            "previous_response_id": None,
            "reasoning": {"effort": spec.options.get("effort"), "summary": None},
            "temperature": 1.0,
            "text": {"format": {"type": "text"}},
            "tool_choice": spec.options.get("tool_choice", "auto"),
            "tools": spec.options.get("tools", []),
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": _usage(c) if done else None,
            "metadata": {},
        }

    def render(self, call: Call, spec: Spec, c: Completion | None) -> dict[str, Any]:
        assert c is not None
        return self._response(call, spec, c, "completed")

    def frames(self, call: Call, spec: Spec, c: Completion) -> list[Frame]:
        frames: list[Frame] = []
        spec.options["response_id"] = f"resp_{c.digest}"  # response.failed keeps the same id
        # ... and is the full Response object too (tools, tool_choice, ... as the spec requires)
        spec.options["in_progress"] = self._response(call, spec, c, "in_progress")

        repeats = "responses-sequence-repeats" in self.defects

        def event(kind: str, tokens: int = 0, **data: Any) -> None:
            # the defect gives the fourth event the third one's number
            sequence = len(frames) - 1 if repeats and len(frames) >= 3 else len(frames)
            payload = {"type": kind, "sequence_number": sequence, **data}
            frames.append((sse(dumps(payload), kind), tokens))

        event("response.created", response=self._response(call, spec, c, "in_progress"))
        event("response.in_progress", response=self._response(call, spec, c, "in_progress"))
        final_items = self._items(c, done=True)
        for index, (opening, item) in enumerate(
            zip(self._items(c, done=False), final_items, strict=True)
        ):
            event("response.output_item.added", output_index=index, item=opening)
            item_id = item["id"]
            if item["type"] == "reasoning":
                for piece in c.reasoning:
                    event(
                        "response.reasoning_text.delta",
                        1,
                        item_id=item_id,
                        output_index=index,
                        content_index=0,
                        delta=piece,
                    )
                event(
                    "response.reasoning_text.done",
                    item_id=item_id,
                    output_index=index,
                    content_index=0,
                    text="".join(c.reasoning),
                )
            elif item["type"] == "function_call":
                tool = c.tool_calls[0]
                for piece in tool.pieces:
                    event(
                        "response.function_call_arguments.delta",
                        1,
                        item_id=item_id,
                        output_index=index,
                        delta=piece,
                    )
                event(
                    "response.function_call_arguments.done",
                    item_id=item_id,
                    output_index=index,
                    arguments=tool.arguments,
                )
            else:
                part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
                event(
                    "response.content_part.added",
                    item_id=item_id,
                    output_index=index,
                    content_index=0,
                    part=part,
                )
                for piece in self.stream_pieces(c):
                    event(
                        "response.output_text.delta",
                        1,
                        item_id=item_id,
                        output_index=index,
                        content_index=0,
                        delta=piece,
                        logprobs=[],
                    )
                event(
                    "response.output_text.done",
                    item_id=item_id,
                    output_index=index,
                    content_index=0,
                    text=c.text,
                    logprobs=[],
                )
                event(
                    "response.content_part.done",
                    item_id=item_id,
                    output_index=index,
                    content_index=0,
                    part={**part, "text": c.text},
                )
            event("response.output_item.done", output_index=index, item=item)
        final = self._response(call, spec, c, "completed")
        final["usage"] = self.streamed_usage(final["usage"])
        if "responses-empty-output" in self.defects:
            final["output"] = []  # new-api #4362
        kind = "response.incomplete" if final["status"] == "incomplete" else "response.completed"
        if "responses-no-terminal-event" not in self.defects:
            event(kind, response=final)
        return frames

    def error_frames(self, call: Call, spec: Spec, error: GatewayError, sent: int) -> list[bytes]:
        failed = {
            **spec.options.get("in_progress", {}),
            "id": spec.options.get("response_id", f"resp_{call.request_id}"),
            "object": "response",
            "created_at": call.created,
            "status": "failed",
            "model": call.model_name,
            "output": [],
            "usage": None,
            "error": {
                "code": "server_error",
                "message": f"{error.message} (request id: {call.request_id})",
            },
        }
        payload = {"type": "response.failed", "sequence_number": sent, "response": failed}
        return [sse(dumps(payload), "response.failed")]

    def end_frames(
        self, call: Call, spec: Spec, c: Completion, sent: int, delivered: int
    ) -> list[bytes]:
        final = self._response(call, spec, c, "completed")
        payload = {"type": "response.completed", "sequence_number": sent, "response": final}
        return [sse(dumps(payload), "response.completed")]

    def stream_content_type(self, spec: Spec) -> str:
        return "text/event-stream; charset=utf-8"


class CompactWriter(WriterBase):
    """POST /v1/responses/compact: the user messages, then one opaque compaction item."""

    protocol = "openai"

    def parse(self, body: dict[str, Any], request: Request, path_model: str | None) -> Spec:
        model = req_str(body, "model")
        if "input" not in body and not body.get("previous_response_id"):
            raise GatewayError(
                400, "missing_field", "Missing required field 'input'", param="input"
            )
        texts, count = _input_texts(body.get("input") or "")
        instructions = opt_str(body, "instructions")
        if instructions:
            texts.append(instructions)
        spec = Spec(model, "responses", prompt_tokens=prompt_tokens(texts, count))
        spec.options = {"input": body.get("input"), "texts": texts}
        return spec

    def render(self, call: Call, spec: Spec, c: Completion | None) -> dict[str, Any]:
        raw = spec.options.get("input")
        users = [
            item
            for item in (raw if isinstance(raw, list) else [{"role": "user", "content": raw}])
            if isinstance(item, dict) and item.get("role") == "user"
        ]
        summary = " ".join(spec.options["texts"])[:4096]
        return {
            "id": f"resp_{call.request_id}",
            "object": "response.compaction",
            "created_at": call.created,
            "output": [
                *[
                    {
                        "type": "message",
                        "role": "user",
                        "id": f"msg_{call.request_id}_{i}",
                        "status": "completed",
                        "content": [{"type": "input_text", "text": u.get("content")}]
                        if isinstance(u.get("content"), str)
                        else u.get("content"),
                    }
                    for i, u in enumerate(users)
                ],
                {
                    "type": "compaction",
                    "id": f"cmp_{call.request_id}",
                    "encrypted_content": base64.b64encode(summary.encode()).decode(),
                },
            ],
            "usage": {
                "input_tokens": spec.prompt_tokens,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": 0,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": spec.prompt_tokens,
            },
        }

    def frames(self, call: Call, spec: Spec, c: Completion) -> list[Frame]:
        raise NotImplementedError

    def error_frames(self, call: Call, spec: Spec, error: GatewayError, sent: int) -> list[bytes]:
        return []

    def stream_content_type(self, spec: Spec) -> str:
        return "application/json"
