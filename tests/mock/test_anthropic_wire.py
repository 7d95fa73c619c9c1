"""Raw-HTTP wire tests of the mock's Claude Messages route (httpx only, no SDK)."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
from support import claude, sse_frames

MESSAGES = "/v1/messages"
TOKEN_DELTAS = {"text_delta", "thinking_delta", "input_json_delta"}
LOOKUP_TOOL = {
    "name": "lookup_order",
    "description": "Find an order",
    "input_schema": {
        "type": "object",
        "properties": {
            "order_id": {"type": "integer", "minimum": 1000, "maximum": 9999},
            "express": {"type": "boolean"},
            "status": {"type": "string", "enum": ["open", "shipped"]},
        },
        "required": ["order_id"],
    },
}


def message_body(text: str = "hello there claude", **extra: Any) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }


def stream_raw(client: httpx.Client, body: dict[str, Any]) -> tuple[httpx.Response, bytes]:
    with client.stream("POST", MESSAGES, json={**body, "stream": True}, headers=claude()) as r:
        raw = b"".join(r.iter_bytes())
    return r, raw


def check_grammar(raw: bytes) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]:
    """Assert the Messages stream grammar; return the events and each block's [start, deltas]."""
    assert b"[DONE]" not in raw
    frames = sse_frames(raw)
    events = []
    for name, data in frames:
        event = json.loads(data)
        assert name == event["type"]  # the event: line names the data's type
        events.append(event)
    types = [e["type"] for e in events]
    assert types[0] == "message_start"
    assert types[1] == "ping"
    assert types[-2:] == ["message_delta", "message_stop"]
    assert types.count("message_start") == types.count("message_stop") == 1
    start = events[0]["message"]
    assert start["type"] == "message" and start["role"] == "assistant"
    assert start["content"] == [] and start["stop_reason"] is None
    assert start["usage"]["input_tokens"] >= 1
    blocks: list[list[dict[str, Any]]] = []
    open_index: int | None = None
    for event in events[2:-2]:
        kind = event["type"]
        if kind == "content_block_start":
            assert open_index is None, "a block started before the previous one stopped"
            open_index = event["index"]
            assert open_index == len(blocks)
            blocks.append([event["content_block"]])
        elif kind == "content_block_delta":
            assert event["index"] == open_index
            blocks[-1].append(event["delta"])
        elif kind == "content_block_stop":
            assert event["index"] == open_index
            open_index = None
        else:
            assert kind == "ping", f"unexpected event {kind} between blocks"
    assert open_index is None and blocks
    message_delta = events[-2]
    carrying = sum(
        1
        for e in events
        if e["type"] == "content_block_delta" and e["delta"]["type"] in TOKEN_DELTAS
    )
    assert message_delta["usage"]["output_tokens"] == carrying
    assert message_delta["delta"]["stop_reason"] in ("end_turn", "max_tokens", "tool_use")
    return events, blocks


def test_messages_non_stream_shape(client: httpx.Client) -> None:
    response = client.post(MESSAGES, json=message_body(), headers=claude())
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["request-id"] == response.headers["x-request-id"]
    data = response.json()
    assert data["type"] == "message"
    assert data["id"].startswith("msg_")
    assert data["role"] == "assistant"
    assert data["model"] == "claude-sonnet-4-5"
    assert data["stop_reason"] == "end_turn"
    assert data["stop_sequence"] is None
    (block,) = data["content"]
    assert block["type"] == "text" and block["text"]
    usage = data["usage"]
    assert usage["input_tokens"] == 3 + 3
    assert usage["output_tokens"] >= 1
    assert "choices" not in data and "object" not in data


