"""``models_match_calls`` calls each listed model with the operation that fits it: a listed
embeddings (image, rerank) model is called as one, not with chat, which it would refuse."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx
import pytest
from selftest import mock_target
from support import DEFAULT

from gateprobe.checks import CheckContext
from gateprobe.http import Exchange, RequestRecord
from gateprobe.mock import MockServer
from gateprobe.request import build_request
from gateprobe.runner import send
from gateprobe.target import Target

TARGET = Target(
    "t",
    "http://gw",
    models={
        "chat": {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-4-5"},
        "responses": "gpt-4o-mini",
        "embeddings": "text-embedding-3-small",
        "images": "gpt-image-1",
        "rerank": "rerank-english-v3.0",
    },
)
# what the gateway serves, by protocol and operation
SERVED = {
    ("openai", "chat"): {"gpt-4o-mini", "claude-sonnet-4-5"},
    ("anthropic", "chat"): {"claude-sonnet-4-5"},
    ("openai", "embeddings"): {"text-embedding-3-small"},
    ("openai", "images"): {"gpt-image-1"},
    ("openai", "rerank"): {"rerank-english-v3.0"},
}


def _answer(status: int, body: Any) -> Exchange:
    return Exchange(
        RequestRecord("POST", "http://gw/x", {}, None),
        status=status,
        headers={"content-type": "application/json"},
        body=json.dumps(body).encode(),
    )


def _context(listed: list[str], protocol: str, calls: list[Mapping[str, Any]]) -> CheckContext:
    def call(spec: Mapping[str, Any]) -> Exchange:
        calls.append(spec)
        if spec["model"] in SERVED.get((spec["protocol"], spec["operation"]), ()):
            return _answer(200, {"ok": True})
        # as OpenAI answers chat with an embeddings model
        return _answer(404, {"error": {"message": "This is not a chat model", "code": None}})

    listing = _answer(200, {"object": "list", "data": [{"id": m} for m in listed]})
    return CheckContext(listing, TARGET, "unit.models", protocol, call=call)


def test_a_listed_embeddings_model_is_called_with_embeddings() -> None:
    calls: list[Mapping[str, Any]] = []
    listed = ["gpt-4o-mini", "text-embedding-3-small", "gpt-image-1", "rerank-english-v3.0"]
    ctx = _context(listed, "openai", calls)
    assert ctx.run("models_match_calls", True) == []
    assert [(c["protocol"], c["operation"], c["model"]) for c in calls] == [
        ("openai", "chat", "gpt-4o-mini"),
        ("openai", "embeddings", "text-embedding-3-small"),
        ("openai", "images", "gpt-image-1"),
        ("openai", "rerank", "rerank-english-v3.0"),
    ]


def test_an_embeddings_model_in_an_anthropic_list_is_called_through_openai_embeddings() -> None:
    # LiteLLM answers /v1/models the same whichever protocol asks
    calls: list[Mapping[str, Any]] = []
    ctx = _context(["claude-sonnet-4-5", "text-embedding-3-small"], "anthropic", calls)
    assert ctx.run("models_match_calls", True) == []
    listed_calls = [(c["protocol"], c["operation"], c["model"]) for c in calls[:2]]
    assert listed_calls == [
        ("anthropic", "chat", "claude-sonnet-4-5"),
        ("openai", "embeddings", "text-embedding-3-small"),
    ]
    # the unlisted profile models tried on the Anthropic list are only those it could hold
    assert all(c["protocol"] == "anthropic" for c in calls[2:])


def test_a_listed_model_no_entry_names_is_called_with_chat_and_may_fail() -> None:
    calls: list[Mapping[str, Any]] = []
    ctx = _context(["gpt-4o-mini", "text-embedding-ada-002"], "openai", calls)
    (failure,) = ctx.run("models_match_calls", True)
    assert "text-embedding-ada-002 is listed but not callable (HTTP 404)" in failure.message
    assert ("chat", "text-embedding-ada-002") in [(c["operation"], c["model"]) for c in calls]


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0) as client:
        yield client


def test_the_mocks_listed_embeddings_model_is_callable_as_embeddings_only(
    mock_factory: Callable[..., MockServer], http: httpx.Client
) -> None:
    target = mock_target(mock_factory(DEFAULT).url)
    model = target.model("embeddings", "openai")
    assert model is not None
    listing = send({"protocol": "openai", "operation": "models"}, target, http)
    assert model in [m["id"] for m in listing.json()["data"]]
    # a chat call to it is refused: calling every listed model with chat would fail it
    assert (
        send({"protocol": "openai", "operation": "chat", "model": model}, target, http).status
        == 404
    )

    calls: list[Mapping[str, Any]] = []

    def call(spec: Mapping[str, Any]) -> Exchange:
        calls.append(spec)
        return send(spec, target, http)

    built = build_request({"protocol": "openai", "operation": "models"}, target)
    secrets = [built.secret] if built.secret else []
    ctx = CheckContext(listing, target, "unit.models", "openai", secrets=secrets, call=call)
    assert ctx.run("models_match_calls", True) == []
    assert {"protocol": "openai", "operation": "embeddings", "model": model} in [
        {k: c[k] for k in ("protocol", "operation", "model")} for c in calls
    ]
