"""The official ``google-genai`` SDK against the mock gateway's Gemini routes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from google import genai
from google.genai import errors, types
from support import ADMIN, SECRETS

from gateprobe.mock import MockServer

pytestmark = pytest.mark.sdk

MODEL = "gemini-2.5-flash"
PROMPT = "say something about gateways"


def sdk(mock: MockServer, secret: str, api_version: str | None = None) -> genai.Client:
    return genai.Client(
        api_key=secret,
        http_options=types.HttpOptions(
            base_url=mock.url,
            api_version=api_version,  # None: the SDK's default (v1 in google-genai 3.x)
            timeout=10_000,  # milliseconds
            retry_options=types.HttpRetryOptions(attempts=1),  # no retries
        ),
    )


@pytest.fixture(params=["default", "v1beta"])
def version(request: pytest.FixtureRequest) -> str:
    """The API version the SDK is told to use; "default" leaves the SDK's own choice."""
    value: str = request.param
    return value


@pytest.fixture
def gem(mock: MockServer, version: str) -> Iterator[genai.Client]:
    with sdk(mock, SECRETS["valid"], None if version == "default" else version) as client:
        yield client


def model_path(version: str, action: str) -> str:
    prefix = "/v1" if version == "default" else f"/{version}"
    return f"{prefix}/models/{MODEL}:{action}"


def last_received(mock: MockServer) -> dict[str, Any]:
    answer = httpx.get(mock.url + "/_gateprobe/requests", headers=ADMIN, timeout=10.0)
    answer.raise_for_status()
    request: dict[str, Any] = answer.json()["requests"][-1]
    return request


def test_generate_content(gem: genai.Client, mock: MockServer, version: str) -> None:
    response = gem.models.generate_content(model=MODEL, contents=PROMPT)
    assert response.text and response.text.strip()
    assert response.candidates is not None
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    usage = response.usage_metadata
    assert usage is not None
    assert usage.prompt_token_count and usage.prompt_token_count > 0
    assert usage.candidates_token_count and usage.candidates_token_count > 0
    assert usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count
    assert response.model_version == MODEL
    sent = last_received(mock)
    assert sent["path"] == model_path(version, "generateContent")
    again = gem.models.generate_content(model=MODEL, contents=PROMPT)
    assert again.text == response.text


def test_generate_content_config(gem: genai.Client) -> None:
    response = gem.models.generate_content(
        model=MODEL,
        contents=PROMPT,
        config=types.GenerateContentConfig(system_instruction="be brief", max_output_tokens=3),
    )
    assert response.candidates is not None
    assert response.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert response.usage_metadata is not None
    assert response.usage_metadata.candidates_token_count == 3


def test_generate_content_stream_matches_non_stream(
    gem: genai.Client, mock: MockServer, version: str
) -> None:
    plain = gem.models.generate_content(model=MODEL, contents=PROMPT)
    chunks = list(gem.models.generate_content_stream(model=MODEL, contents=PROMPT))
    sent = last_received(mock)
    assert sent["path"] == model_path(version, "streamGenerateContent")
    assert sent["query"].get("alt") == "sse"
    assert len(chunks) > 1
    assert "".join(chunk.text or "" for chunk in chunks) == plain.text
    last = chunks[-1]
    assert last.candidates is not None
    assert last.candidates[0].finish_reason == types.FinishReason.STOP
    # usageMetadata is cumulative; the last chunk's is the call's usage.
    counts = [c.usage_metadata.candidates_token_count or 0 for c in chunks if c.usage_metadata]
    assert counts == sorted(counts)
    assert last.usage_metadata is not None and plain.usage_metadata is not None
    assert last.usage_metadata.prompt_token_count == plain.usage_metadata.prompt_token_count
    assert last.usage_metadata.candidates_token_count == plain.usage_metadata.candidates_token_count
    assert last.usage_metadata.total_token_count == plain.usage_metadata.total_token_count


def test_thinking_parts(gem: genai.Client) -> None:
    config = types.GenerateContentConfig(
        thinking_config=types.ThinkingConfig(include_thoughts=True, thinking_budget=1024)
    )
    response = gem.models.generate_content(model=MODEL, contents=PROMPT, config=config)
    assert response.candidates is not None and response.candidates[0].content is not None
    parts = response.candidates[0].content.parts or []
    thoughts = [p for p in parts if p.thought]
    answers = [p for p in parts if not p.thought]
    assert len(thoughts) == 1 and thoughts[0].text
    assert answers and response.text == answers[0].text  # .text skips thought parts
    usage = response.usage_metadata
    assert usage is not None and usage.thoughts_token_count and usage.thoughts_token_count > 0
    assert usage.total_token_count == (
        (usage.prompt_token_count or 0)
        + (usage.candidates_token_count or 0)
        + usage.thoughts_token_count
    )


