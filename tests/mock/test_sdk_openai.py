"""The official ``openai`` SDK against the mock gateway, used the way a user would use it.

Every call goes through the SDK's own request building, response parsing, stream decoding
and error mapping; a failure here means the mock sends something the real SDK cannot take.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI
from support import ADMIN, SECRETS

from gateprobe.mock import MockServer

pytestmark = pytest.mark.sdk

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MESSAGES: list[Any] = [{"role": "user", "content": "say something about gateways"}]
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
            "required": ["city", "days"],
        },
    },
}


def sdk(mock: MockServer, key: str = "valid") -> OpenAI:
    return OpenAI(api_key=SECRETS[key], base_url=mock.url + "/v1", max_retries=0, timeout=10.0)


def received(mock: MockServer) -> list[dict[str, Any]]:
    """What the mock's upstream side received, oldest first (admin API)."""
    answer = httpx.get(mock.url + "/_gateprobe/requests", headers=ADMIN, timeout=10.0)
    answer.raise_for_status()
    requests: list[dict[str, Any]] = answer.json()["requests"]
    return requests


@pytest.fixture
def oai(mock: MockServer) -> Iterator[OpenAI]:
    with sdk(mock) as client:
        yield client


# -- chat completions --------------------------------------------------------------------


def test_chat_completion(oai: OpenAI) -> None:
    completion = oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-4o-mini"
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content and choice.message.content.strip()
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    # Deterministic: the same request yields the same answer.
    again = oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert again.choices[0].message.content == choice.message.content


def test_chat_completion_max_tokens_length(oai: OpenAI) -> None:
    completion = oai.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, max_completion_tokens=2
    )
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens == 2


def test_chat_stream_with_usage_matches_non_stream(oai: OpenAI) -> None:
    plain = oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    stream = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    deltas: list[str] = []
    usage_chunks = []
    finish_reasons = []
    for chunk in stream:
        assert chunk.object == "chat.completion.chunk"
        if chunk.usage is not None:
            usage_chunks.append(chunk)
            assert chunk.choices == []
            continue
        for choice in chunk.choices:
            if choice.delta.content:
                deltas.append(choice.delta.content)
            if choice.finish_reason is not None:
                finish_reasons.append(choice.finish_reason)
    assert "".join(deltas) == plain.choices[0].message.content
    assert finish_reasons == ["stop"]
    assert len(usage_chunks) == 1
    usage = usage_chunks[0].usage
    assert usage is not None and plain.usage is not None
    assert usage.prompt_tokens == plain.usage.prompt_tokens
    assert usage.completion_tokens == plain.usage.completion_tokens
    assert usage.total_tokens == plain.usage.total_tokens


def test_chat_stream_helper_final_completion(oai: OpenAI) -> None:
    plain = oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    with oai.chat.completions.stream(
        model="gpt-4o-mini", messages=MESSAGES, stream_options={"include_usage": True}
    ) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == plain.choices[0].message.content
    assert final.usage is not None and plain.usage is not None
    assert final.usage.total_tokens == plain.usage.total_tokens


def test_chat_tool_calls(oai: OpenAI) -> None:
    completion = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "weather in Paris for three days?"}],
        tools=[WEATHER_TOOL],
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 1
    call = calls[0]
    assert call.type == "function"
    assert call.id
    assert call.function.name == "get_weather"
    arguments = json.loads(call.function.arguments)
    assert isinstance(arguments["city"], str)
    assert isinstance(arguments["days"], int) and 1 <= arguments["days"] <= 7


def test_chat_tool_without_parameters(oai: OpenAI) -> None:
    completion = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "what time is it?"}],
        tools=[{"type": "function", "function": {"name": "get_time"}}],
    )
    calls = completion.choices[0].message.tool_calls
    assert calls is not None and calls[0].type == "function"
    assert calls[0].function.name == "get_time"
    assert json.loads(calls[0].function.arguments) == {}  # arguments are always an object


def test_chat_tool_call_stream_reassembles(oai: OpenAI) -> None:
    messages: Any = [{"role": "user", "content": "weather in Oslo for a week?"}]
    plain = oai.chat.completions.create(
        model="gpt-4o-mini", messages=messages, tools=[WEATHER_TOOL]
    )
    assert plain.choices[0].message.tool_calls
    expected = plain.choices[0].message.tool_calls[0]
    assert expected.type == "function"
    stream = oai.chat.completions.create(
        model="gpt-4o-mini", messages=messages, tools=[WEATHER_TOOL], stream=True
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or []:
                entry = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                if delta.id:
                    entry["id"] = delta.id
                if delta.function is not None:
                    entry["name"] += delta.function.name or ""
                    entry["arguments"] += delta.function.arguments or ""
            finish = choice.finish_reason or finish
    assert finish == "tool_calls"
    assert list(calls) == [0]
    assert calls[0]["id"] == expected.id
    assert calls[0]["name"] == "get_weather"
    assert calls[0]["arguments"] == expected.function.arguments
    assert json.loads(calls[0]["arguments"]) == json.loads(expected.function.arguments)


def test_chat_json_object(oai: OpenAI) -> None:
    completion = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "answer in JSON"}],
        response_format={"type": "json_object"},
    )
    content = completion.choices[0].message.content
    assert content is not None
    assert isinstance(json.loads(content), dict)


