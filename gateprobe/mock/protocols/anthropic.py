"""Claude Messages: POST /v1/messages, plain and streamed with the full event grammar."""

from __future__ import annotations

import hashlib
import json
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
    req_list,
    req_str,
    sse,
)
from gateprobe.mock.upstream import Completion, GenRequest, ToolSpec

__all__ = ["MessagesWriter"]

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def _texts(content: Any, where: str) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        out = []
        for block in content:
            if isinstance(block, dict):
                for field in ("text", "thinking"):
                    if isinstance(block.get(field), str):
                        out.append(block[field])
                if isinstance(block.get("content"), str):
                    out.append(block["content"])
        return out
    raise invalid(where, f"'{where}' must be a string or an array of content blocks")


def _signature(c: Completion) -> str:
    return hashlib.sha256(("sig" + c.digest).encode()).hexdigest()


class MessagesWriter(WriterBase):
    protocol = "anthropic"
    pure = True

    def parse(self, body: dict[str, Any], request: Request, path_model: str | None) -> Spec:
        model = req_str(body, "model")
        if "max_tokens" not in body:
            raise GatewayError(
                400, "missing_field", "Missing required field 'max_tokens'", param="max_tokens"
            )
        max_tokens = body["max_tokens"]
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise invalid("max_tokens", "Field 'max_tokens' must be an integer >= 1")
        messages = req_list(body, "messages")
        texts: list[str] = []
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
                raise invalid(f"messages[{i}]", f"'messages[{i}]' must have role user or assistant")
            texts += _texts(message.get("content"), f"messages[{i}].content")
        if body.get("system") is not None:
            texts += _texts(body["system"], "system")
        tools = []
        raw_tools = body.get("tools") or []
        if not isinstance(raw_tools, list):
            raise invalid("tools", "Field 'tools' must be an array")
        for i, tool in enumerate(raw_tools):
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
                raise invalid(f"tools[{i}]", f"'tools[{i}]' must have a name")
            tools.append(ToolSpec(tool["name"], tool.get("input_schema") or {}))
        choice_raw = body.get("tool_choice") or {"type": "auto"}
        if not isinstance(choice_raw, dict) or choice_raw.get("type") not in (
            "auto",
            "any",
            "tool",
            "none",
        ):
            raise invalid("tool_choice", "'tool_choice.type' must be auto, any, tool or none")
        choice = choice_raw.get("name") if choice_raw["type"] == "tool" else choice_raw["type"]
        thinking = body.get("thinking")
        effort = None
        if thinking is not None:
            if not isinstance(thinking, dict) or thinking.get("type") not in (
                "enabled",
                "disabled",
                "adaptive",
            ):
                raise invalid("thinking", "'thinking.type' must be enabled, disabled or adaptive")
            if thinking["type"] == "enabled":
                budget = thinking.get("budget_tokens")
                if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1024:
                    raise invalid(
                        "thinking.budget_tokens", "'thinking.budget_tokens' must be >= 1024"
                    )
                if budget >= max_tokens:
                    raise invalid(
                        "thinking.budget_tokens", "'budget_tokens' must be less than 'max_tokens'"
                    )
                effort = "low" if budget < 4096 else "medium" if budget < 16384 else "high"
            elif thinking["type"] == "adaptive":
                effort = "medium"
        gen = GenRequest(
            model=model,
            texts=texts,
            messages=len(messages),
            max_tokens=max_tokens,
            tools=tools,
            tool_choice=str(choice),
            reasoning=effort,
            fingerprint=canonical(messages, body.get("system"), body.get("tools"), choice_raw),
        )
        return Spec(model, "chat", opt_bool(body, "stream"), gen)

    def _blocks(self, c: Completion) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        if c.reasoning:
            blocks.append(
                {"type": "thinking", "thinking": "".join(c.reasoning), "signature": _signature(c)}
            )
        if c.pieces:
            blocks.append({"type": "text", "text": c.text})
        for tool in c.tool_calls:
            blocks.append(
                {
                    "type": "tool_use",
                    "id": f"toolu_{tool.id[5:]}",
                    "name": tool.name,
                    "input": json.loads(tool.arguments),
                }
            )
        return blocks

    def _usage(self, c: Completion, output: int) -> dict[str, Any]:
        return {
            "input_tokens": c.prompt_tokens,
            "output_tokens": output,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }

    def render(self, call: Call, spec: Spec, c: Completion | None) -> dict[str, Any]:
        assert c is not None
        return {
            "id": f"msg_{c.digest}",
            "type": "message",
            "role": "assistant",
            "model": call.model_name,
            "content": self._blocks(c),
            "stop_reason": STOP_REASONS[c.finish_reason],
            "stop_sequence": None,
            "usage": self._usage(c, c.completion_tokens),
        }

    def frames(self, call: Call, spec: Spec, c: Completion) -> list[Frame]:
        frames: list[Frame] = []

        defects = self.defects
        mismatch = "anthropic-event-name-mismatch" in defects
        renamed = {"content_block_delta": "delta"} if mismatch else {}

        def event(kind: str, tokens: int = 0, **data: Any) -> None:
            frames.append((sse(dumps({"type": kind, **data}), renamed.get(kind, kind)), tokens))

        start: dict[str, Any] = {
            "id": f"msg_{c.digest}",
            "type": "message",
            "role": "assistant",
            "model": call.model_name,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": self.streamed_usage(self._usage(c, 1)),
        }
        event("message_start", message=start)
        event("ping")
        out_of_order = "anthropic-events-out-of-order" in self.defects
        for index, block in enumerate(self._blocks(c)):
            kind = block["type"]
            if kind == "thinking":
                opening: dict[str, Any] = {"type": "thinking", "thinking": "", "signature": ""}
                deltas = [({"type": "thinking_delta", "thinking": p}, 1) for p in c.reasoning]
                deltas.append(({"type": "signature_delta", "signature": block["signature"]}, 0))
            elif kind == "text":
                opening = {"type": "text", "text": ""}
                deltas = [({"type": "text_delta", "text": p}, 1) for p in self.stream_pieces(c)]
            else:
                opening = {
                    "type": "tool_use",
                    "id": block["id"],
                    "name": block["name"],
                    "input": {},
                }
                deltas = [
                    ({"type": "input_json_delta", "partial_json": p}, 1)
                    for p in c.tool_calls[0].pieces
                ]
            event("content_block_start", index=index, content_block=opening)
            if out_of_order:
                event("content_block_stop", index=index)
            for delta, tokens in deltas:
                event("content_block_delta", tokens, index=index, delta=delta)
            if not out_of_order:
                event("content_block_stop", index=index)
        output_tokens = c.completion_tokens
        if "anthropic-usage-not-cumulative" in defects and output_tokens > 1:
            # the increment since the last report, not the running total
            event(
                "message_delta",
                delta={"stop_reason": None, "stop_sequence": None},
                usage={"output_tokens": output_tokens - 1},
            )
            output_tokens = 1
        event(
            "message_delta",
            delta={"stop_reason": STOP_REASONS[c.finish_reason], "stop_sequence": None},
            usage=self.streamed_usage({"output_tokens": output_tokens}),
        )
        event("message_stop")
        return frames

    def error_frames(self, call: Call, spec: Spec, error: GatewayError, sent: int) -> list[bytes]:
        return [sse(dumps(envelope("anthropic", error, call.request_id, error.status)), "error")]

    def end_frames(
        self, call: Call, spec: Spec, c: Completion, sent: int, delivered: int
    ) -> list[bytes]:
        # the open block is the one the first token not delivered belongs to
        sizes = [len(c.reasoning)] if c.reasoning else []
        sizes += [len(c.pieces)] if c.pieces else []
        sizes += [len(t.pieces) for t in c.tool_calls]
        index, left = 0, delivered
        while index < len(sizes) - 1 and left >= sizes[index]:
            left -= sizes[index]
            index += 1
        events: list[tuple[str, dict[str, Any]]] = [
            ("content_block_stop", {"index": index}),
            (
                "message_delta",
                {
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": delivered},
                },
            ),
            ("message_stop", {}),
        ]
        return [sse(dumps({"type": kind, **data}), kind) for kind, data in events]

    def stream_content_type(self, spec: Spec) -> str:
        return "text/event-stream; charset=utf-8"