WEATHER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city", "days"],
}


@pytest.mark.parametrize("style", ["json_schema", "schema"])
def test_function_call(gem: genai.Client, style: str) -> None:
    if style == "json_schema":
        declaration = types.FunctionDeclaration(
            name="get_weather", description="The weather", parameters_json_schema=WEATHER_SCHEMA
        )
    else:  # the SDK's own Schema type, sent with upper-case type names
        declaration = types.FunctionDeclaration(
            name="get_weather",
            description="The weather",
            parameters=types.Schema(
                type=types.Type.OBJECT,
                properties={
                    "city": types.Schema(type=types.Type.STRING),
                    "days": types.Schema(type=types.Type.INTEGER),
                },
                required=["city", "days"],
            ),
        )
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[declaration])],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    response = gem.models.generate_content(model=MODEL, contents="weather in Oslo?", config=config)
    calls = response.function_calls
    assert calls is not None and len(calls) == 1
    assert calls[0].name == "get_weather"
    assert calls[0].args is not None
    assert isinstance(calls[0].args["city"], str) and isinstance(calls[0].args["days"], int)
    streamed = [
        call
        for chunk in gem.models.generate_content_stream(
            model=MODEL, contents="weather in Oslo?", config=config
        )
        for call in chunk.function_calls or []
    ]
    assert [(c.name, c.args) for c in streamed] == [(calls[0].name, calls[0].args)]


def test_function_without_parameters(gem: genai.Client) -> None:
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[types.FunctionDeclaration(name="get_time")])],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    response = gem.models.generate_content(model=MODEL, contents="what time is it?", config=config)
    assert response.function_calls is not None
    assert response.function_calls[0].name == "get_time"
    assert response.function_calls[0].args == {}


def test_json_response(gem: genai.Client) -> None:
    config = types.GenerateContentConfig(
        response_mime_type="application/json",
        response_json_schema={
            "type": "object",
            "properties": {"name": {"type": "string"}, "score": {"type": "number"}},
        },
    )
    response = gem.models.generate_content(model=MODEL, contents="a result", config=config)
    assert response.text is not None
    value = json.loads(response.text)
    assert isinstance(value["name"], str) and isinstance(value["score"], int | float)
    # The older response_schema field, which the SDK sends with upper-case type names.
    config = types.GenerateContentConfig(
        response_mime_type="application/json",
        response_schema=types.Schema(
            type=types.Type.OBJECT,
            properties={
                "tags": types.Schema(
                    type=types.Type.ARRAY, items=types.Schema(type=types.Type.STRING)
                )
            },
        ),
    )
    response = gem.models.generate_content(model=MODEL, contents="tags", config=config)
    assert response.text is not None
    value = json.loads(response.text)
    assert isinstance(value["tags"], list) and all(isinstance(t, str) for t in value["tags"])


def test_invalid_key_is_client_error_401(mock: MockServer) -> None:
    with sdk(mock, "not-a-key") as bad:
        with pytest.raises(errors.ClientError) as info:
            bad.models.generate_content(model=MODEL, contents=PROMPT)
        assert info.value.code == 401
        assert info.value.status == "UNAUTHENTICATED"
        assert info.value.message and "request id" in info.value.message
        with pytest.raises(errors.APIError) as streamed:
            list(bad.models.generate_content_stream(model=MODEL, contents=PROMPT))
        assert streamed.value.code == 401


def test_unknown_model_is_not_found(gem: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as info:
        gem.models.generate_content(model="gemini-nonexistent", contents=PROMPT)
    assert info.value.code == 404
    assert info.value.status == "NOT_FOUND"


def test_models_list_and_get(gem: genai.Client) -> None:
    listed = list(gem.models.list())
    names = [m.name for m in listed]
    assert f"models/{MODEL}" in names
    assert "models/o3-mini" not in names  # OpenAI-only models are not on the Gemini list
    flash = next(m for m in listed if m.name == f"models/{MODEL}")
    assert flash.supported_actions is not None
    assert "generateContent" in flash.supported_actions
    assert flash.output_token_limit and flash.output_token_limit > 0
    model = gem.models.get(model=MODEL)
    assert model.name == f"models/{MODEL}"
    assert model.display_name == MODEL
    with pytest.raises(errors.ClientError) as info:
        gem.models.get(model="gemini-nonexistent")
    assert info.value.code == 404
