"""Gemini: POST /v1beta/models/{model}:generateContent and :streamGenerateContent.

Without ``alt=sse`` a stream is one JSON array whose elements arrive incrementally; with
``alt=sse`` each element is a ``data:`` event (CRLF-framed, as Google sends them) and there
is no ``[DONE]``. ``usageMetadata`` is cumulative on every element; the last one counts.
"""

from __future__ import annotations

import json
from typing import Any

from gateprobe.mock.asgi import Request
from gateprobe.mock.call_types import Call, Frame, Spec
from gateprobe.mock.errors import GatewayError, envelope
from gateprobe.mock.protocols.common import WriterBase, canonical, dumps, invalid, req_list
from gateprobe.mock.upstream import Completion, GenRequest, ToolSpec

__all__ = ["GeminiWriter"]

FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP"}


def _parts_texts(parts: Any, where: str) -> list[str]:
    if not isinstance(parts, list):
        raise invalid(where, f"'{where}' must be an array of parts")
    return [p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)]


class GeminiWriter(WriterBase):
    protocol = "gemini"
    pure = True

    def parse(self, body: dict[str, Any], request: Request, path_model: str | None) -> Spec:
        assert path_model is not None
        model, _, action = path_model.partition(":")
        contents = req_list(body, "contents")
        texts: list[str] = []
        for i, content in enumerate(contents):
            if not isinstance(content, dict):
                raise invalid(f"contents[{i}]", f"'contents[{i}]' must be an object")
            texts += _parts_texts(content.get("parts", []), f"contents[{i}].parts")
        system = body.get("systemInstruction") or body.get("system_instruction")
        if isinstance(system, dict):
            texts += _parts_texts(system.get("parts", []), "systemInstruction.parts")
        config = body.get("generationConfig") or body.get("generation_config") or {}
        if not isinstance(config, dict):
            raise invalid("generationConfig", "'generationConfig' must be an object")
        max_tokens = config.get("maxOutputTokens")
        if max_tokens is not None and (
            isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
        ):
            raise invalid(
                "generationConfig.maxOutputTokens", "'maxOutputTokens' must be an integer >= 1"
            )
        tools: list[ToolSpec] = []
        groups = body.get("tools") or []
        if not isinstance(groups, list):
            raise invalid("tools", "Field 'tools' must be an array")
        for i, group in enumerate(groups):
            if not isinstance(group, dict):
                raise invalid(f"tools[{i}]", f"'tools[{i}]' must be an object")
            decls = group.get("functionDeclarations") or group.get("function_declarations") or []
            if not isinstance(decls, list):
                raise invalid(f"tools[{i}]", f"'tools[{i}].functionDeclarations' must be an array")
            for decl in decls:
                if isinstance(decl, dict) and isinstance(decl.get("name"), str):
                    params = (
                        decl.get("parameters")
                        or decl.get("parametersJsonSchema")
                        or decl.get("parameters_json_schema")  # as google-genai sends it
                        or {}
                    )
                    tools.append(ToolSpec(decl["name"], params))
        tool_config = body.get("toolConfig") or {}
        calling = tool_config.get("functionCallingConfig") if isinstance(tool_config, dict) else 0
        if not isinstance(calling, dict | None):
            raise invalid("toolConfig", "'toolConfig.functionCallingConfig' must be an object")
        mode = (calling or {}).get("mode") or "AUTO"
        thinking = config.get("thinkingConfig") or {}
        effort = None
        if isinstance(thinking, dict) and (
            thinking.get("includeThoughts")
            or thinking.get("thinkingBudget")
            # google-genai sends these two in snake case; the API accepts both spellings
            or thinking.get("include_thoughts")
            or thinking.get("thinking_budget")
        ):
            effort = "medium"
        schema = config.get("responseSchema") or config.get("responseJsonSchema")
        gen = GenRequest(
            model=model,
            texts=texts,
            messages=len(contents),
            max_tokens=max_tokens,
            tools=tools,
            tool_choice="none" if str(mode).upper() == "NONE" else "auto",
            json_schema=schema if isinstance(schema, dict) else None,
            json_mode=config.get("responseMimeType") == "application/json",
            reasoning=effort,
            fingerprint=canonical(contents, system, body.get("tools"), schema),
        )
        stream = action == "streamGenerateContent"
        return Spec(model, "chat", stream, gen, options={"sse": request.query.get("alt") == "sse"})

    def _usage(self, c: Completion, candidates: int) -> dict[str, Any]:
        usage = {
            "promptTokenCount": c.prompt_tokens,
            "candidatesTokenCount": candidates,
            "totalTokenCount": c.prompt_tokens + candidates + len(c.reasoning),
        }
        if c.reasoning:
            usage["thoughtsTokenCount"] = len(c.reasoning)
        return usage

    def _chunk(
        self,
        call: Call,
        c: Completion,
        parts: list[dict[str, Any]],
        candidates: int,
        finish: str | None,
    ) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        out: dict[str, Any] = {"candidates": [candidate]}
        if "gemini-no-usage-metadata" not in self.defects:
            out["usageMetadata"] = self._usage(c, candidates)
        out["modelVersion"] = call.model.id
        out["responseId"] = c.digest
        return out

    def _parts(self, c: Completion) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = []
        if c.reasoning:
            parts.append({"text": "".join(c.reasoning), "thought": True})
        if c.pieces:
            parts.append({"text": c.text})
        for tool in c.tool_calls:
            parts.append({"functionCall": {"name": tool.name, "args": json.loads(tool.arguments)}})
        return parts

    def render(self, call: Call, spec: Spec, c: Completion | None) -> dict[str, Any]:
        assert c is not None
        visible = c.completion_tokens - len(c.reasoning)
        return self._chunk(call, c, self._parts(c), visible, FINISH[c.finish_reason])

    def frames(self, call: Call, spec: Spec, c: Completion) -> list[Frame]:
        chunks: list[tuple[dict[str, Any], int]] = []
        visible = 0
        for piece in c.reasoning:
            chunks.append((self._chunk(call, c, [{"text": piece, "thought": True}], 0, None), 1))
        for piece in self.stream_pieces(c):
            visible += 1
            chunks.append((self._chunk(call, c, [{"text": piece}], visible, None), 1))
        for tool in c.tool_calls:
            visible += len(tool.pieces)
            part = {"functionCall": {"name": tool.name, "args": json.loads(tool.arguments)}}
            chunks.append((self._chunk(call, c, [part], visible, None), len(tool.pieces)))
        finish = FINISH[c.finish_reason]
        if chunks:
            last = chunks[-1][0]
            last["candidates"][0]["finishReason"] = finish
        else:
            chunks.append((self._chunk(call, c, [{"text": ""}], 0, finish), 0))
        if "gemini-usage-decreasing" in self.defects:
            # new-api converting from OpenAI: a trailing chunk whose usage counts no output
            chunks.append((self._chunk(call, c, [{"text": ""}], 0, finish), 0))
        for obj, _ in chunks:
            if "usageMetadata" in obj:
                obj["usageMetadata"] = self.streamed_usage(obj["usageMetadata"])
        if spec.options.get("sse"):
            return [(b"data: " + dumps(obj).encode() + b"\r\n\r\n", n) for obj, n in chunks]
        frames = [
            ((b"[" if i == 0 else b",\r\n") + dumps(obj).encode(), n)
            for i, (obj, n) in enumerate(chunks)
        ]
        frames.append((b"]", 0))
        return frames

    def error_frames(self, call: Call, spec: Spec, error: GatewayError, sent: int) -> list[bytes]:
        body = dumps(envelope("gemini", error, call.request_id, error.status)).encode()
        if spec.options.get("sse"):
            return [b"data: " + body + b"\r\n\r\n"]
        return [(b"[" if sent == 0 else b",\r\n") + body + b"]"]

    def end_frames(
        self, call: Call, spec: Spec, c: Completion, sent: int, delivered: int
    ) -> list[bytes]:
        visible = max(0, delivered - len(c.reasoning))
        body = dumps(self._chunk(call, c, [{"text": ""}], visible, "STOP")).encode()
        if spec.options.get("sse"):
            return [b"data: " + body + b"\r\n\r\n"]
        return [(b"[" if sent == 0 else b",\r\n") + body + b"]"]

    def stream_content_type(self, spec: Spec) -> str:
        return "text/event-stream" if spec.options.get("sse") else "application/json"