def test_messages_stream_grammar_and_content(client: httpx.Client) -> None:
    body = message_body("stream the grammar")
    response, raw = stream_raw(client, body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert "content-length" not in response.headers
    events, blocks = check_grammar(raw)
    (text_block,) = blocks
    assert text_block[0] == {"type": "text", "text": ""}
    assert all(d["type"] == "text_delta" for d in text_block[1:])
    text = "".join(d["text"] for d in text_block[1:])
    plain = client.post(MESSAGES, json=body, headers=claude()).json()
    assert text == plain["content"][0]["text"]
    assert events[-2]["usage"]["output_tokens"] == plain["usage"]["output_tokens"]
    assert events[-2]["delta"]["stop_reason"] == plain["stop_reason"]
    assert events[0]["message"]["id"] == plain["id"]


def test_messages_stream_thinking_block(client: httpx.Client) -> None:
    body = message_body("think first", thinking={"type": "enabled", "budget_tokens": 2048})
    _, raw = stream_raw(client, body)
    _, blocks = check_grammar(raw)
    assert len(blocks) == 2
    thinking, text = blocks
    assert thinking[0]["type"] == "thinking"
    kinds = [d["type"] for d in thinking[1:]]
    assert len(kinds) >= 2
    assert kinds[-1] == "signature_delta"
    assert set(kinds[:-1]) == {"thinking_delta"}
    assert text[0]["type"] == "text"
    plain = client.post(MESSAGES, json=body, headers=claude()).json()
    assert [b["type"] for b in plain["content"]] == ["thinking", "text"]
    assert plain["content"][0]["thinking"] == "".join(d["thinking"] for d in thinking[1:-1])
    assert plain["content"][0]["signature"] == thinking[-1]["signature"]
    assert plain["content"][1]["text"] == "".join(d["text"] for d in text[1:])


def test_messages_without_thinking_has_no_thinking_block(client: httpx.Client) -> None:
    body = message_body("no thinking", thinking={"type": "disabled"})
    _, raw = stream_raw(client, body)
    _, blocks = check_grammar(raw)
    assert [b[0]["type"] for b in blocks] == ["text"]


def test_messages_stream_tool_use(client: httpx.Client) -> None:
    body = message_body(
        "where is my order",
        tools=[LOOKUP_TOOL],
        tool_choice={"type": "tool", "name": "lookup_order"},
    )
    plain = client.post(MESSAGES, json=body, headers=claude()).json()
    assert plain["stop_reason"] == "tool_use"
    (tool,) = [b for b in plain["content"] if b["type"] == "tool_use"]
    assert tool["name"] == "lookup_order"
    assert tool["id"].startswith("toolu_")
    assert 1000 <= tool["input"]["order_id"] <= 9999
    assert tool["input"]["status"] == "open"

    events, blocks = check_grammar(stream_raw(client, body)[1])
    (tool_block,) = [b for b in blocks if b[0]["type"] == "tool_use"]
    opening = tool_block[0]
    assert opening == {"type": "tool_use", "id": tool["id"], "name": "lookup_order", "input": {}}
    deltas = tool_block[1:]
    assert len(deltas) >= 2
    assert all(d["type"] == "input_json_delta" for d in deltas)
    assert json.loads("".join(d["partial_json"] for d in deltas)) == tool["input"]
    assert events[-2]["delta"]["stop_reason"] == "tool_use"


def test_messages_missing_max_tokens_is_400_in_anthropic_envelope(client: httpx.Client) -> None:
    body = message_body()
    del body["max_tokens"]
    response = client.post(MESSAGES, json=body, headers=claude())
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    data = response.json()
    assert data["type"] == "error"
    assert data["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in data["error"]["message"]
    assert data["request_id"] == response.headers["request-id"]


def test_messages_bad_key_is_401_in_anthropic_envelope(client: httpx.Client) -> None:
    headers = {**claude(), "x-api-key": "sk-not-a-key"}
    response = client.post(MESSAGES, json=message_body(), headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


def test_models_list_with_anthropic_headers(client: httpx.Client) -> None:
    response = client.get("/v1/models", headers=claude())
    assert response.status_code == 200
    data = response.json()
    assert "object" not in data
    assert data["has_more"] is False
    ids = [m["id"] for m in data["data"]]
    assert "claude-sonnet-4-5" in ids
    assert "text-embedding-3-small" not in ids  # an OpenAI-only model
    assert data["first_id"] == ids[0] and data["last_id"] == ids[-1]
    for model in data["data"]:
        assert model["type"] == "model"
        assert model["display_name"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", model["created_at"])
