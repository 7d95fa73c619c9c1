"""The mock's admin API under /_gateprobe/: token, views, masking, reset, keys, faults, usage."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from support import ADMIN, DEFAULT, SECRETS, bearer, claude, goog

from gateprobe.mock import DEFECTS, MockServer

CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"
GEMINI = "/v1beta/models/gemini-2.5-flash:generateContent"
OPENAI_BODY: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "admin api check"}],
    "max_tokens": 16,
}
CLAUDE_BODY: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "admin api check"}],
}
GEMINI_BODY: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": "admin check"}]}]}
TOKEN = ADMIN["x-gateprobe-admin"]


@pytest.fixture
def admin(client: httpx.Client) -> httpx.Client:
    """The default mock's client; admin calls pass ``headers=ADMIN`` explicitly."""
    return client


def get(client: httpx.Client, route: str, **params: Any) -> dict[str, Any]:
    response = client.get(f"/_gateprobe/{route}", headers=ADMIN, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    data: dict[str, Any] = response.json()
    return data


def chat(client: httpx.Client, key: str = "valid", **changes: Any) -> httpx.Response:
    return client.post(CHAT, json=OPENAI_BODY | changes, headers=bearer(key))


def admin_error(response: httpx.Response, status: int, code: str | None = None) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"].endswith(f"(request id: {response.headers['x-request-id']})")
    if code is not None:
        assert error["code"] == code, error
    message: str = error["message"]
    return message


# -- the token -------------------------------------------------------------------------------

ADMIN_CALLS: list[tuple[str, str, Any]] = [
    ("GET", "health", None),
    ("GET", "state", None),
    ("GET", "ledger", None),
    ("GET", "usage", None),
    ("GET", "requests", None),
    ("GET", "config", None),
    ("GET", "defects", None),
    ("POST", "reset", {}),
    ("PUT", "keys/intruder", {"secret": "sk-gp-intruder-000000000000", "account": "main"}),
    ("PATCH", "keys/valid", {"status": "disabled"}),
    ("PUT", "accounts/main", {"balance": 0}),
    ("POST", "faults", {"directives": "error-503"}),
    ("PUT", "defects", {"defects": ["auth-bypass"]}),
]
BAD_TOKENS: list[dict[str, str]] = [
    {},
    {"x-gateprobe-admin": ""},
    {"x-gateprobe-admin": "wrong-token"},
    {"x-gateprobe-admin": TOKEN + "x"},
    {"x-gateprobe-admin": TOKEN[:-1]},
    {"Authorization": "Bearer wrong-token"},
    {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": TOKEN},
    bearer("valid"),  # a model key is not an admin token
]


def test_admin_api_refuses_a_missing_or_wrong_token(admin: httpx.Client) -> None:
    before = get(admin, "state")
    for method, route, body in ADMIN_CALLS:
        for headers in BAD_TOKENS:
            response = admin.request(method, f"/_gateprobe/{route}", json=body, headers=headers)
            message = admin_error(response, 401, "admin_unauthorized")
            assert TOKEN not in message
    assert get(admin, "state") == before  # nothing changed
    assert get(admin, "defects")["defects"] == []
    assert chat(admin).status_code == 200
    for headers in ({"Authorization": f"Bearer {TOKEN}"}, {"authorization": f"bearer {TOKEN}"}):
        assert admin.get("/_gateprobe/health", headers=headers).status_code == 200


def test_admin_get_views(admin: httpx.Client) -> None:
    assert chat(admin).status_code == 200
    health = get(admin, "health")
    assert health["status"] == "ok"
    assert health["mode"] == "gateway"
    assert health["defects"] == []
    assert {"last", "p50", "p99", "max", "samples"} <= set(health["loop_lag_ms"])
    state = get(admin, "state")
    assert set(state["accounts"]) == {a.name for a in DEFAULT.accounts}
    assert set(state["keys"]) == {k.name for k in DEFAULT.keys}
    assert state["open_reservations"] == 0
    assert state["totals"]["requests"] == 1
    ledger = get(admin, "ledger")
    assert len(ledger["entries"]) == 1
    assert ledger["entries"][0]["state"] == "settled"
    assert ledger["totals"] == state["totals"]
    usage = get(admin, "usage")
    assert len(usage["records"]) == 1 and usage["daily"]
    requests = get(admin, "requests")
    assert requests["requests"][-1]["path"] == CHAT
    assert requests["requests"][-1]["body"] == OPENAI_BODY
    config = get(admin, "config")
    assert config["max_body_bytes"] == DEFAULT.max_body_bytes
    assert [m["id"] for m in config["models"]] == [m.id for m in DEFAULT.models]
    defects = get(admin, "defects")
    assert defects == {"defects": [], "known": DEFECTS}
    for _ in range(2):
        assert chat(admin).status_code == 200
    assert len(get(admin, "ledger", limit=2)["entries"]) == 2
    assert len(get(admin, "usage", limit=1)["records"]) == 1
    assert len(get(admin, "requests", limit=1)["requests"]) == 1
    bad_limit = admin.get("/_gateprobe/ledger", params={"limit": "many"}, headers=ADMIN)
    assert "limit" in admin_error(bad_limit, 400)
    admin_error(admin.get("/_gateprobe/nothing-here", headers=ADMIN), 404)
    admin_error(admin.delete("/_gateprobe/state", headers=ADMIN), 405)


def test_config_masks_secrets_and_the_admin_token(admin: httpx.Client) -> None:
    response = admin.get("/_gateprobe/config", headers=ADMIN)
    assert response.status_code == 200
    text = response.text
    assert TOKEN not in text
    for secret in SECRETS.values():
        assert secret not in text
        assert secret[:8] not in text  # not even a long prefix
    config = response.json()
    assert config["admin_token"] != TOKEN and config["admin_token"]
    masked = {k["name"]: k["secret"] for k in config["keys"]}
    assert set(masked) == set(SECRETS)
    for name, value in masked.items():
        assert value.endswith(SECRETS[name][-4:])
        assert len(value) < len(SECRETS[name])


def test_requests_record_masks_keys_in_headers_and_query(admin: httpx.Client) -> None:
    assert chat(admin).status_code == 200
    assert admin.post(MESSAGES, json=CLAUDE_BODY, headers=claude("valid2")).status_code == 200
    on_query = admin.post(f"{GEMINI}?key={SECRETS['valid']}&alt=json", json=GEMINI_BODY)
    assert on_query.status_code == 200
    assert admin.post(GEMINI, json=GEMINI_BODY, headers=goog("restricted")).status_code == 403
    response = admin.get("/_gateprobe/requests", headers=ADMIN)
    text = response.text
    for secret in SECRETS.values():
        assert secret not in text
    records = response.json()["requests"]
    assert [r["path"] for r in records] == [CHAT, MESSAGES, GEMINI, GEMINI]
    assert records[0]["headers"]["authorization"].startswith("Bearer ")
    assert records[0]["headers"]["authorization"] != bearer()["Authorization"]
    assert records[1]["headers"]["x-api-key"].endswith(SECRETS["valid2"][-4:])
    assert records[1]["headers"]["anthropic-version"] == "2023-06-01"  # others are kept
    assert records[2]["query"]["key"] != SECRETS["valid"]
    assert records[2]["query"]["alt"] == "json"
    assert records[3]["headers"]["x-goog-api-key"] != SECRETS["restricted"]
    assert records[0]["request_id"] != records[1]["request_id"]


def test_reset_restores_balances_keys_and_clears_logs(admin: httpx.Client) -> None:
    initial = get(admin, "state")
    assert chat(admin).status_code == 200
    assert chat(admin, model="gpt-4o-mini--error-503").status_code == 503
    put = admin.put(
        "/_gateprobe/keys/extra",
        json={"secret": "sk-gp-extra-0000000000000000", "account": "main"},
        headers=ADMIN,
    )
    assert put.status_code == 200
    assert admin.patch("/_gateprobe/keys/valid2", json={"quota": 5}, headers=ADMIN).is_success
    assert admin.put("/_gateprobe/accounts/poor", json={"balance": 7}, headers=ADMIN).is_success
    faults = {"directives": "error-500", "count": 5}
    assert admin.post("/_gateprobe/faults", json=faults, headers=ADMIN).is_success
    changed = get(admin, "state")
    assert changed != initial
    assert get(admin, "ledger")["entries"] and get(admin, "usage")["records"]

    reset = admin.post("/_gateprobe/reset", headers=ADMIN)
    assert reset.status_code == 200
    assert reset.json()["reset"] is True
    assert get(admin, "state") == initial
    assert get(admin, "ledger")["entries"] == []
    assert get(admin, "usage") == {"records": [], "daily": {}}
    assert get(admin, "requests")["requests"] == []
    no_key = admin.post(
        CHAT,
        json=OPENAI_BODY,
        headers={"Authorization": "Bearer sk-gp-extra-0000000000000000"},
    )
    assert no_key.status_code == 401
    assert chat(admin).status_code == 200  # the scheduled faults are gone too


def test_reset_with_a_new_config_and_defects(admin: httpx.Client) -> None:
    config = DEFAULT.replace(max_body_bytes=2048).to_mapping()
    reset = admin.post(
        "/_gateprobe/reset", json={"config": config, "defects": ["auth-bypass"]}, headers=ADMIN
    )
    assert reset.status_code == 200
    assert reset.json()["defects"] == ["auth-bypass"]
    assert get(admin, "config")["max_body_bytes"] == 2048
    assert admin.post(CHAT, json=OPENAI_BODY).status_code == 200  # no key: bypassed
    bad = admin.post("/_gateprobe/reset", json={"config": {"nope": 1}}, headers=ADMIN)
    assert "nope" in admin_error(bad, 400)
    bad_defect = admin.post("/_gateprobe/reset", json={"defects": ["no-such"]}, headers=ADMIN)
    assert "no-such" in admin_error(bad_defect, 400)
    assert get(admin, "defects")["defects"] == ["auth-bypass"]  # a refused reset changes nothing


# -- keys and accounts -----------------------------------------------------------------------


def test_put_key_creates_a_usable_key(admin: httpx.Client) -> None:
    secret = "sk-gp-created-0000000000000000"
    spec = {"secret": secret, "account": "second", "quota": 100_000, "models": ["gpt-4o-mini"]}
    response = admin.put("/_gateprobe/keys/created", json=spec, headers=ADMIN)
    assert response.status_code == 200
    answer = response.json()
    assert answer["name"] == "created" and answer["account"] == "second"
    assert secret not in response.text
    headers = {"Authorization": f"Bearer {secret}"}
    ok = admin.post(CHAT, json=OPENAI_BODY, headers=headers)
    assert ok.status_code == 200, ok.text
    other = admin.post(CHAT, json=OPENAI_BODY | {"model": "o3-mini"}, headers=headers)
    assert admin_error(other, 403, "model_not_allowed")
    state = get(admin, "state")
    key = state["keys"]["created"]
    assert key["account"] == "second" and key["quota"] == 100_000
    assert key["used"] > 0 and key["remaining"] == 100_000 - key["used"]
    assert state["accounts"]["second"] == 1_000_000_000 - key["used"]
    listed = admin.get("/v1/models", headers=headers).json()["data"]
    assert [m["id"] for m in listed] == ["gpt-4o-mini"]
    # replacing the key with a new secret retires the old one
    renewed = {"secret": "sk-gp-created-1111111111111111", "account": "second"}
    assert admin.put("/_gateprobe/keys/created", json=renewed, headers=ADMIN).is_success
    assert admin.post(CHAT, json=OPENAI_BODY, headers=headers).status_code == 401
    new_headers = {"Authorization": "Bearer sk-gp-created-1111111111111111"}
    assert admin.post(CHAT, json=OPENAI_BODY, headers=new_headers).status_code == 200


PUT_KEY_ERRORS: list[tuple[Any, str]] = [
    ({"secret": "sk-gp-x-00000000000000", "account": "nobody"}, "nobody"),
    ({"secret": "sk-gp-x-00000000000000", "account": "main", "colour": "red"}, "colour"),
    ({"secret": SECRETS["valid"], "account": "main"}, "secret"),
    ({"secret": "", "account": "main"}, "secret"),
    ({"account": "main"}, "secret"),
    ({"secret": "sk-gp-x-00000000000000", "account": "main", "status": "maybe"}, "status"),
    ({"secret": "sk-gp-x-00000000000000", "account": "main", "quota": -1}, "quota"),
    ({"secret": "sk-gp-x-00000000000000", "account": "main", "models": "gpt"}, "models"),
    (["not", "an", "object"], "object"),
]


def test_put_key_validation_is_400(admin: httpx.Client) -> None:
    for body, mentions in PUT_KEY_ERRORS:
        response = admin.put("/_gateprobe/keys/broken", json=body, headers=ADMIN)
        assert mentions in admin_error(response, 400), body
    assert "broken" not in get(admin, "state")["keys"]


def test_patch_key_changes_status_and_quota(admin: httpx.Client) -> None:
    assert chat(admin, "valid2").status_code == 200
    used = get(admin, "state")["keys"]["valid2"]["used"]
    disable = admin.patch("/_gateprobe/keys/valid2", json={"status": "disabled"}, headers=ADMIN)
    assert disable.status_code == 200
    assert admin_error(chat(admin, "valid2"), 401, "key_disabled")
    enable = admin.patch("/_gateprobe/keys/valid2", json={"status": "enabled"}, headers=ADMIN)
    assert enable.status_code == 200
    assert chat(admin, "valid2").status_code == 200
    quota = admin.patch("/_gateprobe/keys/valid2", json={"quota": 1}, headers=ADMIN)
    assert quota.status_code == 200
    key = get(admin, "state")["keys"]["valid2"]
    assert key["quota"] == 1 and key["remaining"] == 1
    assert key["used"] > used  # PATCH keeps what the key has used
    assert key["account"] == "second"  # and the fields it did not name
    assert admin_error(chat(admin, "valid2"), 402, "insufficient_key_quota")
    expire = admin.patch("/_gateprobe/keys/valid2", json={"status": "expired"}, headers=ADMIN)
    assert expire.is_success
    assert admin_error(chat(admin, "valid2"), 401, "key_expired")
    unknown = admin.patch("/_gateprobe/keys/nobody", json={"status": "enabled"}, headers=ADMIN)
    admin_error(unknown, 404)
    bad = admin.patch("/_gateprobe/keys/valid", json={"status": "sleepy"}, headers=ADMIN)
    admin_error(bad, 400)
    assert chat(admin).status_code == 200


def test_put_account_sets_a_balance(admin: httpx.Client) -> None:
    response = admin.put("/_gateprobe/accounts/second", json={"balance": 0}, headers=ADMIN)
    assert response.status_code == 200
    assert response.json() == {"name": "second", "balance": 0}
    assert get(admin, "state")["accounts"]["second"] == 0
    assert admin_error(chat(admin, "valid2"), 402, "insufficient_balance")
    assert chat(admin).status_code == 200  # another account is unaffected
    refill = admin.put("/_gateprobe/accounts/second", json={"balance": 123_456}, headers=ADMIN)
    assert refill.status_code == 200
    assert chat(admin, "valid2").status_code == 200
    assert 0 < get(admin, "state")["accounts"]["second"] < 123_456
    fresh = admin.put("/_gateprobe/accounts/fresh", json={"balance": 5}, headers=ADMIN)
    assert fresh.status_code == 200
    assert get(admin, "state")["accounts"]["fresh"] == 5
    for bad in ({"balance": -1}, {"balance": "10"}, {"balance": True}, {"balance": 1.5}, {}, [1]):
        response = admin.put("/_gateprobe/accounts/second", json=bad, headers=ADMIN)
        assert "balance" in admin_error(response, 400)


# -- defects and faults ----------------------------------------------------------------------


def test_put_defects_switches_a_defect_at_run_time(admin: httpx.Client) -> None:
    unknown = {"Authorization": "Bearer sk-gp-nobody-000000000000"}
    assert admin.post(CHAT, json=OPENAI_BODY, headers=unknown).status_code == 401
    switched = admin.put(
        "/_gateprobe/defects", json={"defects": ["error-status-200", "missing-done"]}, headers=ADMIN
    )
    assert switched.status_code == 200
    assert switched.json()["defects"] == ["error-status-200", "missing-done"]
    assert get(admin, "defects")["defects"] == ["error-status-200", "missing-done"]
    assert get(admin, "health")["defects"] == ["error-status-200", "missing-done"]
    hidden = admin.post(CHAT, json=OPENAI_BODY, headers=unknown)
    assert hidden.status_code == 200
    assert hidden.json()["error"]["code"] == "invalid_api_key"
    stream = admin.post(CHAT, json=OPENAI_BODY | {"stream": True}, headers=bearer())
    assert "[DONE]" not in stream.text
    for bad in ({"defects": ["no-such-defect"]}, {"defects": "missing-done"}, {}, {"defects": [1]}):
        response = admin.put("/_gateprobe/defects", json=bad, headers=ADMIN)
        # error-status-200 does not apply to the admin API's own refusals
        admin_error(response, 400, "invalid_request")
    html = admin.put("/_gateprobe/defects", json={"defects": ["html-error-page"]}, headers=ADMIN)
    assert html.status_code == 200
    assert admin.get("/v1/nowhere").headers["content-type"].startswith("text/html")
    admin_error(admin.get("/_gateprobe/state"), 401)  # the admin API still answers JSON
    assert admin.put("/_gateprobe/defects", json={"defects": []}, headers=ADMIN).is_success
    assert admin.post(CHAT, json=OPENAI_BODY, headers=unknown).status_code == 401
    assert "[DONE]" in admin.post(CHAT, json=OPENAI_BODY | {"stream": True}, headers=bearer()).text


FAULT_ERRORS: list[tuple[Any, str]] = [
    (None, "invalid_request"),
    ({}, "invalid_request"),
    ([], "invalid_request"),
    ({"directives": 503}, "invalid_request"),
    ({"directives": "explode"}, "invalid_directive"),
    ({"directives": "error-200"}, "invalid_directive"),
    ({"directives": "error-503", "count": 0}, "invalid_request"),
    ({"directives": "error-503", "count": "2"}, "invalid_request"),
    ({"directives": "error-503", "count": True}, "invalid_request"),
    ({"directives": "error-503", "count": 1.5}, "invalid_request"),
]


def test_post_faults_validation_is_400(admin: httpx.Client) -> None:
    for body, code in FAULT_ERRORS:
        content = b"" if body is None else json.dumps(body).encode()
        response = admin.post("/_gateprobe/faults", content=content, headers=ADMIN)
        admin_error(response, 400, code)
    assert chat(admin).status_code == 200  # nothing was scheduled


def test_post_faults_schedules_errors_for_matching_calls(admin: httpx.Client) -> None:
    fault = {"directives": "error-503", "count": 2, "model": "gpt-4o-mini", "key": "valid"}
    response = admin.post("/_gateprobe/faults", json=fault, headers=ADMIN)
    assert response.status_code == 200
    assert response.json() == {"scheduled": 2, "directives": "error-503"}
    assert chat(admin, "valid2").status_code == 200  # another key: not matched
    assert chat(admin, model="o3-mini").status_code == 200  # another model: not matched
    assert [chat(admin).status_code for _ in range(3)] == [503, 503, 200]


# -- usage -----------------------------------------------------------------------------------


def test_usage_records_carry_the_call_details(admin: httpx.Client) -> None:
    calls = [
        chat(admin),
        admin.post(MESSAGES, json=CLAUDE_BODY, headers=claude("valid2")),
        admin.post(GEMINI, json=GEMINI_BODY, headers=goog()),
        admin.post(CHAT, json=OPENAI_BODY | {"stream": True}, headers=bearer()),
        admin.post(CHAT, json=OPENAI_BODY, headers={"x-gateprobe-channel": "premium", **bearer()}),
    ]
    assert all(r.status_code == 200 for r in calls)
    refused = chat(admin, "disabled")
    failed = chat(admin, model="gpt-4o-mini--error-502")
    usage = get(admin, "usage")
    records = {r["request_id"]: r for r in usage["records"]}
    assert len(records) == len(usage["records"]) == 7
    ledger = {e["request_id"]: e for e in get(admin, "ledger")["entries"]}
    expected_keys = ["valid", "valid2", "valid", "valid", "valid"]
    models = ["gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-flash", "gpt-4o-mini", "gpt-4o-mini"]
    for response, key, model in zip(calls, expected_keys, models, strict=True):
        record = records[response.headers["x-request-id"]]
        assert record["status"] == 200
        assert record["key"] == key
        assert record["model"] == model
        assert record["upstream_request_id"] == response.headers["x-gateprobe-upstream-request-id"]
        assert record["upstream_request_id"] != record["request_id"]
        assert isinstance(record["latency_ms"], float) and record["latency_ms"] >= 0
        entry = ledger[record["request_id"]]
        assert record["cost"] == entry["charged"] > 0
        assert record["channel"] == entry["channel"]
        assert record["prompt_tokens"] == entry["prompt_tokens"] > 0
        assert record["completion_tokens"] == entry["completion_tokens"] > 0
    first = calls[0].json()["usage"]
    record = records[calls[0].headers["x-request-id"]]
    assert (record["prompt_tokens"], record["completion_tokens"]) == (
        first["prompt_tokens"],
        first["completion_tokens"],
    )
    assert records[calls[4].headers["x-request-id"]]["channel"] == "premium"
    assert records[calls[0].headers["x-request-id"]]["channel"] == "primary"
    denied = records[refused.headers["x-request-id"]]
    assert denied["status"] == 401 and denied["error"] == "key_disabled"
    assert denied.get("cost", 0) == 0
    broken = records[failed.headers["x-request-id"]]
    assert broken["status"] == 502 and broken.get("cost", 0) == 0
    assert broken["key"] == "valid"

    # the daily aggregates are exact sums of the records
    daily = usage["daily"]
    rows = list(daily.values())
    assert sum(r["requests"] for r in rows) == 7
    assert sum(r["errors"] for r in rows) == 2
    all_records = usage["records"]
    assert sum(r["quota"] for r in rows) == sum(r.get("cost", 0) for r in all_records)
    assert sum(r["prompt_tokens"] for r in rows) == sum(
        r.get("prompt_tokens", 0) for r in all_records
    )
    assert sum(r["completion_tokens"] for r in rows) == sum(
        r.get("completion_tokens", 0) for r in all_records
    )
    total_latency = sum(r["latency_ms"] for r in all_records)
    assert sum(r["latency_ms_total"] for r in rows) == pytest.approx(total_latency, abs=0.01)
    for day, row in daily.items():
        assert len(day) == 10 and day[4] == "-"
        assert row["latency_ms_mean"] == pytest.approx(
            row["latency_ms_total"] / row["requests"], abs=0.001
        )


def test_usage_log_is_bounded_but_the_aggregates_count_everything(
    mock_factory: Callable[..., MockServer],
) -> None:
    server = mock_factory(usage_log_size=5)
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        ids = []
        for _ in range(8):
            response = chat(client)
            assert response.status_code == 200
            ids.append(response.headers["x-request-id"])
        usage = get(client, "usage")
        assert [r["request_id"] for r in usage["records"]] == ids[-5:]
        assert sum(row["requests"] for row in usage["daily"].values()) == 8
        assert sum(row["quota"] for row in usage["daily"].values()) == sum(
            e["charged"] for e in get(client, "ledger")["entries"]
        )
        assert [r["request_id"] for r in get(client, "usage", limit=2)["records"]] == ids[-2:]
        client.post("/_gateprobe/reset", headers=ADMIN)
        for _ in range(7):
            assert chat(client).status_code == 200
        assert len(get(client, "usage")["records"]) == 5  # the bound survives a reset
