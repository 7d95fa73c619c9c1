"""Claude Messages (``/v1/messages``), the ``anthropic`` protocol.

The stream grammar (the ``stream`` check):

Rules (all MUST; each failure names the event):
 1. no ``data: [DONE]``; every event's ``event:`` name equals its ``data.type`` (clients
    dispatch on the name: a data-only frame is skipped by the SDKs);
 2. ``ping`` may appear anywhere; otherwise: ``message_start``, then per content block
    ``content_block_start``, its deltas (same ``index``), ``content_block_stop``; then one or
    more ``message_delta``; ``message_stop`` last;
 3. ``usage.output_tokens`` is cumulative: it never falls from ``message_start`` through each
    ``message_delta``;
 4. an ``error`` event fails the grammar (see the ``stream_error`` check for failures).
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
    as_int,
    error_message,
    fail,
    objects_at,
    parsed_arguments,
)
from gateprobe.protocols.openai_chat import PROMPT

__all__ = ["ANTHROPIC", "ANTHROPIC_ERROR_TYPES", "ANTHROPIC_VERSION"]

ANTHROPIC_VERSION = "2023-06-01"
EVENT_TYPES = frozenset(
    {
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
        "ping",
    }
)
ANTHROPIC_ERROR_TYPES = frozenset(
    {
        "invalid_request_error",
        "authentication_error",
        "billing_error",
        "permission_error",
        "not_found_error",
        "request_too_large",
        "rate_limit_error",
        "api_error",
        "timeout_error",
        "overloaded_error",
    }
)


def check_anthropic_stream(events: list[Payload]) -> None:
    for p in events:
        if p.data == DONE:
            raise fail(f"an Anthropic stream must not send data: [DONE] ({p.label})", p.label)
        if p.name != p.type:
            raise fail(
                f"{p.label}: event name {p.name!r} differs from data.type {p.type!r}",
                f"{p.label}.type",
                p.type,
                p.name,
            )
        if p.type == "error":
            raise fail(
                f"{p.label} is an error event: {str(p.data.get('error'))[:120]}",
                p.label,
                "no error",
                p.data.get("error"),
            )
    significant = [p for p in events if p.type != "ping"]
    if not significant or significant[0].type != "message_start":
        first = significant[0] if significant else None
        raise fail(
            f"the first event ({first.label if first else 'none'}) is not message_start",
            first.label if first else "event[0]",
            "message_start",
            first.type if first else None,
        )
    last = significant[-1]
    if last.type != "message_stop":
        raise fail(
            f"the last event ({last.label}) is not message_stop but {last.type}",
            last.label,
            "message_stop",
            last.type,
        )
    _blocks(significant)
    _output_tokens(significant)


def _blocks(events: list[Payload]) -> None:
    open_block: Payload | None = None
    message_delta = False
    for p in events[1:-1]:
        kind = p.type
        if kind == "message_start":
            raise fail(f"a second message_start at {p.label}", p.label, "one message_start", kind)
        if message_delta and kind != "message_delta":
            raise fail(
                f"{p.label} ({kind}) comes after message_delta: only message_delta and "
                f"message_stop may follow it",
                p.label,
                "message_delta or message_stop",
                kind,
            )
        if kind == "content_block_start":
            if open_block is not None:
                raise fail(
                    f"a block starts at {p.label} before the one started at {open_block.label} "
                    f"stopped",
                    p.label,
                    "content_block_stop first",
                    kind,
                )
            open_block = p
        elif kind in ("content_block_delta", "content_block_stop"):
            what = "a delta" if kind == "content_block_delta" else "content_block_stop"
            if open_block is None:
                raise fail(
                    f"{what} outside any content block at {p.label}",
                    p.label,
                    "content_block_start first",
                    kind,
                )
            if p.data.get("index") != open_block.data.get("index"):
                raise fail(
                    f"{p.label} has index {p.data.get('index')!r} but the open block "
                    f"({open_block.label}) has {open_block.data.get('index')!r}",
                    f"{p.label}.index",
                    open_block.data.get("index"),
                    p.data.get("index"),
                )
            if kind == "content_block_stop":
                open_block = None
        elif kind == "message_delta":
            if open_block is not None:
                raise fail(
                    f"message_delta at {p.label} while the block started at {open_block.label} "
                    f"is still open",
                    p.label,
                    "content_block_stop first",
                    kind,
                )
            message_delta = True
        else:
            raise fail(f"unexpected event type {kind!r} at {p.label}", p.label, None, kind)
    if not message_delta:
        raise fail(
            f"no message_delta before message_stop ({events[-1].label})",
            events[-1].label,
            "message_delta",
            None,
        )


def _output_tokens(events: list[Payload]) -> None:
    previous: tuple[int, Payload] | None = None
    for p in events:
        if p.type == "message_start":
            usage = (p.data.get("message") or {}).get("usage") or {}
        elif p.type == "message_delta":
            usage = p.data.get("usage") or {}
        else:
            continue
        tokens = usage.get("output_tokens")
        if not isinstance(tokens, int):
            continue
        if previous is not None and tokens < previous[0]:
            raise fail(
                f"{p.label}.usage.output_tokens fell from {previous[0]} ({previous[1].label}) to "
                f"{tokens}: output_tokens must be cumulative",
                f"{p.label}.usage.output_tokens",
                f">= {previous[0]}",
                tokens,
            )
        previous = (tokens, p)


class Anthropic(Api):
    name = "anthropic"
    protocol = "anthropic"
    primary = True
    default_prefix = "/v1"
    default_auth = "x-api-key"
    # the seeds document both: new-api reads Authorization on /v1/messages too
    credentials = ("x-api-key", "bearer")
    version_headers = {"anthropic-version": ANTHROPIC_VERSION}
    operations = {
        "chat": Operation(
            "POST",
            "/messages",
            "chat",
            {"max_tokens": 64, "messages": [{"role": "user", "content": PROMPT}]},
        ),
        "models": Operation("GET", "/models", "chat", None),
    }
    features = {
        "models": None,
        "chat": None,
        "chat.stream": None,
        "chat.tools": None,
        "chat.thinking": None,
    }
    stream_schema = "anthropic/stream_event"
    output_marker = b'"text"'
    in_band_error = "event: error"

    def claims_path(self, path: str) -> bool:
        return path.rstrip("/").endswith("/messages")

    def owns_event(self, event: str | None, data: dict[str, Any]) -> bool:
        kind = data.get("type") if isinstance(data.get("type"), str) else event
        return kind in EVENT_TYPES

    def envelope_problems(self, body: Any, status: int | None) -> list[tuple[str, str]]:
        if not isinstance(body, dict):
            return [("$", "the body is not a JSON object")]
        error = body.get("error")
        out = []
        if body.get("type") != "error":
            out.append(("$.type", f"expected 'error', got {body.get('type')!r}"))
        if not isinstance(error, dict):
            return [*out, ("$.error", "missing or not an object")]
        if error.get("type") not in ANTHROPIC_ERROR_TYPES:
            out.append(
                ("$.error.type", f"{error.get('type')!r} is not a documented Anthropic error type")
            )
        if not isinstance(error.get("message"), str):
            out.append(("$.error.message", "missing or not a string"))
        return out

    def recognises(self, body: Any) -> bool:
        return isinstance(body, dict) and body.get("type") == "message"

    def plain_answer(self, body: Any) -> Answer:
        answer = Answer()
        if not isinstance(body, dict):
            return answer
        for block in body.get("content") or []:
            if block.get("type") == "text":
                answer.text += block.get("text") or ""
            elif block.get("type") == "tool_use":
                answer.tools.append((block.get("name", ""), block.get("input")))
        answer.finish = body.get("stop_reason")
        return answer

    def reasoning_missing(self, body: Any) -> str | None:
        if any(i.get("type") in ("thinking", "redacted_thinking") for i in _blocks_of(body)):
            return None
        return "no thinking block in content"

    def tools_missing(self, body: Any) -> str | None:
        uses = [i for i in _blocks_of(body) if i.get("type") == "tool_use"]
        if not uses:
            return "no tool_use block in content"
        if not all(isinstance(u.get("input"), dict) for u in uses):
            return "a tool_use block's input is not an object"
        stop = body.get("stop_reason")
        return None if stop == "tool_use" else f"stop_reason is {stop!r}, not tool_use"

    def check_stream(self, events: list[Payload], options: GrammarOptions) -> None:
        check_anthropic_stream(events)

    def classify(self, event: str | None, obj: dict[str, Any]) -> Delta:
        kind = obj.get("type") or event or ""
        if kind == "content_block_delta":
            delta = obj.get("delta") or {}
            if delta.get("type") == "thinking_delta":
                return Delta(reasoning=bool(delta.get("thinking")))
            return Delta(visible=bool(delta.get("text") or delta.get("partial_json")))
        if kind == "message_start":
            usage = (obj.get("message") or {}).get("usage") or {}
            if not usage:
                return NOTHING
            return Delta(
                output_tokens=as_int(usage.get("output_tokens")),
                input_tokens=as_int(usage.get("input_tokens")),
            )
        if kind == "message_delta":
            usage = obj.get("usage") or {}
            return Delta(
                output_tokens=as_int(usage.get("output_tokens")),
                input_tokens=as_int(usage.get("input_tokens")),
            )
        if kind == "message_stop":
            return Delta(done=True)
        if kind == "error":
            return Delta(error=error_message(obj.get("error") or obj))
        return NOTHING

    def classify_body(self, obj: dict[str, Any], operation: str) -> Delta:
        usage = obj.get("usage") or {}
        return Delta(
            visible=True,
            output_tokens=as_int(usage.get("output_tokens")),
            input_tokens=as_int(usage.get("input_tokens")),
        )

    def carries_output(self, event: str | None, obj: dict[str, Any], visible: bool) -> bool:
        kind = obj["type"] if isinstance(obj.get("type"), str) else event or ""
        if kind != "content_block_delta":
            return False
        delta = obj.get("delta")
        kind_of_delta = delta.get("type") if isinstance(delta, dict) else None
        return not visible or kind_of_delta not in ("thinking_delta", "signature_delta")

    def joined_answer(self, events: Sequence[Payload]) -> Answer:
        answer = Answer()
        tools: dict[Any, list[str]] = {}
        for p in events:
            data = p.data
            if not isinstance(data, dict):
                continue
            if p.type == "content_block_start":
                block = data.get("content_block") or {}
                if block.get("type") == "tool_use":
                    tools[data.get("index")] = [block.get("name", ""), ""]
            elif p.type == "content_block_delta":
                delta = data.get("delta") or {}
                if delta.get("type") == "text_delta":
                    answer.add(delta.get("text"), p.label)
                elif delta.get("type") == "input_json_delta" and data.get("index") in tools:
                    tools[data["index"]][1] += delta.get("partial_json") or ""
            elif p.type == "message_delta":
                answer.finish = (data.get("delta") or {}).get("stop_reason") or answer.finish
        answer.tools = [(name, parsed_arguments(args)) for name, args in tools.values()]
        return answer

    def is_error(self, p: Payload) -> bool:
        return isinstance(p.data, dict) and p.type == "error"

    def error_frame_problem(self, p: Payload) -> str | None:
        if p.name == "error":
            return None
        return (
            f"{p.label} carries the error in a frame named {p.name!r}: Anthropic clients "
            f"dispatch on the event name and skip it"
        )

    def claims_completion(self, p: Payload) -> str | None:
        data = p.data
        if data == DONE:
            return "data: [DONE]"
        if not isinstance(data, dict):
            return None
        if p.type == "message_stop":
            return "message_stop"
        if p.type == "message_delta" and (data.get("delta") or {}).get("stop_reason"):
            return f"stop_reason {data['delta']['stop_reason']!r}"
        return None

    def content_pieces(self, p: Payload) -> int:
        return int(p.type == "content_block_delta")


def _blocks_of(body: Any) -> list[dict[str, Any]]:
    return objects_at(body, "content")


ANTHROPIC = Anthropic()
