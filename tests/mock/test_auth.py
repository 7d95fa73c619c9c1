"""Authentication, quota refusals, model access, rate limits and channel pinning of the mock."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from support import ADMIN, DEFAULT, SECRETS, bearer, claude, goog

from gateprobe.mock import MockServer
from gateprobe.protocols.anthropic import ANTHROPIC_ERROR_TYPES as ANTHROPIC_TYPES

PATHS = {
    "openai": "/v1/chat/completions",
    "anthropic": "/v1/messages",
    "gemini": "/v1beta/models/gemini-2.5-flash:generateContent",
}
PROTOCOLS = tuple(PATHS)
NATIVE_HEADER = {"openai": "authorization", "anthropic": "x-api-key", "gemini": "x-goog-api-key"}
UNKNOWN_SECRET = "sk-gp-unknown-1234567890abcdef"


def chat_body(protocol: str, model: str | None = None, **extra: Any) -> dict[str, Any]:
    if protocol == "openai":
        body: dict[str, Any] = {
            "model": model or "gpt-4o-mini",
            "messages": [{"role": "user", "content": "hello auth"}],
            "max_tokens": 8,
        }
    elif protocol == "anthropic":
        body = {
            "model": model or "claude-sonnet-4-5",
            "max_tokens": 8,
            "messages": [{"role": "user", "content": "hello auth"}],
        }
    else:
        body = {
            "contents": [{"role": "user", "parts": [{"text": "hello auth"}]}],
            "generationConfig": {"maxOutputTokens": 8},
        }
    return body | extra


def path_for(protocol: str, model: str | None = None, stream: bool = False) -> str:
    if protocol != "gemini":
        return PATHS[protocol]
    action = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return f"/v1beta/models/{model or 'gemini-2.5-flash'}:{action}"


def native(protocol: str, secret: str) -> dict[str, str]:
    if protocol == "openai":
        return {"Authorization": f"Bearer {secret}"}
    if protocol == "anthropic":
        return {"x-api-key": secret, "anthropic-version": "2023-06-01"}
    return {"x-goog-api-key": secret}


def call(
    client: httpx.Client,
    protocol: str,
    headers: dict[str, str],
    model: str | None = None,
    *,
    content: bytes | None = None,
    stream: bool = False,
    path: str | None = None,
    body: dict[str, Any] | None = None,
) -> httpx.Response:
    body = body or chat_body(protocol, model)
    if stream and protocol != "gemini":
        body["stream"] = True
    return client.post(
        path or path_for(protocol, model, stream),
        content=json.dumps(body).encode() if content is None else content,
        headers={"content-type": "application/json", **headers},
    )


def check_error(response: httpx.Response, protocol: str, status: int) -> dict[str, Any]:
    """Assert ``response`` is a ``status`` error in ``protocol``'s envelope; its error object."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    request_id = response.headers["x-request-id"]
    body = response.json()
    if protocol == "openai":
        error = body["error"]
        assert {"message", "type", "param", "code"} <= set(error), error
    elif protocol == "anthropic":
        assert body["type"] == "error", body
        error = body["error"]
        assert error["type"] in ANTHROPIC_TYPES, error
    else:
        error = body["error"]
        assert error["code"] == status, error
        assert isinstance(error["status"], str) and error["status"], error
    assert error["message"].endswith(f"(request id: {request_id})"), error["message"]
    return dict(error)


def state(client: httpx.Client) -> dict[str, Any]:
    response = client.get("/_gateprobe/state", headers=ADMIN)
    assert response.status_code == 200
    data: dict[str, Any] = response.json()
    return data


def ledger(client: httpx.Client) -> list[dict[str, Any]]:
    response = client.get("/_gateprobe/ledger", headers=ADMIN)
    assert response.status_code == 200
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


@pytest.fixture(scope="module")
def shared() -> Iterator[httpx.Client]:
    """One default mock for this module's checks that need no fresh state; stopped at its end."""
    with MockServer(DEFAULT) as server, httpx.Client(base_url=server.url, timeout=10.0) as c:
        yield c


