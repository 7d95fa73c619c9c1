"""The registry picks the API that speaks a step: by operation, by path, by the events."""

from __future__ import annotations

import pytest

from gateprobe import protocols
from gateprobe.protocols import Payload


def payload(data: object, name: str | None = None) -> Payload:
    return Payload(0, name, data, "event[0]", 0.0)


def test_each_protocol_has_one_primary_api_and_the_operations_of_all_its_apis() -> None:
    assert protocols.PROTOCOLS == ("openai", "anthropic", "gemini")
    assert protocols.primary(None).name == "openai_chat"  # a step that names no protocol
    assert {"chat", "responses", "responses_compact", "embeddings"} <= set(
        protocols.operations("openai")
    )
    assert protocols.api("openai", "responses_compact").name == "openai_responses"
    assert protocols.api("anthropic", "chat").name == "anthropic"
    with pytest.raises(KeyError, match="unknown protocol 'cohere'"):
        protocols.primary("cohere")


@pytest.mark.parametrize(
    ("path", "events", "expected"),
    [
        ("/v1/chat/completions", [payload({"type": "response.created"})], "openai_chat"),
        ("/v1/responses?x=1", [], "openai_responses"),
        ("/proxy/any", [payload({"type": "response.output_text.delta"})], "openai_responses"),
        ("/proxy/any", [payload({"choices": []})], "openai_chat"),
        ("/proxy/any", [], "openai_chat"),
    ],
)
def test_a_raw_path_is_read_by_its_path_then_by_its_events(
    path: str, events: list[Payload], expected: str
) -> None:
    assert protocols.api_for_path("openai", path, events).name == expected


def test_an_operation_a_protocol_lacks_is_called_where_it_exists() -> None:
    assert protocols.protocol_of_operation("anthropic", "embeddings") == "openai"
    assert protocols.protocol_of_operation("gemini", "chat") == "gemini"
    assert protocols.model_probes()["responses"] == "chat"


def test_an_event_is_owned_by_the_api_of_its_shape() -> None:
    shapes = {
        "openai_chat": {"choices": [{"delta": {"content": "x"}}]},
        "openai_responses": {"type": "response.output_text.delta", "delta": "x"},
        "anthropic": {"type": "content_block_delta", "delta": {"text": "x"}},
        "gemini": {"candidates": [{"content": {"parts": [{"text": "x"}]}}]},
    }
    for name, data in shapes.items():
        api = protocols.api_of_event(None, data)
        assert api is not None and api.name == name
        assert api.classify(None, data).visible
    assert protocols.api_of_event(None, {"error": {"message": "x"}}) is None


def test_only_openai_chat_has_a_terminator_event() -> None:
    chat, claude = protocols.api("openai", "chat"), protocols.api("anthropic", "chat")
    assert chat.classify_data(None, b"[DONE]") == protocols.TERMINATED
    assert claude.classify_data(None, "[DONE]").error is not None  # not JSON, not its end
