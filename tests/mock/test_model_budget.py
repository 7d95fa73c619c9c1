"""A budget tied to a model, shared by every key: config, strict admission, envelopes, reset.

The default catalog's ``gpt-4o-mini-budget`` has a budget of 150 units at one unit per token; a
call reserves its estimate (prompt + max_tokens) and is refused when the budget's remainder
cannot cover it, so the spend never passes the budget.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from support import ADMIN, DEFAULT, bearer, claude, goog

from gateprobe.mock import MockServer
from gateprobe.mock.config import AccountConfig, ConfigError, KeyConfig, MockConfig, ModelConfig
from gateprobe.mock.ledger import Ledger, ModelBudgetExceeded

MODEL = "gpt-4o-mini-budget"
CHAT = "/v1/chat/completions"
PROMPT = [{"role": "user", "content": "Say hello in five words."}]
BODY: dict[str, Any] = {"model": MODEL, "messages": PROMPT, "max_tokens": 64}
ESTIMATE = 8 + 64  # 5 words + 3 per message, plus max_tokens, at one unit per token


def budget_state(client: httpx.Client) -> dict[str, int]:
    found: dict[str, int] = client.get("/_gateprobe/state", headers=ADMIN).json()["model_budgets"][
        MODEL
    ]
    return found


def statuses(client: httpx.Client, count: int, headers: dict[str, str] | None = None) -> list[int]:
    return [
        client.post(CHAT, json=BODY, headers=headers or bearer()).status_code for _ in range(count)
    ]


# -- configuration --------------------------------------------------------------------------


def test_the_default_catalog_has_a_budgeted_model_and_a_refusal_status() -> None:
    models = {m.id: m for m in DEFAULT.models}
    assert models[MODEL].budget == 150
    assert models["gpt-4o-mini"].budget is None
    assert DEFAULT.model_budget_status == 429


def test_a_budget_is_read_and_written_back() -> None:
    cfg = MockConfig.from_mapping(
        {"models": [{"id": "m", "budget": 40}], "model_budget_status": 402}
    )
    assert cfg.models == (ModelConfig(id="m", budget=40),)
    assert cfg.model_budget_status == 402
    assert MockConfig.from_mapping(cfg.to_mapping()) == cfg


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"models": [{"id": "m", "budget": -1}]}, "models[0].budget: must be an integer >= 0"),
        ({"models": [{"id": "m", "budget": 1.5}]}, "models[0].budget: must be an integer >= 0"),
        ({"model_budget_status": 200}, "model_budget_status: must be an integer >= 400"),
        ({"model_budget_status": 600}, "model_budget_status: must be at most 599"),
    ],
)
def test_a_bad_budget_or_status_names_the_field(data: dict[str, Any], where: str) -> None:
    with pytest.raises(ConfigError) as info:
        MockConfig.from_mapping(data)
    assert where in str(info.value)


# -- the ledger on its own ------------------------------------------------------------------

LEDGER_CONFIG = MockConfig(
    accounts=(AccountConfig("a", 10_000),),
    keys=(KeyConfig("k", "sk-k", "a"), KeyConfig("small", "sk-small", "a", quota=5)),
    models=(ModelConfig(id="m", budget=100),),
)


def test_settling_spends_the_cost_and_a_rollback_spends_nothing() -> None:
    ledger = Ledger(LEDGER_CONFIG)
    key = ledger.keys["k"]
    first = ledger.reserve("r1", key, 60, model="m")
    assert ledger.budgets["m"].held == 60
    with pytest.raises(ModelBudgetExceeded) as info:
        ledger.reserve("r2", key, 41, model="m")  # 40 left while the first is in flight
    assert (info.value.available, info.value.needed, info.value.budget) == (40, 41, 100)
    ledger.settle(first, 30, detail={})
    assert (ledger.budgets["m"].spent, ledger.budgets["m"].held) == (30, 0)
    failed = ledger.reserve("r3", key, 70, model="m")  # exactly what is left
    ledger.rollback(failed, reason="error")
    assert (ledger.budgets["m"].spent, ledger.budgets["m"].held) == (30, 0)
    assert ledger.snapshot()["model_budgets"] == {
        "m": {"budget": 100, "spent": 30, "open": 0, "remaining": 70}
    }
    # The refusal took nothing from the key or the account either.
    assert ledger.balances["a"] == 10_000 - 30


def test_a_spent_budget_refuses_even_a_call_that_costs_nothing() -> None:
    ledger = Ledger(LEDGER_CONFIG)
    ledger.settle(ledger.reserve("r1", ledger.keys["k"], 100, model="m"), 100, detail={})
    with pytest.raises(ModelBudgetExceeded):
        ledger.reserve("r2", ledger.keys["k"], 0, model="m")
    # Other models and calls that name no model are not affected.
    ledger.reserve("r3", ledger.keys["k"], 50, model="other")
    ledger.reserve("r4", ledger.keys["k"], 50)


def test_the_budget_is_looked_at_before_the_key_quota() -> None:
    ledger = Ledger(LEDGER_CONFIG)
    ledger.settle(ledger.reserve("r1", ledger.keys["k"], 100, model="m"), 100, detail={})
    with pytest.raises(ModelBudgetExceeded):
        ledger.reserve("r2", ledger.keys["small"], 20, model="m")  # the key could not pay either


def test_a_reservation_made_before_a_reset_does_not_touch_the_new_budget() -> None:
    ledger = Ledger(LEDGER_CONFIG)
    old = ledger.reserve("r1", ledger.keys["k"], 80, model="m")
    ledger.reset(LEDGER_CONFIG)
    ledger.settle(old, 80, detail={})
    assert (ledger.budgets["m"].spent, ledger.budgets["m"].held) == (0, 0)


# -- over HTTP ------------------------------------------------------------------------------


def test_calls_are_admitted_while_their_estimate_fits_then_refused(client: httpx.Client) -> None:
    assert statuses(client, 6) == [200, 200, 200, 429, 429, 429]
    spent = budget_state(client)
    assert spent["spent"] <= spent["budget"]  # strict: never past the budget
    assert spent["remaining"] < ESTIMATE
    assert spent["open"] == 0
    refused = client.post(CHAT, json=BODY, headers=bearer())
    assert refused.headers["content-type"].startswith("application/json")
    error = refused.json()["error"]
    assert error["code"] == error["type"] == "model_budget_exceeded"
    assert error["param"] is None
    assert f"Budget exceeded for model '{MODEL}'" in error["message"]
    assert f"{ESTIMATE} needed" in error["message"]
    assert refused.headers["x-request-id"] in error["message"]
    # Other models are not affected.
    other = client.post(CHAT, json=BODY | {"model": "gpt-4o-mini"}, headers=bearer())
    assert other.status_code == 200


def test_the_budget_is_shared_by_every_key(client: httpx.Client) -> None:
    assert statuses(client, 3) == [200, 200, 200]
    assert statuses(client, 1, bearer("valid2")) == [429]
    assert statuses(client, 1, bearer("variant_pro")) == [429]


def test_a_refused_call_is_refused_before_the_upstream_is_called(client: httpx.Client) -> None:
    statuses(client, 4)
    spent = budget_state(client)
    # An upstream reached would answer 503 (error-503) or hang (hang): the refusal comes first.
    for directive in ("error-503", "hang"):
        body = BODY | {"model": f"{MODEL}--{directive}"}
        assert client.post(CHAT, json=body, headers=bearer()).status_code == 429
    assert budget_state(client) == spent
    ledger = client.get("/_gateprobe/ledger", headers=ADMIN).json()["entries"]
    assert len(ledger) == 3  # the admitted calls; a refusal reserves nothing


def test_a_failed_call_spends_no_budget(client: httpx.Client) -> None:
    failing = BODY | {"model": f"{MODEL}--error-503"}
    for _ in range(5):
        assert client.post(CHAT, json=failing, headers=bearer()).status_code == 503
    assert budget_state(client) == {"budget": 150, "spent": 0, "open": 0, "remaining": 150}
    assert statuses(client, 1) == [200]


def test_the_refusal_comes_in_each_routes_envelope(client: httpx.Client) -> None:
    statuses(client, 4)
    claude_body = {"model": MODEL, "max_tokens": 64, "messages": PROMPT}
    answer = client.post("/v1/messages", json=claude_body, headers=claude())
    assert answer.status_code == 429
    body = answer.json()
    assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
    assert body["request_id"] == answer.headers["request-id"]
    gemini_body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    answer = client.post(
        f"/v1beta/models/{MODEL}:generateContent", json=gemini_body, headers=goog()
    )
    assert answer.status_code == 429
    error = answer.json()["error"]
    assert (error["code"], error["status"]) == (429, "RESOURCE_EXHAUSTED")
    assert error["details"][0]["reason"] == "MODEL_BUDGET_EXCEEDED"


def test_the_refusal_status_comes_from_the_config(mock_factory: Callable[..., MockServer]) -> None:
    server = mock_factory(model_budget_status=403)
    with httpx.Client(base_url=server.url, timeout=10.0) as c:
        assert statuses(c, 4)[-1] == 403


def test_a_streamed_call_is_refused_with_json_too(client: httpx.Client) -> None:
    statuses(client, 4)
    answer = client.post(CHAT, json=BODY | {"stream": True}, headers=bearer())
    assert answer.status_code == 429
    assert answer.json()["error"]["code"] == "model_budget_exceeded"


def test_a_burst_never_spends_past_the_budget(client: httpx.Client) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: statuses(client, 1)[0], range(8)))
    assert set(answers) == {200, 429}
    assert budget_state(client)["spent"] <= 150
    assert budget_state(client)["open"] == 0


def test_the_admin_reset_restores_the_budget(client: httpx.Client) -> None:
    assert statuses(client, 4)[-1] == 429
    assert client.post("/_gateprobe/reset", headers=ADMIN).status_code == 200
    assert budget_state(client) == {"budget": 150, "spent": 0, "open": 0, "remaining": 150}
    assert statuses(client, 4) == [200, 200, 200, 429]


def test_a_reset_with_a_new_config_takes_its_budgets(client: httpx.Client) -> None:
    config = DEFAULT.to_mapping()
    for model in config["models"]:
        if model["id"] == MODEL:
            model["budget"] = 0
    answer = client.post("/_gateprobe/reset", json={"config": config}, headers=ADMIN)
    assert answer.status_code == 200
    assert statuses(client, 1) == [429]