# -- accepted credentials ----------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "BeArEr"])
def test_bearer_scheme_is_case_insensitive_on_openai_routes(
    shared: httpx.Client, scheme: str
) -> None:
    headers = {"Authorization": f"{scheme} {SECRETS['valid']}"}
    response = call(shared, "openai", headers)
    assert response.status_code == 200, response.text
    assert response.json()["object"] == "chat.completion"
    models = shared.get("/v1/models", headers=headers)
    assert models.status_code == 200
    assert models.json()["object"] == "list"


def test_x_api_key_on_messages_and_it_wins_over_authorization(shared: httpx.Client) -> None:
    valid, wrong = SECRETS["valid"], UNKNOWN_SECRET
    alone = call(shared, "anthropic", {"x-api-key": valid})  # anthropic-version is not needed
    assert alone.status_code == 200, alone.text
    assert alone.json()["type"] == "message"
    both = call(shared, "anthropic", {"x-api-key": valid, "Authorization": f"Bearer {wrong}"})
    assert both.status_code == 200, both.text
    refused = call(shared, "anthropic", {"x-api-key": wrong, "Authorization": f"Bearer {valid}"})
    check_error(refused, "anthropic", 401)
    # Bearer alone is accepted on the Claude route too
    assert call(shared, "anthropic", {"Authorization": f"Bearer {valid}"}).status_code == 200
    # x-api-key is not a credential on the OpenAI chat route
    check_error(call(shared, "openai", {"x-api-key": valid}), "openai", 401)


def test_goog_header_wins_over_query_key(shared: httpx.Client) -> None:
    valid, wrong = SECRETS["valid"], UNKNOWN_SECRET
    base = path_for("gemini")
    ok = call(shared, "gemini", {"x-goog-api-key": valid}, path=f"{base}?key={wrong}")
    assert ok.status_code == 200, ok.text
    assert "candidates" in ok.json()
    refused = call(shared, "gemini", {"x-goog-api-key": wrong}, path=f"{base}?key={valid}")
    check_error(refused, "gemini", 401)
    assert call(shared, "gemini", {}, path=f"{base}?key={valid}").status_code == 200
    over_bearer = call(
        shared, "gemini", {"Authorization": f"Bearer {wrong}"}, path=f"{base}?key={valid}"
    )
    assert over_bearer.status_code == 200


# -- refused credentials -----------------------------------------------------------------------


def _bad_credentials(protocol: str) -> list[tuple[str, dict[str, str]]]:
    header = NATIVE_HEADER[protocol]
    cases = [
        ("missing", {}),
        ("empty-authorization", {"Authorization": ""}),
        ("basic", {"Authorization": "Basic eHl6OmFiYw=="}),
        ("basic-with-valid-key", {"Authorization": f"Basic {SECRETS['valid']}"}),
        ("no-scheme", {"Authorization": SECRETS["valid"]}),
        ("bearer-with-nothing", {"Authorization": "Bearer"}),
        ("bearer-two-tokens", {"Authorization": f"Bearer {SECRETS['valid']} extra"}),
        ("unknown", native(protocol, UNKNOWN_SECRET)),
        ("unknown-bearer", {"Authorization": f"Bearer {UNKNOWN_SECRET}"}),
        ("disabled", native(protocol, SECRETS["disabled"])),
        ("expired", native(protocol, SECRETS["expired"])),
        ("disabled-bearer", {"Authorization": f"Bearer {SECRETS['disabled']}"}),
        ("unknown-channel-suffix", native(protocol, f"{SECRETS['valid']}-nochannel")),
    ]
    if header != "authorization":
        cases.append(("empty-native", {header: ""}))
    return cases


AUTH_CASES = [(p, name, h) for p in PROTOCOLS for name, h in _bad_credentials(p)]


