"""``GET /_gateprobe/quota``: one key's quota and its account's balance, found by its secret."""

from __future__ import annotations

import httpx
from support import ADMIN, SECRETS, bearer


def view(client: httpx.Client, secret: str) -> httpx.Response:
    return client.get("/_gateprobe/quota", headers={**ADMIN, "x-gateprobe-key": secret})


def test_the_view_follows_a_call_and_needs_the_admin_token(client: httpx.Client) -> None:
    before = view(client, SECRETS["low_quota"]).json()
    assert before == {
        "key": "low_quota",
        "account": "main",
        "balance": 1_000_000_000,
        "quota": 10,
        "remaining": 10,
        "used": 0,
        "status": "enabled",
        "models": None,
        "variant": "default",
        "rpm": None,
        "open": 0,
        "in_flight": 0,
        "requests": 0,
    }
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 4,
    }
    answer = client.post("/v1/chat/completions", json=body, headers=bearer("low_quota"))
    assert answer.status_code == 200
    after = view(client, SECRETS["low_quota"]).json()
    cost = after["used"]
    assert cost > 0 and after["requests"] == 1
    assert after["remaining"] == 10 - cost and after["balance"] == 1_000_000_000 - cost
    assert view(client, "sk-gp-no-such-key-000000").status_code == 404
    no_admin = client.get("/_gateprobe/quota", headers={"x-gateprobe-key": SECRETS["valid"]})
    assert no_admin.status_code == 401
    assert SECRETS["valid"] not in no_admin.text
