"""OpenAI Responses (``/v1/responses``): a second API of the ``openai`` protocol.

The stream grammar (the ``stream`` check):

Rules (all MUST; each failure names the event):
 1. no ``data: [DONE]``; every event is a JSON object with a ``type``;
 2. the SSE ``event:`` name, when sent, equals ``data.type``;
 3. ``sequence_number`` is an integer, strictly increasing;
 4. exactly one terminal event (``response.completed``, ``.incomplete``, ``.failed``), last;
    an ``error`` event fails the grammar (see the ``stream_error`` check for failures);
 5. a completed response's ``output`` is not empty when deltas were sent (new-api #4362);
 6. ``response.completed`` carries ``usage``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateprobe.protocols._api import (
    DONE,
    NOTHING,
    Answer,
    Api,
    Delta,
    GrammarOptions,
    Operation,
    Payload,
    Usage,
    as_int,
    dig,
    error_message,
    fail,
    json_object,
    objects_at,
    parsed_arguments,
)
from gateprobe.protocols.openai_chat import OPENAI_CHAT, PROMPT

__all__ = ["OPENAI_RESPONSES", "TERMINAL"]

TERMINAL = ("response.completed", "response.incomplete", "response.failed")


def check_responses_stream(events: list[Payload]) -> None:
    last_sequence: int | None = None
    last_label = ""
    deltas = 0
    for p in events:
        if p.data == DONE:
            raise fail(f"a Responses stream must not send data: [DONE] ({p.label})", p.label)
        kind = p.type
        if kind is None:
            raise fail(f"{p.label} has no type", f"{p.label}.type", "a type", None)
        if p.name is not None and p.name != kind:
            raise fail(
                f"{p.label}: event name {p.name!r} differs from data.type {kind!r}",
                f"{p.label}.type",
                p.name,
                kind,
            )
        if kind == "error":
            raise fail(
                f"{p.label} is an error event: {str(p.data.get('message'))[:120]}",
                p.label,
                "no error",
                p.data.get("code"),
            )
        sequence = p.data.get("sequence_number")
        if (
            not isinstance(sequence, int)
            or isinstance(sequence, bool)
            or (last_sequence is not None and sequence <= last_sequence)
        ):
            after = f" (previous {last_sequence} at {last_label})" if last_label else ""
            raise fail(
                f"{p.label}.sequence_number {sequence!r} does not increase strictly{after}",
                f"{p.label}.sequence_number",
                f"> {last_sequence}" if last_sequence is not None else "an integer",
                sequence,
            )
        last_sequence, last_label = sequence, p.label
        deltas += kind.endswith(".delta")
    terminals = [p for p in events if p.type in TERMINAL]
    if len(terminals) != 1:
        where = ", ".join(p.label for p in terminals) or "end of stream"
        raise fail(
            f"expected exactly one terminal event ({', '.join(TERMINAL)}), got {len(terminals)}"
            + (
                f"; the stream ended after {events[-1].label} ({events[-1].type})"
                if not terminals
                else ""
            ),
            where,
            1,
            len(terminals),
        )
    (end,) = terminals
    if end is not events[-1]:
        raise fail(
            f"{events[-1].label} comes after the terminal event {end.label} ({end.type})",
            events[-1].label,
            f"nothing after {end.label}",
            events[-1].type,
        )
    response = end.data.get("response")
    if not isinstance(response, dict):
        raise fail(f"{end.label} carries no response object", f"{end.label}.response")
    if end.type == "response.completed":
        if deltas and not response.get("output"):
            raise fail(
                f"{end.label} (response.completed) has output: [] although {deltas} deltas "
                f"were sent",
                f"{end.label}.response.output",
                "the streamed output items",
                response.get("output"),
            )
        if not isinstance(response.get("usage"), dict):
            raise fail(
                f"{end.label} (response.completed) carries no usage",
                f"{end.label}.response.usage",
                "a usage object",
                response.get("usage"),
            )


class OpenAIResponses(Api):
    name = "openai_responses"
    protocol = "openai"
    operations = {
        "responses": Operation("POST", "/responses", "responses", {"input": PROMPT}),
        "responses_compact": Operation(
            "POST",
            "/responses/compact",
            "responses",
            {"input": [{"role": "user", "content": PROMPT}]},
        ),
    }
    model_probe = "chat"  # a Responses model answers chat too, and every gateway has chat
    features = {
        "responses": "serves OpenAI Responses (POST /v1/responses)",
        "responses.stream": "streams OpenAI Responses",
        "responses.compact": "serves POST /v1/responses/compact",
    }
    stream_schema = "openai/responses.stream_event"
    output_marker = b'"delta"'
    in_band_error = "response.failed or error"

    def claims_path(self, path: str) -> bool:
        return path.rstrip("/").endswith(("/responses", "/responses/compact"))

    def owns_event(self, event: str | None, data: dict[str, Any]) -> bool:
        kind = data.get("type") if isinstance(data.get("type"), str) else event
        return isinstance(kind, str) and kind.startswith("response.")

    def envelope_problems(self, body: Any, status: int | None) -> list[tuple[str, str]]:
        return OPENAI_CHAT.envelope_problems(body, status)

    def recognises(self, body: Any) -> bool:
        return isinstance(body, dict) and (
            body.get("object") == "response" or isinstance(body.get("output"), list)
        )

    def plain_answer(self, body: Any) -> Answer:
        answer = Answer()
        if not isinstance(body, dict):
            return answer
        for item in body.get("output") or []:
            if item.get("type") == "message":
                for part in item.get("content") or []:
                    if part.get("type") == "output_text":
                        answer.text += part.get("text") or ""
            elif item.get("type") == "function_call":
                answer.tools.append(
                    (item.get("name", ""), parsed_arguments(item.get("arguments") or ""))
                )
        answer.finish = body.get("status")
        return answer

    def reasoning_missing(self, body: Any) -> str | None:
        items = _items(body)
        tokens = dig(body, "usage", "output_tokens_details", "reasoning_tokens")
        if any(i.get("type") == "reasoning" for i in items) or (
            isinstance(tokens, int) and tokens > 0
        ):
            return None
        return "no reasoning output item and no reasoning tokens"

    def tools_missing(self, body: Any) -> str | None:
        calls = [i for i in _items(body) if i.get("type") == "function_call"]
        if not calls:
            return "no function_call output item"
        bad = [c for c in calls if not json_object(c.get("arguments"))]
        return "a function_call's arguments are not a JSON object" if bad else None

    def check_stream(self, events: list[Payload], options: GrammarOptions) -> None:
        check_responses_stream(events)

    def classify(self, event: str | None, obj: dict[str, Any]) -> Delta:
        kind = event or obj.get("type") or ""
        if kind in ("response.output_text.delta", "response.function_call_arguments.delta"):
            return Delta(visible=bool(obj.get("delta")))
        if kind in ("response.reasoning_text.delta", "response.reasoning_summary_text.delta"):
            return Delta(reasoning=bool(obj.get("delta")))
        if kind == "response.completed":
            usage = (obj.get("response") or {}).get("usage") or {}
            details = usage.get("output_tokens_details") or {}
            return Delta(
                output_tokens=as_int(usage.get("output_tokens")),
                reasoning_tokens=as_int(details.get("reasoning_tokens")),
                done=True,
                input_tokens=as_int(usage.get("input_tokens")),
            )
        if kind in ("response.failed", "error", "response.incomplete"):
            response = obj.get("response") or {}
            found = response.get("error") or obj.get("error") or obj
            return Delta(error=error_message(found) or kind)
        return NOTHING

    def carries_output(self, event: str | None, obj: dict[str, Any], visible: bool) -> bool:
        kind = obj["type"] if isinstance(obj.get("type"), str) else event or ""
        return kind.endswith(".delta") and not (visible and ".reasoning" in kind)

    def joined_answer(self, events: Sequence[Payload]) -> Answer:
        answer = Answer()
        tools: dict[Any, list[str]] = {}
        for p in events:
            data = p.data
            if not isinstance(data, dict):
                continue
            kind = p.type or ""
            if kind == "response.output_text.delta":
                answer.add(data.get("delta"), p.label)
            elif kind == "response.output_item.added":
                item = data.get("item") or {}
                if item.get("type") == "function_call":
                    tools[data.get("output_index")] = [item.get("name", ""), ""]
            elif kind == "response.function_call_arguments.delta":
                if data.get("output_index") in tools:
                    tools[data["output_index"]][1] += data.get("delta") or ""
            elif kind in TERMINAL:
                answer.finish = (data.get("response") or {}).get("status")
        answer.tools = [(name, parsed_arguments(args)) for name, args in tools.values()]
        return answer

    def stream_usage(self, events: Sequence[Payload]) -> Usage:
        # the usage of the last event that carries a response with one (completed, or an
        # incomplete or failed response that reports what it used)
        found = Usage(None, None)
        for p in events:
            response = p.data.get("response") if isinstance(p.data, dict) else None
            usage = response.get("usage") if isinstance(response, dict) else None
            if isinstance(usage, dict):
                found = Usage(as_int(usage.get("input_tokens")), as_int(usage.get("output_tokens")))
        return found

    def is_error(self, p: Payload) -> bool:
        return isinstance(p.data, dict) and p.type in ("response.failed", "error")

    def claims_completion(self, p: Payload) -> str | None:
        if p.data == DONE:
            return "data: [DONE]"
        kind = p.type or ""
        return kind if kind in ("response.completed", "response.incomplete") else None

    def content_pieces(self, p: Payload) -> int:
        return int(p.type == "response.output_text.delta")


def _items(body: Any) -> list[dict[str, Any]]:
    return objects_at(body, "output")


OPENAI_RESPONSES = OpenAIResponses()