def test_chat_json_schema(oai: OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer", "minimum": 0, "maximum": 120},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["name", "age", "tags"],
        "additionalProperties": False,
    }
    completion = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "a person"}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "person", "schema": schema, "strict": True},
        },
    )
    content = completion.choices[0].message.content
    assert content is not None
    person = json.loads(content)
    assert set(person) == {"name", "age", "tags"}
    assert isinstance(person["name"], str)
    assert isinstance(person["age"], int) and 0 <= person["age"] <= 120
    assert all(isinstance(t, str) for t in person["tags"])


def test_chat_reasoning_effort_o3_mini(oai: OpenAI) -> None:
    low = oai.chat.completions.create(model="o3-mini", messages=MESSAGES, reasoning_effort="low")
    high = oai.chat.completions.create(model="o3-mini", messages=MESSAGES, reasoning_effort="high")
    for completion in (low, high):
        assert completion.choices[0].message.content
        usage = completion.usage
        assert usage is not None and usage.completion_tokens_details is not None
        reasoning = usage.completion_tokens_details.reasoning_tokens
        assert reasoning is not None and 0 < reasoning <= usage.completion_tokens
    assert low.usage is not None and high.usage is not None
    assert low.usage.completion_tokens_details is not None
    assert high.usage.completion_tokens_details is not None
    low_reasoning = low.usage.completion_tokens_details.reasoning_tokens or 0
    high_reasoning = high.usage.completion_tokens_details.reasoning_tokens or 0
    assert high_reasoning > low_reasoning


# -- models ------------------------------------------------------------------------------


def test_models_list_and_retrieve(oai: OpenAI) -> None:
    ids = [m.id for m in oai.models.list()]
    assert "gpt-4o-mini" in ids and "text-embedding-3-small" in ids
    assert len(ids) == len(set(ids))
    model = oai.models.retrieve("gpt-4o-mini")
    assert model.id == "gpt-4o-mini"
    assert model.object == "model"
    assert isinstance(model.created, int) and model.owned_by
    with pytest.raises(openai.NotFoundError) as info:
        oai.models.retrieve("no-such-model")
    assert info.value.status_code == 404


# -- embeddings ----------------------------------------------------------------------------


def test_embeddings_base64_default_and_float(oai: OpenAI, mock: MockServer) -> None:
    inputs = ["the quick brown fox", "jumps over the lazy dog"]
    # The SDK asks for base64 by default and decodes it to floats itself.
    decoded = oai.embeddings.create(model="text-embedding-3-small", input=inputs)
    sent = received(mock)[-1]["body"]
    assert sent["encoding_format"] == "base64"
    floats = oai.embeddings.create(
        model="text-embedding-3-small", input=inputs, encoding_format="float"
    )
    assert [d.index for d in decoded.data] == [0, 1]
    assert [d.index for d in floats.data] == [0, 1]
    for a, b in zip(decoded.data, floats.data, strict=True):
        assert isinstance(a.embedding, list) and len(a.embedding) == 16
        assert len(b.embedding) == 16
        assert all(isinstance(v, float) for v in b.embedding)
        assert a.embedding == pytest.approx(b.embedding, abs=1e-6)
    assert decoded.data[0].embedding != decoded.data[1].embedding
    assert floats.usage.prompt_tokens > 0
    assert floats.usage.total_tokens == floats.usage.prompt_tokens
    sized = oai.embeddings.create(model="text-embedding-3-small", input="x", dimensions=8)
    assert len(sized.data[0].embedding) == 8


# -- images --------------------------------------------------------------------------------


