"""The official ``anthropic`` SDK against the mock gateway's Claude Messages routes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest
from anthropic import Anthropic
from support import ADMIN, SECRETS

from gateprobe.mock import MockServer

pytestmark = [
    pytest.mark.sdk,
    # The SDK warns that the mock's model name is deprecated upstream; irrelevant here.
    pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning"),
]

MODEL = "claude-sonnet-4-5"
MESSAGES: list[Any] = [{"role": "user", "content": "say something about gateways"}]


def sdk(mock: MockServer, secret: str) -> Anthropic:
    return Anthropic(api_key=secret, base_url=mock.url, max_retries=0, timeout=10.0)


@pytest.fixture
def claude_sdk(mock: MockServer) -> Iterator[Anthropic]:
    with sdk(mock, SECRETS["valid"]) as client:
        yield client


def test_messages_create(claude_sdk: Anthropic) -> None:
    message = claude_sdk.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES)
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.model == MODEL
    assert message.stop_reason == "end_turn"
    assert [block.type for block in message.content] == ["text"]
    text = message.content[0]
    assert text.type == "text" and text.text.strip()
    assert message.usage.input_tokens > 0
    assert message.usage.output_tokens > 0
    again = claude_sdk.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES)
    assert again.content[0].type == "text" and again.content[0].text == text.text


def test_messages_max_tokens_stop_reason(claude_sdk: Anthropic) -> None:
    message = claude_sdk.messages.create(model=MODEL, max_tokens=2, messages=MESSAGES)
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 2


def test_messages_stream_matches_non_stream(claude_sdk: Anthropic) -> None:
    plain = claude_sdk.messages.create(
        model=MODEL, max_tokens=256, messages=MESSAGES, system="be brief"
    )
    assert plain.content[0].type == "text"
    with claude_sdk.messages.stream(
        model=MODEL, max_tokens=256, messages=MESSAGES, system="be brief"
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) > 1
    assert "".join(pieces) == plain.content[0].text
    assert final.stop_reason == "end_turn"
    assert final.content[0].type == "text" and final.content[0].text == plain.content[0].text
    assert final.usage.input_tokens == plain.usage.input_tokens
    assert final.usage.output_tokens == plain.usage.output_tokens


def test_messages_raw_stream_event_order(claude_sdk: Anthropic) -> None:
    stream = claude_sdk.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES, stream=True)
    types = [event.type for event in stream]
    assert types[0] == "message_start"
    assert types[-2:] == ["message_delta", "message_stop"]
    assert types.index("content_block_start") < types.index("content_block_delta")
    assert types.index("content_block_stop") > max(
        i for i, kind in enumerate(types) if kind == "content_block_delta"
    )


def test_thinking_enabled(claude_sdk: Anthropic) -> None:
    thinking: Any = {"type": "enabled", "budget_tokens": 2048}
    message = claude_sdk.messages.create(
        model=MODEL, max_tokens=4096, messages=MESSAGES, thinking=thinking
    )
    kinds = [block.type for block in message.content]
    assert kinds == ["thinking", "text"]
    block = message.content[0]
    assert block.type == "thinking"
    assert block.thinking.strip() and block.signature
    with claude_sdk.messages.stream(
        model=MODEL, max_tokens=4096, messages=MESSAGES, thinking=thinking
    ) as stream:
        thought = "".join(e.thinking for e in stream if e.type == "thinking")
        final = stream.get_final_message()
    assert thought == block.thinking
    streamed = final.content[0]
    assert streamed.type == "thinking"
    assert streamed.thinking == block.thinking and streamed.signature == block.signature
    assert final.usage.output_tokens == message.usage.output_tokens


def test_tool_use(claude_sdk: Anthropic) -> None:
    tools: Any = [
        {
            "name": "get_weather",
            "description": "The weather in a city",
            "input_schema": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
                "required": ["city", "unit"],
            },
        }
    ]
    messages: Any = [{"role": "user", "content": "weather in Paris?"}]
    message = claude_sdk.messages.create(
        model=MODEL, max_tokens=256, messages=messages, tools=tools
    )
    assert message.stop_reason == "tool_use"
    uses = [block for block in message.content if block.type == "tool_use"]
    assert len(uses) == 1
    use = uses[0]
    assert use.type == "tool_use"
    assert use.name == "get_weather" and use.id.startswith("toolu_")
    assert isinstance(use.input, dict)
    assert isinstance(use.input["city"], str) and use.input["unit"] == "c"
    # Streamed input_json_delta pieces assemble into the same input.
    with claude_sdk.messages.stream(
        model=MODEL, max_tokens=256, messages=messages, tools=tools
    ) as stream:
        final = stream.get_final_message()
    streamed = [block for block in final.content if block.type == "tool_use"]
    assert len(streamed) == 1 and streamed[0].type == "tool_use"
    assert streamed[0].input == use.input and streamed[0].id == use.id


def x_api_key_sdk(mock: MockServer, secret: str) -> Anthropic:
    """The SDK sending its key the classic way, as ``x-api-key`` only."""
    return Anthropic(
        api_key=None,
        auth_token=None,
        base_url=mock.url,
        max_retries=0,
        timeout=10.0,
        default_headers={"x-api-key": secret},
    )


def test_x_api_key_credential(mock: MockServer) -> None:
    with x_api_key_sdk(mock, SECRETS["valid"]) as client:
        message = client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
    assert message.content and message.usage.output_tokens > 0
    answer = httpx.get(mock.url + "/_gateprobe/requests", headers=ADMIN, timeout=10.0)
    headers = answer.json()["requests"][-1]["headers"]
    assert "x-api-key" in headers and "authorization" not in headers


@pytest.mark.parametrize("style", ["bearer", "x-api-key"])
def test_authentication_error(mock: MockServer, style: str) -> None:
    make = sdk if style == "bearer" else x_api_key_sdk
    with make(mock, "sk-not-a-key") as bad, pytest.raises(anthropic.AuthenticationError) as info:
        bad.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
    error = info.value
    assert error.status_code == 401
    assert isinstance(error.body, dict)
    assert error.body["type"] == "error"
    assert error.body["error"]["type"] == "authentication_error"
    assert error.request_id
    assert error.response.headers["request-id"] == error.request_id


def test_unknown_model_not_found(claude_sdk: Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as info:
        claude_sdk.messages.create(model="claude-nonexistent", max_tokens=64, messages=MESSAGES)
    assert isinstance(info.value.body, dict)
    assert info.value.body["error"]["type"] == "not_found_error"


def test_models_list(mock: MockServer) -> None:
    secret = SECRETS["valid"]
    # This SDK sends its key as ``Authorization: Bearer``; new-api (and the mock) answer the
    # Anthropic-shaped list only to ``x-api-key`` + ``anthropic-version``, so a client that
    # wants that shape from a gateway sends ``x-api-key`` itself.
    with Anthropic(
        api_key=secret,
        base_url=mock.url,
        max_retries=0,
        timeout=10.0,
        default_headers={"x-api-key": secret},
    ) as client:
        page = client.models.list()
    ids = [model.id for model in page]
    assert MODEL in ids
    assert "o3-mini" not in ids  # OpenAI-only models are not on the Claude list
    info = next(model for model in page.data if model.id == MODEL)
    assert info.type == "model"
    assert info.display_name == MODEL
    assert info.created_at is not None and info.created_at.year >= 2024
    assert page.has_more is False
    assert page.first_id == ids[0] and page.last_id == ids[-1]


def test_models_list_with_bearer_only(claude_sdk: Anthropic) -> None:
    # Bearer + anthropic-version is not the Anthropic-list trigger (gateway-behaviour.md):
    # the OpenAI-shaped list comes back, and the SDK still reads every model id from it.
    page = claude_sdk.models.list()
    ids = [model.id for model in page]
    assert MODEL in ids and "o3-mini" in ids
    assert len(ids) == len(set(ids))
