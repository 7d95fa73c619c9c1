"""Upstream mode (``--mode upstream``) is a faithful provider behind a real gateway.

It serves exactly its catalog (gateprobe/mock/default.yaml), each model on every route of its
capability whatever the protocol (a gateway translates protocols and keeps the model name),
refuses any other name with 404 ``model_not_found`` in the route's envelope, and lists what it
serves. Gateway mode keeps restricting models to their protocols.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from support import DEFAULT, bearer, claude

from gateprobe.mock import MockServer

PROMPT = "upstream mode"
CHAT_MODELS = [m.id for m in DEFAULT.models if "chat" in m.capabilities]
CATALOG = [m.id for m in DEFAULT.models]
CAPABILITY = {m.id: m.capabilities[0] for m in DEFAULT.models}


def call(
    client: httpx.Client, route: str, model: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    """One call of ``route`` naming ``model``; no key unless given (upstream mode needs none)."""
    client.headers.update(headers or {})
    try:
        return _call(client, route, model)
    finally:
        for name in headers or {}:
            del client.headers[name]


def _call(client: httpx.Client, route: str, model: str) -> httpx.Response:
    if route == "chat":
        body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": PROMPT}]}
        return client.post("/v1/chat/completions", json=body)
    if route == "chat-stream":
        body = {"model": model, "stream": True, "messages": [{"role": "user", "content": PROMPT}]}
        return client.post("/v1/chat/completions", json=body)
    if route == "responses":
        return client.post("/v1/responses", json={"model": model, "input": PROMPT})
    if route == "responses-stream":
        return client.post("/v1/responses", json={"model": model, "input": PROMPT, "stream": True})
    if route == "compact":
        body = {"model": model, "input": [{"role": "user", "content": PROMPT}]}
        return client.post("/v1/responses/compact", json=body)
    if route == "messages":
        body = {
            "model": model,
            "max_tokens": 64,
            "messages": [{"role": "user", "content": PROMPT}],
        }
        return client.post("/v1/messages", json=body, headers={"anthropic-version": "2023-06-01"})
    if route in ("gemini", "gemini-stream"):
        action = "streamGenerateContent" if route == "gemini-stream" else "generateContent"
        body = {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}
        params = {"alt": "sse"} if route == "gemini-stream" else None
        return client.post(f"/v1beta/models/{model}:{action}", json=body, params=params)
    if route == "embeddings":
        return client.post("/v1/embeddings", json={"model": model, "input": PROMPT})
    if route == "images":
        return client.post("/v1/images/generations", json={"model": model, "prompt": PROMPT})
    if route == "rerank":
        body = {"model": model, "query": PROMPT, "documents": ["upstream", "mode"]}
        return client.post("/v1/rerank", json=body)
    raise AssertionError(route)


CHAT_ROUTES = (
    "chat",
    "chat-stream",
    "responses",
    "responses-stream",
    "compact",
    "messages",
    "gemini",
    "gemini-stream",
)
ALL_ROUTES = (*CHAT_ROUTES, "embeddings", "images", "rerank")
ROUTES_OF = {"chat": CHAT_ROUTES, "responses": CHAT_ROUTES}


@pytest.fixture(scope="module")
def upstream() -> Iterator[httpx.Client]:
    server = MockServer(DEFAULT.replace(mode="upstream")).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10.0) as client:
            yield client
    finally:
        server.stop()


def error_of(route: str, response: httpx.Response) -> tuple[str, str]:
    """(code or status, message) of an error answer in the route's envelope."""
    body = response.json()
    if route == "messages":
        assert body["type"] == "error"
        return body["error"]["type"], body["error"]["message"]
    if route.startswith("gemini"):
        return body["error"]["status"], body["error"]["message"]
    return body["error"]["code"], body["error"]["message"]


# -- (a) unknown names ---------------------------------------------------------------------


@pytest.mark.parametrize("route", ALL_ROUTES)
@pytest.mark.parametrize("name", ["acme-llm-7b-chat", "acme-llm-7b-chat--error-503"])
def test_an_unknown_model_is_404_model_not_found_in_the_routes_envelope(
    upstream: httpx.Client, route: str, name: str
) -> None:
    response = call(upstream, route, name)
    assert response.status_code == 404, response.text
    assert response.headers["content-type"].startswith("application/json")
    code, message = error_of(route, response)
    expected = {"messages": "not_found_error"}.get(route, "model_not_found")
    assert code == ("NOT_FOUND" if route.startswith("gemini") else expected)
    assert name in message


@pytest.mark.parametrize(
    "path",
    ["/v1/models/acme-llm-7b-chat", "/v1beta/models/acme-llm-7b-chat", "/v1/models/gpt-4o-mini--x"],
)
def test_a_lookup_of_an_unknown_model_is_404(upstream: httpx.Client, path: str) -> None:
    response = upstream.get(path)
    assert response.status_code == 404
    body = response.json()
    if path.startswith("/v1beta"):
        assert body["error"]["status"] == "NOT_FOUND"
    else:
        assert body["error"]["code"] == "model_not_found"


