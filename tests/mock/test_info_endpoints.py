"""Read-only info endpoints: /api/status, the billing dashboard and /api/usage/token."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from support import ADMIN, DEFAULT, SECRETS, bearer, claude

QUOTA_PER_UNIT = 500_000  # new-api's quota units per USD (shared/reference/gateway-behaviour.md)
CHAT_BODY: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "what does this cost"}],
    "max_tokens": 16,
}
BILLING_PREFIXES = ["/v1/dashboard/billing", "/dashboard/billing"]


def state(client: httpx.Client) -> dict[str, Any]:
    data: dict[str, Any] = client.get("/_gateprobe/state", headers=ADMIN).json()
    return data


def granted_and_used(client: httpx.Client, key: str) -> tuple[int, int]:
    """What the key may spend in all and has spent, from the admin view of the ledger."""
    snapshot = state(client)
    info = snapshot["keys"][key]
    if info["remaining"] is not None:  # a key with its own quota
        return info["remaining"] + info["used"], info["used"]
    account = info["account"]
    used = sum(k["used"] for k in snapshot["keys"].values() if k["account"] == account)
    return snapshot["accounts"][account] + used, used


def charged_call(client: httpx.Client, key: str = "valid") -> int:
    response = client.post("/v1/chat/completions", json=CHAT_BODY, headers=bearer(key))
    assert response.status_code == 200, response.text
    request_id = response.headers["x-request-id"]
    entries = client.get("/_gateprobe/ledger", headers=ADMIN).json()["entries"]
    (entry,) = [e for e in entries if e["request_id"] == request_id]
    assert entry["charged"] > 0
    charged: int = entry["charged"]
    return charged


# -- /api/status -----------------------------------------------------------------------------


def test_api_status_needs_no_auth(client: httpx.Client) -> None:
    for headers in ({}, {"Authorization": "Bearer sk-gp-nobody-0000000000"}, bearer("disabled")):
        response = client.get("/api/status", headers=headers)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/json")
        body = response.json()
        assert body["success"] is True
        assert body["message"] == ""
        data = body["data"]
        assert data["quota_per_unit"] == QUOTA_PER_UNIT
        for field in (
            "version",
            "start_time",
            "display_in_currency",
            "quota_display_type",
            "usd_exchange_rate",
            "price",
            "self_use_mode_enabled",
            "default_use_auto_group",
            "enable_batch_update",
            "server_address",
            "system_name",
            "setup",
        ):
            assert field in data, field
        assert isinstance(data["start_time"], int) and data["start_time"] > 1_600_000_000
        assert data["server_address"].startswith("http://127.0.0.1:")


# -- billing dashboard -----------------------------------------------------------------------


def billing(client: httpx.Client, prefix: str, key: str) -> tuple[dict[str, Any], dict[str, Any]]:
    subscription = client.get(f"{prefix}/subscription", headers=bearer(key))
    usage = client.get(f"{prefix}/usage", headers=bearer(key))
    assert subscription.status_code == usage.status_code == 200, subscription.text
    return subscription.json(), usage.json()


@pytest.mark.parametrize("prefix", BILLING_PREFIXES)
def test_billing_subscription_and_usage_shapes_and_units(client: httpx.Client, prefix: str) -> None:
    for key in ("valid", "valid2", "low_quota", "restricted", "poor"):
        subscription, usage = billing(client, prefix, key)
        granted, used = granted_and_used(client, key)
        assert subscription["object"] == "billing_subscription"
        assert subscription["has_payment_method"] is True
        limit = subscription["hard_limit_usd"]
        assert limit == pytest.approx(granted / QUOTA_PER_UNIT, abs=1e-6)
        assert subscription["soft_limit_usd"] == subscription["system_hard_limit_usd"] == limit
        assert isinstance(subscription["access_until"], int)
        assert usage["object"] == "list"
        assert usage["total_usage"] == pytest.approx(used / QUOTA_PER_UNIT * 100, abs=1e-6)
    main = next(a for a in DEFAULT.accounts if a.name == "main")
    subscription, _ = billing(client, prefix, "valid")
    assert subscription["hard_limit_usd"] == pytest.approx(main.balance / QUOTA_PER_UNIT)
    low_quota = next(k for k in DEFAULT.keys if k.name == "low_quota")
    subscription, _ = billing(client, prefix, "low_quota")
    assert low_quota.quota is not None
    assert subscription["hard_limit_usd"] == pytest.approx(low_quota.quota / QUOTA_PER_UNIT)


def test_billing_changes_after_a_charged_call(client: httpx.Client) -> None:
    _, usage_before = billing(client, BILLING_PREFIXES[0], "valid")
    subscription_before, _ = billing(client, BILLING_PREFIXES[0], "valid")
    _, sibling_before = billing(client, BILLING_PREFIXES[0], "restricted")  # same account
    cost = charged_call(client)
    for prefix in BILLING_PREFIXES:
        subscription, usage = billing(client, prefix, "valid")
        delta = usage["total_usage"] - usage_before["total_usage"]
        assert delta == pytest.approx(cost / QUOTA_PER_UNIT * 100, abs=1e-6)  # cents
        assert delta > 0
        # what is granted is what remains plus what was used: a charge does not change it
        assert subscription["hard_limit_usd"] == pytest.approx(
            subscription_before["hard_limit_usd"], abs=1e-6
        )
    _, sibling = billing(client, BILLING_PREFIXES[0], "restricted")
    assert sibling["total_usage"] > sibling_before["total_usage"]  # usage is per account
    _, other_account = billing(client, BILLING_PREFIXES[0], "valid2")
    assert other_account["total_usage"] == 0
    # a key with its own quota: its usage moves, its limit is its quota
    created = {"secret": "sk-gp-billing-00000000000000", "account": "second", "quota": 1_000_000}
    assert client.put("/_gateprobe/keys/billing", json=created, headers=ADMIN).is_success
    headers = {"Authorization": "Bearer sk-gp-billing-00000000000000"}
    response = client.post("/v1/chat/completions", json=CHAT_BODY, headers=headers)
    assert response.status_code == 200
    subscription = client.get("/v1/dashboard/billing/subscription", headers=headers).json()
    usage = client.get("/v1/dashboard/billing/usage", headers=headers).json()
    _, used = granted_and_used(client, "billing")
    assert used > 0
    assert subscription["hard_limit_usd"] == pytest.approx(1_000_000 / QUOTA_PER_UNIT)
    assert usage["total_usage"] == pytest.approx(used / QUOTA_PER_UNIT * 100, abs=1e-6)


@pytest.mark.parametrize("prefix", BILLING_PREFIXES)
def test_billing_requires_a_usable_key(client: httpx.Client, prefix: str) -> None:
    for headers in (
        {},
        bearer("disabled"),
        bearer("expired"),
        {"Authorization": "Bearer sk-gp-nobody-00000000000000"},
        {"Authorization": "Basic abc"},
    ):
        for route in ("subscription", "usage"):
            response = client.get(f"{prefix}/{route}", headers=headers)
            assert response.status_code == 401, response.text
            error = response.json()["error"]
            assert error["message"].endswith(f"(request id: {response.headers['x-request-id']})")
            for secret in SECRETS.values():
                assert secret not in response.text


# -- /api/usage/token ------------------------------------------------------------------------


def token_usage(client: httpx.Client, key: str, path: str = "/api/usage/token") -> dict[str, Any]:
    response = client.get(path, headers={"Authorization": f"Bearer {SECRETS[key]}"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] is True
    assert body["message"] == "ok"
    data: dict[str, Any] = body["data"]
    assert data["object"] == "token_usage"
    assert data["name"] == key
    granted, used = granted_and_used(client, key)
    assert data["total_granted"] == granted
    assert data["total_used"] == used
    assert data["total_available"] == granted - used
    return data


def test_token_usage_for_every_key_status(client: httpx.Client) -> None:
    valid = token_usage(client, "valid")
    assert valid["unlimited_quota"] is True
    assert valid["model_limits_enabled"] is False and valid["model_limits"] == {}
    assert valid["expires_at"] == 0
    assert token_usage(client, "valid", "/api/usage/token/") == valid  # new-api's trailing slash
    disabled = token_usage(client, "disabled")  # read-only auth: any status may look
    assert disabled["status"] == "disabled"
    expired = token_usage(client, "expired")
    assert expired["status"] == "expired"
    assert expired["expires_at"] != 0
    low = token_usage(client, "low_quota")
    assert low["unlimited_quota"] is False
    assert low["total_granted"] == 10 and low["total_available"] == 10
    restricted = token_usage(client, "restricted")
    assert restricted["model_limits_enabled"] is True
    assert restricted["model_limits"] == {"gpt-4o-mini": True}


def test_token_usage_changes_after_a_charged_call(client: httpx.Client) -> None:
    before = token_usage(client, "valid")
    cost = charged_call(client)
    after = token_usage(client, "valid")
    assert after["total_used"] == before["total_used"] + cost
    assert after["total_available"] == before["total_available"] - cost
    assert after["total_granted"] == before["total_granted"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": f"bearer {SECRETS['valid']}"},
        {"Authorization": f"BEARER {SECRETS['valid']}"},
        {"Authorization": SECRETS["valid"]},
        {"Authorization": f"Basic {SECRETS['valid']}"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer sk-gp-nobody-00000000000000"},
        {"x-api-key": SECRETS["valid"]},
        claude("valid"),
    ],
    ids=[
        "missing",
        "empty",
        "lowercase-bearer",
        "uppercase-bearer",
        "no-scheme",
        "basic",
        "bearer-nothing",
        "unknown",
        "x-api-key",
        "claude-headers",
    ],
)
def test_token_usage_requires_exactly_bearer_key(
    client: httpx.Client, headers: dict[str, str]
) -> None:
    response = client.get("/api/usage/token", headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["success"] is False
    assert isinstance(body["message"], str) and body["message"]
    assert body["message"].endswith(f"(request id: {response.headers['x-request-id']})")
    assert "data" not in body
    for secret in SECRETS.values():
        assert secret not in response.text
