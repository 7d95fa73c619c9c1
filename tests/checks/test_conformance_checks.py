"""Unit tests of the conformance checks on hand-made answers: models, honours, credential leaks.

The self-tests (cases_*.py) prove each check fails on the broken mock; these pin the reading
of each protocol's shape, including the answers the mock never gives.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateprobe.checks import REGISTRY, CheckContext
from gateprobe.checks.leaks import credentials_in
from gateprobe.checks.models import listed_models
from gateprobe.errors import CheckFailed
from gateprobe.http import Exchange, RequestRecord
from gateprobe.protocols import api_of_answer
from gateprobe.target import Target

TARGET = Target("t", "http://gw", models={"variant_only": "gpt-4o-pro"})


def context(body: Any, status: int = 200, protocol: str = "openai") -> CheckContext:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    exchange = Exchange(
        RequestRecord("POST", "/x", {}, None),
        status=status,
        headers={"content-type": "application/json"},
        body=raw,
    )
    return CheckContext(exchange, TARGET, "unit.test", protocol)


def run(check: str, body: Any, argument: Any, protocol: str = "openai") -> None:
    REGISTRY[check].fn(context(body, protocol=protocol), argument)


def failure(check: str, body: Any, argument: Any, protocol: str = "openai") -> str:
    with pytest.raises(CheckFailed) as caught:
        run(check, body, argument, protocol)
    assert caught.value.check == check
    return caught.value.message


# -- model lists ---------------------------------------------------------------------------


def test_listed_models_reads_each_protocols_list() -> None:
    assert listed_models({"object": "list", "data": [{"id": "a"}, {"id": "b"}]}, "openai") == [
        "a",
        "b",
    ]
    assert listed_models({"data": [{"type": "model", "id": "c"}]}, "anthropic") == ["c"]
    assert listed_models({"models": [{"name": "models/g"}, {"name": "bare"}]}, "gemini") == [
        "g",
        "bare",
    ]
    assert listed_models({"models": []}, "gemini") == []
    assert listed_models({"error": {}}, "openai") is None
    assert listed_models([1, 2], "openai") is None


def test_model_listed_by_id_or_profile_entry() -> None:
    models = {"object": "list", "data": [{"id": "gpt-4o-mini"}]}
    run("model_listed", models, ["gpt-4o-mini", {"model_of": "variant_only", "listed": False}])
    assert failure("model_listed", models, {"model": "gpt-4o-pro"}) == (
        "model gpt-4o-pro is not in the list"
    )
    message = failure("model_listed", models, {"model": "gpt-4o-mini", "listed": False})
    assert message == "model gpt-4o-mini is in the list, but this key may not use it"
    assert "not a openai model list" in failure("model_listed", {"data": 3}, "x")
    assert "no 'nope' model" in failure("model_listed", models, {"model_of": "nope"})


def test_models_match_calls_needs_a_target_to_call() -> None:
    message = failure("models_match_calls", {"data": [{"id": "a"}]}, True)
    assert message == "this check needs a reachable target"
    run("models_match_calls", {"data": [{"id": "a"}]}, False)  # switched off


# -- honours -------------------------------------------------------------------------------

CHAT_REASONING = {
    "choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}],
    "usage": {"completion_tokens_details": {"reasoning_tokens": 12}},
}
CHAT_TOOL = {
    "choices": [
        {
            "message": {
                "content": None,
                "tool_calls": [{"function": {"name": "f", "arguments": '{"a":1}'}}],
            },
            "finish_reason": "tool_calls",
        }
    ]
}
CLAUDE = {
    "type": "message",
    "content": [
        {"type": "thinking", "thinking": "hm"},
        {"type": "tool_use", "name": "f", "input": {"a": 1}},
    ],
    "stop_reason": "tool_use",
}
GEMINI = {
    "candidates": [
        {"content": {"parts": [{"text": "x", "thought": True}, {"text": '{"answer": "y"}'}]}}
    ]
}
RESPONSES = {
    "object": "response",
    "output": [
        {"type": "reasoning"},
        {"type": "function_call", "name": "f", "arguments": "{}"},
        {"type": "message", "content": [{"type": "output_text", "text": "[1]"}]},
    ],
}


@pytest.mark.parametrize(
    ("body", "shape"),
    [
        (CHAT_TOOL, "openai_chat"),
        (CLAUDE, "anthropic"),
        (GEMINI, "gemini"),
        (RESPONSES, "openai_responses"),
    ],
)
def test_answer_shape(body: dict[str, Any], shape: str) -> None:
    api = api_of_answer(body)
    assert api is not None and api.name == shape
    assert api_of_answer({"neither": "shape"}) is None


def test_honours_reads_every_shape() -> None:
    run("honours", CHAT_REASONING, "reasoning")
    run("honours", CHAT_TOOL, "tools")
    run("honours", CLAUDE, ["reasoning", "tools"])
    run("honours", GEMINI, ["reasoning", "json"])
    run("honours", RESPONSES, ["reasoning", "tools", "json"])


def test_honours_says_what_is_missing() -> None:
    plain = {"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}], "usage": {}}
    assert failure("honours", plain, "reasoning").endswith(
        "usage.completion_tokens_details.reasoning_tokens is None"
    )
    assert failure("honours", plain, "tools").endswith("choices[0].message.tool_calls is empty")
    assert "the answer text is not JSON: 'hi'" in failure("honours", plain, "json")
    bad_args = json.loads(json.dumps(CHAT_TOOL))
    bad_args["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = "{oops"
    assert "arguments is not a JSON object" in failure("honours", bad_args, "tools")
    no_stop = {**CLAUDE, "stop_reason": "end_turn"}
    assert "stop_reason is 'end_turn', not tool_use" in failure("honours", no_stop, "tools")
    assert "no functionCall part" in failure("honours", GEMINI, "tools")
    assert "not a chat, responses" in failure("honours", {"error": {}}, "tools")
    assert "unknown option 'vision'" in failure("honours", CHAT_TOOL, "vision")


# -- credential leaks ----------------------------------------------------------------------


def test_credentials_in_finds_and_masks_credentials() -> None:
    text = (
        "upstream said 401 for sk-proj-abcdefghijklmnopqrstuvwxyz0123 via "
        "https://generativelanguage.googleapis.com/v1beta/models"
        "?key=AIzaSyA1234567890abcdefghijklmnopqrstu "
        "with Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload"
    )
    found = credentials_in(text)
    kinds = [what for what, _ in found]
    assert kinds == ["an sk- API key", "a Google API key", "a bearer token", "a key in a URL"]
    for _, masked in found:
        assert "…" in masked and len(masked) < 12  # never the usable value
    assert "abcdefghijklmnop" not in json.dumps(found)


@pytest.mark.parametrize(
    "text",
    [
        '{"id":"chatcmpl-faa2d5fce6394e0b0bdbe4f7","object":"chat.completion"}',
        "Invalid API key (request id: gp-0ecf98dc-00000010)",
        "masked key sk-gp…1234 and sk-short",
        "the bearer token is missing",
    ],
)
def test_credentials_in_ignores_ordinary_answers(text: str) -> None:
    assert credentials_in(text) == []


def test_no_credential_leak_reports_where() -> None:
    leak = {"error": {"message": "upstream key sk-proj-abcdefghijklmnopqrstuvwxyz0123"}}
    assert failure("no_credential_leak", leak, True) == (
        "the response body carries an sk- API key (sk-…0123)"
    )
    run("no_credential_leak", leak, False)
    run("no_credential_leak", {"ok": True}, True)