def test_images_b64_json_and_url(oai: OpenAI, mock: MockServer) -> None:
    result = oai.images.generate(model="gpt-image-1", prompt="a red square", n=2)
    assert result.data is not None and len(result.data) == 2
    for image in result.data:
        assert image.b64_json is not None
        assert base64.b64decode(image.b64_json).startswith(PNG_MAGIC)
    by_url = oai.images.generate(model="gpt-image-1", prompt="a red square", response_format="url")
    assert by_url.data is not None and by_url.data[0].url is not None
    url = by_url.data[0].url
    assert url.startswith(mock.url)
    fetched = httpx.get(url, timeout=10.0)
    assert fetched.status_code == 200
    assert fetched.headers["content-type"] == "image/png"
    # The URL serves the same picture the first b64_json carried (same prompt, index 0).
    assert fetched.content == base64.b64decode(result.data[0].b64_json or "")


# -- responses -----------------------------------------------------------------------------


def test_responses_create(oai: OpenAI) -> None:
    response = oai.responses.create(
        model="gpt-4o-mini", input="tell me about quota", instructions="be brief"
    )
    assert response.object == "response"
    assert response.status == "completed"
    assert response.output_text.strip()
    assert response.output[-1].type == "message"
    usage = response.usage
    assert usage is not None
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens


def test_responses_stream(oai: OpenAI) -> None:
    request: dict[str, Any] = {"model": "gpt-4o-mini", "input": "tell me about streams"}
    plain = oai.responses.create(**request)
    events = list(oai.responses.create(**request, stream=True))
    types = [e.type for e in events]
    assert types[0] == "response.created"
    assert types[1] == "response.in_progress"
    assert types[-1] == "response.completed"
    for kind in (
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ):
        assert kind in types
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == plain.output_text
    final = events[-1]
    assert final.type == "response.completed"
    assert final.response.output_text == plain.output_text
    assert final.response.usage is not None and plain.usage is not None
    assert final.response.usage.output_tokens == plain.usage.output_tokens
    assert final.response.usage.input_tokens == plain.usage.input_tokens

    # The SDK's accumulating helper builds the same final response from the events.
    with oai.responses.stream(**request) as stream:
        helper_text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        accumulated = stream.get_final_response()
    assert helper_text == plain.output_text
    assert accumulated.output_text == plain.output_text
    assert accumulated.usage is not None
    assert accumulated.usage.total_tokens == plain.usage.total_tokens


def test_responses_function_call(oai: OpenAI) -> None:
    tool: Any = {"type": "function", "name": "get_weather", **WEATHER_TOOL["function"]}
    tool.pop("description")
    response = oai.responses.create(model="gpt-4o-mini", input="weather in Rome?", tools=[tool])
    calls = [item for item in response.output if item.type == "function_call"]
    assert len(calls) == 1
    assert calls[0].name == "get_weather"
    assert set(json.loads(calls[0].arguments)) == {"city", "days"}


def test_responses_compact(oai: OpenAI) -> None:
    compact = getattr(oai.responses, "compact", None)
    assert compact is not None, "this openai SDK has no responses.compact"
    result = compact(
        model="gpt-4o-mini",
        input=[
            {"role": "user", "content": "remember the number forty two"},
            {"role": "assistant", "content": "noted"},
        ],
    )
    types = [item.type for item in result.output]
    assert types[-1] == "compaction"
    assert types.count("message") == 1  # the user message is kept; the rest is compacted
    compaction = result.output[-1]
    assert compaction.type == "compaction" and compaction.encrypted_content
    assert result.usage.input_tokens > 0


# -- errors --------------------------------------------------------------------------------


def test_unknown_key_is_authentication_error(mock: MockServer) -> None:
    with (
        OpenAI(
            api_key="sk-not-a-key", base_url=mock.url + "/v1", max_retries=0, timeout=10.0
        ) as bad,
        pytest.raises(openai.AuthenticationError) as info,
    ):
        bad.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert info.value.status_code == 401
    assert info.value.code == "invalid_api_key"
    assert info.value.request_id


def test_unknown_model_is_not_found(oai: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        oai.chat.completions.create(model="gpt-nonexistent", messages=MESSAGES)
    assert info.value.status_code == 404
    assert info.value.code == "model_not_found"
    assert info.value.param == "model"


def test_low_quota_is_402(mock: MockServer) -> None:
    with sdk(mock, "low_quota") as poor, pytest.raises(openai.APIStatusError) as info:
        poor.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert info.value.status_code == 402
    assert info.value.code == "insufficient_key_quota"


def test_rate_limit_is_rate_limit_error(mock: MockServer) -> None:
    with sdk(mock, "limited_rate") as limited:
        for _ in range(3):  # rpm 3: the first three in the window pass
            ok = limited.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            assert ok.choices[0].message.content
        with pytest.raises(openai.RateLimitError) as info:
            limited.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    error = info.value
    assert error.status_code == 429
    retry_after = error.response.headers.get("retry-after")
    assert retry_after is not None and float(retry_after) > 0