@pytest.mark.parametrize(
    ("protocol", "headers"),
    [(p, h) for p, _, h in AUTH_CASES],
    ids=[f"{p}-{name}" for p, name, _ in AUTH_CASES],
)
def test_bad_credentials_are_401_in_the_route_envelope(
    shared: httpx.Client, protocol: str, headers: dict[str, str]
) -> None:
    response = call(shared, protocol, headers)
    error = check_error(response, protocol, 401)
    if protocol == "openai":
        assert error["type"] == "authentication_error"
        assert error["code"] in {
            "missing_api_key",
            "malformed_api_key",
            "invalid_api_key",
            "key_disabled",
            "key_expired",
        }
    elif protocol == "anthropic":
        assert error["type"] == "authentication_error"
    else:
        assert error["status"] == "UNAUTHENTICATED"
    presented = [v.partition(" ")[2] or v for v in headers.values()]
    for secret in [*presented, *SECRETS.values(), UNKNOWN_SECRET]:
        if len(secret) > 8:
            assert secret not in response.text


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("content", [b"{", b"[1]", b"", b'{"model": 5}'])
@pytest.mark.parametrize("credential", ["missing", "unknown", "disabled"])
def test_auth_precedes_body_validation(
    shared: httpx.Client, protocol: str, content: bytes, credential: str
) -> None:
    secrets = {"missing": None, "unknown": UNKNOWN_SECRET, "disabled": SECRETS["disabled"]}
    secret = secrets[credential]
    headers = {} if secret is None else native(protocol, secret)
    check_error(call(shared, protocol, headers, content=content), protocol, 401)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_auth_precedes_model_lookup(shared: httpx.Client, protocol: str) -> None:
    response = call(shared, protocol, native(protocol, UNKNOWN_SECRET), model="no-such-model")
    check_error(response, protocol, 401)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_auth_failure_on_a_stream_request_is_a_json_error(
    shared: httpx.Client, protocol: str
) -> None:
    for headers in ({}, native(protocol, UNKNOWN_SECRET)):
        response = call(shared, protocol, headers, stream=True)
        check_error(response, protocol, 401)
        assert "text/event-stream" not in response.headers["content-type"]
        assert not response.text.startswith(("data:", "event:"))
    good = call(shared, protocol, native(protocol, SECRETS["valid"]), stream=True)
    assert good.status_code == 200
    assert good.headers["content-type"].startswith("text/event-stream")


# -- quota ---------------------------------------------------------------------------------


def _expensive(protocol: str) -> dict[str, Any]:
    """A call whose pre-deduction (for 1000 output tokens) exceeds low_quota's and poor's funds."""
    if protocol == "gemini":
        return chat_body(protocol, generationConfig={"maxOutputTokens": 1000})
    return chat_body(protocol, max_tokens=1000)


def test_insufficient_key_quota_and_balance_are_402_and_not_charged(mock: MockServer) -> None:
    with httpx.Client(base_url=mock.url, timeout=10.0) as client:
        before = state(client)
        assert before["keys"]["low_quota"]["remaining"] == 10
        assert before["accounts"]["main"] >= 1_000_000  # the key's account has plenty
        assert before["accounts"]["poor"] == 50
        for protocol in PROTOCOLS:
            expensive = _expensive(protocol)
            low_quota = native(protocol, SECRETS["low_quota"])
            low = check_error(call(client, protocol, low_quota, body=expensive), protocol, 402)
            poor_key = native(protocol, SECRETS["poor"])
            poor = check_error(call(client, protocol, poor_key, body=expensive), protocol, 402)
            if protocol == "openai":
                assert low["code"] == "insufficient_key_quota"
                assert poor["code"] == "insufficient_balance"
            elif protocol == "anthropic":
                assert low["type"] == poor["type"] == "billing_error"
            else:
                assert low["status"] == poor["status"] == "RESOURCE_EXHAUSTED"
            assert "quota" in low["message"].lower()
            assert "balance" in poor["message"].lower()
        after = state(client)
        assert after["accounts"] == before["accounts"]
        assert after["keys"]["low_quota"] == before["keys"]["low_quota"]
        assert after["open_reservations"] == 0
        assert ledger(client) == []
        # the same key works once its quota allows the call
        assert call(client, "openai", bearer()).status_code == 200


def test_insufficient_quota_status_is_configurable(
    mock_factory: Callable[..., MockServer],
) -> None:
    server = mock_factory(insufficient_quota_status=403)
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        for protocol in PROTOCOLS:
            for name in ("low_quota", "poor"):
                response = call(
                    client, protocol, native(protocol, SECRETS[name]), body=_expensive(protocol)
                )
                error = check_error(response, protocol, 403)
                if protocol == "anthropic":
                    assert error["type"] == "permission_error"
                if protocol == "gemini":
                    assert error["status"] == "PERMISSION_DENIED"
                if protocol == "openai":
                    assert error["code"] in {"insufficient_key_quota", "insufficient_balance"}


# -- model access ------------------------------------------------------------------------------