def test_a_model_of_another_capability_is_404(upstream: httpx.Client) -> None:
    assert call(upstream, "chat", "text-embedding-3-small").status_code == 404
    assert call(upstream, "messages", "gpt-image-1").status_code == 404
    assert call(upstream, "embeddings", "gpt-4o-mini").status_code == 404
    assert call(upstream, "rerank", "text-embedding-3-small").status_code == 404
    assert call(upstream, "images", "bge-reranker-v2-m3").status_code == 404


# -- (b) the catalog on every route of its capability -------------------------------------


@pytest.mark.parametrize("route", CHAT_ROUTES)
@pytest.mark.parametrize("model", CHAT_MODELS)
def test_every_chat_model_is_served_on_every_chat_route(
    upstream: httpx.Client, model: str, route: str
) -> None:
    response = call(upstream, route, model)
    assert response.status_code == 200, response.text
    if route.endswith("-stream"):
        assert b"data: " in response.content
    elif route == "gemini":
        assert response.json()["candidates"][0]["content"]["parts"][0]["text"]
    elif route == "compact":
        assert response.json()["object"] == "response.compaction"
    else:
        assert response.json()["model"] == model


def test_a_model_name_with_directives_is_served_and_the_directives_apply(
    upstream: httpx.Client,
) -> None:
    # LiteLLM turns /v1/messages into an upstream /v1/responses call under the client's name
    assert call(upstream, "responses", "claude-sonnet-4-5--error-503").status_code == 503
    assert call(upstream, "gemini", "o3-mini--error-429").status_code == 429
    ok = call(upstream, "messages", "o3-mini--chunks-4")
    assert ok.status_code == 200
    assert ok.json()["usage"]["output_tokens"] == 4


@pytest.mark.parametrize("model", [m for m in CATALOG if m not in CHAT_MODELS])
def test_every_other_model_is_served_on_the_route_of_its_capability(
    upstream: httpx.Client, model: str
) -> None:
    response = call(upstream, CAPABILITY[model], model)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["results"] if CAPABILITY[model] == "rerank" else body["data"]


# -- (c) the list is the catalog -----------------------------------------------------------


def test_the_openai_list_is_exactly_the_catalog_and_each_is_callable_and_found(
    upstream: httpx.Client,
) -> None:
    listed = [m["id"] for m in upstream.get("/v1/models").json()["data"]]
    assert sorted(listed) == sorted(CATALOG)
    for model in listed:
        route = ROUTES_OF.get(CAPABILITY[model], (CAPABILITY[model],))[0]
        assert call(upstream, route, model).status_code == 200, model
        found = upstream.get(f"/v1/models/{model}")
        assert found.status_code == 200, model
        assert found.json()["id"] == model


def test_the_anthropic_and_gemini_lists_show_the_chat_models_and_each_is_callable(
    upstream: httpx.Client,
) -> None:
    anthropic = upstream.get("/v1/models", headers=claude())
    assert sorted(m["id"] for m in anthropic.json()["data"]) == sorted(CHAT_MODELS)
    gemini = upstream.get("/v1beta/models").json()["models"]
    names = [m["name"].removeprefix("models/") for m in gemini]
    assert sorted(names) == sorted(CHAT_MODELS)
    for model in names:
        assert call(upstream, "gemini", model).status_code == 200, model
        found = upstream.get(f"/v1beta/models/{model}")
        assert found.status_code == 200
        assert found.json()["name"] == f"models/{model}"


def test_a_lookup_keeps_the_name_asked_with_its_directives(upstream: httpx.Client) -> None:
    found = upstream.get("/v1/models/gpt-4o-mini--error-503")
    assert found.status_code == 200
    assert found.json()["id"] == "gpt-4o-mini--error-503"


# -- gateway mode keeps its protocol restrictions ------------------------------------------


@pytest.fixture
def gateway(mock_factory: Callable[..., MockServer]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mock_factory().url, timeout=10.0) as client:
        yield client


def test_gateway_mode_still_restricts_models_to_their_protocols(gateway: httpx.Client) -> None:
    def with_key(route: str, model: str) -> int:
        headers = claude() if route == "messages" else bearer()
        return call(gateway, route, model, headers).status_code

    assert with_key("responses", "claude-sonnet-4-5") == 404
    assert with_key("messages", "o3-mini") == 404
    assert with_key("chat", "acme-llm-7b-chat") == 404
    assert with_key("chat", "claude-sonnet-4-5") == 200
    listed = gateway.get("/v1/models", headers=claude()).json()["data"]
    assert "o3-mini" not in {m["id"] for m in listed}
    found = gateway.get("/v1/models/gpt-4o-mini--error-503", headers=bearer())
    assert found.status_code == 404
    assert json.loads(found.content)["error"]["code"] == "model_not_found"