def _openai_ids(client: httpx.Client, headers: dict[str, str]) -> set[str]:
    response = client.get("/v1/models", headers=headers)
    assert response.status_code == 200, response.text
    return {m["id"] for m in response.json()["data"]}


def test_restricted_key_sees_and_calls_only_its_model(shared: httpx.Client) -> None:
    restricted = bearer("restricted")
    assert _openai_ids(shared, restricted) == {"gpt-4o-mini"}
    assert call(shared, "openai", restricted).status_code == 200
    for protocol, model in (("openai", "o3-mini"), ("openai", "claude-sonnet-4-5")):
        error = check_error(call(shared, protocol, restricted, model=model), protocol, 403)
        assert error["code"] == "model_not_allowed"
        assert error["param"] == "model"
        assert model in error["message"]
    claude_error = check_error(
        call(shared, "anthropic", claude("restricted"), model="claude-sonnet-4-5"), "anthropic", 403
    )
    assert claude_error["type"] == "permission_error"
    gemini_error = check_error(call(shared, "gemini", goog("restricted")), "gemini", 403)
    assert gemini_error["status"] == "PERMISSION_DENIED"
    anthropic_list = shared.get("/v1/models", headers=claude("restricted")).json()
    assert [m["id"] for m in anthropic_list["data"]] == ["gpt-4o-mini"]


def test_variant_model_is_visible_and_callable_only_for_its_variant(shared: httpx.Client) -> None:
    pro, valid = bearer("variant_pro"), bearer("valid")
    assert "gpt-4o-pro" in _openai_ids(shared, pro)
    assert "gpt-4o-pro" not in _openai_ids(shared, valid)
    ok = call(shared, "openai", pro, model="gpt-4o-pro")
    assert ok.status_code == 200, ok.text
    assert ok.json()["model"] == "gpt-4o-pro"
    error = check_error(call(shared, "openai", valid, model="gpt-4o-pro"), "openai", 404)
    assert error["code"] == "model_not_found"
    single = shared.get("/v1/models/gpt-4o-pro", headers=valid)
    assert check_error(single, "openai", 404)["code"] == "model_not_found"
    assert shared.get("/v1/models/gpt-4o-pro", headers=pro).json()["id"] == "gpt-4o-pro"
    gemini = shared.get("/v1beta/models", headers=goog("valid")).json()
    assert "models/gpt-4o-pro" not in {m["name"] for m in gemini["models"]}


CHAT_MODELS = {m.id for m in DEFAULT.models if "chat" in m.capabilities}
ENABLED_KEYS = sorted(
    k.name for k in DEFAULT.keys if k.status == "enabled" and k.rpm is None
)  # limited_rate is left out: its rpm of 3 would end the sweep early


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_listed_models_equal_callable_models_for_every_key(mock: MockServer, protocol: str) -> None:
    with httpx.Client(base_url=mock.url, timeout=10.0) as client:
        for name in ENABLED_KEYS:
            headers = native(protocol, SECRETS[name])
            if protocol == "gemini":
                listing = client.get("/v1beta/models", headers=headers)
                listed = {m["name"].removeprefix("models/") for m in listing.json()["models"]}
            else:
                listing = client.get("/v1/models", headers=headers)
                listed = {m["id"] for m in listing.json()["data"]}
            assert listing.status_code == 200
            callable_models = set()
            for model in sorted(CHAT_MODELS):
                response = call(client, protocol, headers, model=model)
                # 402 means the model was accepted and only the quota refused the call
                assert response.status_code in (200, 402, 403, 404), response.text
                if response.status_code in (200, 402):
                    callable_models.add(model)
            assert listed & CHAT_MODELS == callable_models, (protocol, name)
            assert listed <= {m.id for m in DEFAULT.models}


# -- rate limit --------------------------------------------------------------------------------


def test_rate_limit_is_429_with_retry_after_and_not_charged(mock: MockServer) -> None:
    limited = SECRETS["limited_rate"]
    with httpx.Client(base_url=mock.url, timeout=10.0) as client:
        for _ in range(3):
            assert call(client, "openai", bearer("limited_rate")).status_code == 200
        charged = state(client)
        entries = ledger(client)
        assert len(entries) == 3
        for protocol in PROTOCOLS:
            response = call(client, protocol, native(protocol, limited))
            error = check_error(response, protocol, 429)
            retry_after = response.headers["retry-after"]
            assert retry_after.isdigit()
            assert 1 <= int(retry_after) <= math.ceil(DEFAULT.rate_window_seconds)
            if protocol == "openai":
                assert error["code"] == "rate_limit_exceeded"
                assert error["type"] == "rate_limit_error"
            elif protocol == "anthropic":
                assert error["type"] == "rate_limit_error"
            else:
                assert error["status"] == "RESOURCE_EXHAUSTED"
        # a rate-limited request with a bad body is still a 429, never parsed
        check_error(call(client, "openai", bearer("limited_rate"), content=b"{"), "openai", 429)
        after = state(client)
        assert after["accounts"] == charged["accounts"]
        assert after["keys"]["limited_rate"] == charged["keys"]["limited_rate"]
        assert after["totals"] == charged["totals"]
        assert ledger(client) == entries
        assert call(client, "openai", bearer("valid")).status_code == 200  # other keys unaffected


# -- channel pinning ---------------------------------------------------------------------------


def test_channel_pinning_by_key_suffix_and_header(
    mock_factory: Callable[..., MockServer],
) -> None:
    # Integer prices make the premium charge exactly twice the primary one.
    models = tuple(
        dataclasses.replace(m, input_ratio=1.0, completion_ratio=1.0)
        if m.id == "gpt-4o-mini"
        else m
        for m in DEFAULT.models
    )
    server = mock_factory(models=models)
    valid = SECRETS["valid"]
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        plain = call(client, "openai", {"Authorization": f"Bearer {valid}"})
        by_suffix = call(client, "openai", {"Authorization": f"Bearer {valid}-premium"})
        by_header = call(client, "openai", {**bearer(), "x-gateprobe-channel": "premium"})
        claude_suffix = call(client, "anthropic", {"x-api-key": f"{valid}-premium"})
        for response in (plain, by_suffix, by_header, claude_suffix):
            assert response.status_code == 200, response.text
        assert plain.json()["usage"] == by_suffix.json()["usage"] == by_header.json()["usage"]
        entries = {e["request_id"]: e for e in ledger(client)}
        first, second, third, fourth = (
            entries[r.headers["x-request-id"]] for r in (plain, by_suffix, by_header, claude_suffix)
        )
        assert first["channel"] == "primary"
        assert second["channel"] == third["channel"] == fourth["channel"] == "premium"
        assert first["key"] == second["key"] == "valid"
        usage = plain.json()["usage"]
        assert first["charged"] == usage["prompt_tokens"] + usage["completion_tokens"]
        assert second["charged"] == third["charged"] == 2 * first["charged"]
        # the premium channel does not serve o3-mini: a pinned call to it is refused
        refused = call(client, "openai", {"Authorization": f"Bearer {valid}-premium"}, "o3-mini")
        assert check_error(refused, "openai", 400)["code"] == "invalid_channel"
        usage_log = client.get("/_gateprobe/usage", headers=ADMIN).json()["records"]
        channels = {r["request_id"]: r.get("channel") for r in usage_log}
        assert channels[plain.headers["x-request-id"]] == "primary"
        assert channels[by_suffix.headers["x-request-id"]] == "premium"


def test_premium_multiplier_doubles_the_default_price(mock: MockServer) -> None:
    model = next(m for m in DEFAULT.models if m.id == "claude-sonnet-4-5")
    channel = {c.id: c for c in DEFAULT.channels}
    with httpx.Client(base_url=mock.url, timeout=10.0) as client:
        plain = call(client, "anthropic", claude())
        pinned = call(client, "anthropic", {**claude(), "x-gateprobe-channel": "premium"})
        assert plain.json()["usage"] == pinned.json()["usage"]
        usage = plain.json()["usage"]
        units = (usage["input_tokens"] + usage["output_tokens"] * model.completion_ratio) * (
            model.input_ratio
        )
        entries = {e["request_id"]: e for e in ledger(client)}
        primary = entries[plain.headers["x-request-id"]]
        premium = entries[pinned.headers["x-request-id"]]
        assert primary["charged"] == math.ceil(units * channel["primary"].multiplier)
        assert premium["charged"] == math.ceil(units * channel["premium"].multiplier)
        assert channel["premium"].multiplier == 2.0
        assert 2 * primary["charged"] - 1 <= premium["charged"] <= 2 * primary["charged"]
