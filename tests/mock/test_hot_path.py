"""The mock's lean hot path keeps its behaviour.

- the ledger keeps compact entries and exact per-account and per-key totals, so balances
  reconcile after old entries have rolled off;
- the request record keeps raw parts and masks them when read;
- identical requests share their parse and generation results (``ResultCache``), yet each is
  authenticated, limited, billed, logged and recorded, and sees the live defects and faults;
- ``Disconnect`` still ends a wait when the client goes.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from support import ADMIN, SECRETS, bearer

from gateprobe.mock import MockServer
from gateprobe.mock.asgi import Disconnect, Message
from gateprobe.mock.config import AccountConfig, KeyConfig, MockConfig
from gateprobe.mock.ledger import InsufficientQuota, Ledger
from gateprobe.mock.state import ResultCache
from gateprobe.mock.usage import UsageLog

CHAT = "/v1/chat/completions"
BODY: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "the same request, again and again"}],
}


def admin_get(client: httpx.Client, route: str, **params: Any) -> dict[str, Any]:
    response = client.get(f"/_gateprobe/{route}", headers=ADMIN, params=params)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def sse_data(raw: str) -> list[str]:
    return [line[6:] for line in raw.split("\n") if line.startswith("data: ")]


# -- the ledger ------------------------------------------------------------------------------


def test_totals_reconcile_after_the_entries_rolled_off() -> None:
    initial = {"a": 10_000, "b": 5_000}
    config = MockConfig(
        accounts=tuple(AccountConfig(name, balance) for name, balance in initial.items()),
        keys=(KeyConfig("ka", "sk-a", "a", quota=3_000), KeyConfig("kb", "sk-b", "b")),
        ledger_size=3,
    )
    ledger = Ledger(config)
    plain, double, kept = (
        config,
        config.replace(defects=frozenset({"double-charge"})),
        config.replace(defects=frozenset({"no-rollback"})),
    )
    charged = {"a": 0, "b": 0}
    debited = {"a": 0, "b": 0}
    refunded = {"a": 0, "b": 0}
    for n in range(12):
        key = ledger.keys["ka" if n % 2 else "kb"]
        account = key.config.account
        ledger.config = (plain, double, kept)[n % 3]
        reservation = ledger.reserve(f"r{n}", key, 100 + n)
        if n % 4 == 3:
            ledger.rollback(reservation, reason="error")
            if ledger.config is kept:
                debited[account] += 100 + n
            else:
                refunded[account] += 100 + n
        else:
            cost = 10 + n
            assert ledger.settle(reservation, cost, detail={"model": "m"}) == cost
            charged[account] += cost
            debited[account] += 2 * cost if ledger.config is double else cost
    ledger.config = plain
    in_flight = ledger.reserve("open", ledger.keys["ka"], 77)
    with pytest.raises(InsufficientQuota):
        ledger.reserve("refused", ledger.keys["kb"], 10**9)

    snap = ledger.snapshot()
    assert len(ledger.recent(0)) == 3  # only the last entries are kept ...
    rows = snap["account_totals"]
    for account, balance in initial.items():  # ... yet every balance reconciles
        row = rows[account]
        assert balance - snap["accounts"][account] == row["debited"] + row["open"]
        assert (row["charged"], row["debited"], row["refunded"]) == (
            charged[account],
            debited[account],
            refunded[account],
        )
        assert row["requests"] == row["settled"] + row["rolled_back"] == 6
    assert rows["a"]["open"] == in_flight.amount and rows["b"]["open"] == 0
    ka = snap["key_totals"]["ka"]
    assert 3_000 - snap["keys"]["ka"]["remaining"] == ka["debited"] + ka["open"]
    assert snap["keys"]["ka"]["used"] == ka["debited"] - sum(
        100 + n for n in range(12) if n % 2 and n % 4 == 3 and n % 3 == 2
    )  # a kept rollback is debited but never counted as used
    assert snap["totals"] == {
        "settled": sum(charged.values()),
        "refunded": sum(refunded.values()),
        "requests": 12,
    }
    ledger.reset(config)
    zero = {k: 0 for k in ka}
    assert ledger.snapshot()["account_totals"] == {"a": zero, "b": zero}
    assert ledger.snapshot()["key_totals"] == {"ka": zero, "kb": zero}


def test_entries_read_back_as_the_same_dictionaries() -> None:
    config = MockConfig(accounts=(AccountConfig("a", 1_000),), keys=(KeyConfig("k", "sk", "a"),))
    ledger = Ledger(config)
    detail = {"model": "m", "channel": "c", "prompt_tokens": 3, "completion_tokens": 4}
    ledger.settle(ledger.reserve("one", ledger.keys["k"], 50), 20, detail=detail)
    ledger.rollback(ledger.reserve("two", ledger.keys["k"], 30), reason="error")
    ledger.settle(ledger.reserve("three", ledger.keys["k"], 5), 5, detail={"state": "odd"})
    one, two, three = ledger.recent(0)
    assert list(one) == [
        "request_id",
        "key",
        "account",
        "reserved",
        "charged",
        "state",
        "time",
        "model",
        "channel",
        "prompt_tokens",
        "completion_tokens",
    ]
    assert (one["request_id"], one["reserved"], one["charged"], one["state"]) == (
        "one",
        50,
        20,
        "settled",
    )
    assert one["model"] == "m" and one["completion_tokens"] == 4
    assert isinstance(one["time"], float) and one["time"] <= time.time()
    assert (two["state"], two["charged"], two["reason"]) == ("rolled_back", 0, "error")
    assert three["state"] == "odd"  # a detail overrides a field, as ``{**entry, **detail}`` did
    assert ledger.recent(2) == [two, three]
    one["model"] = "changed"  # what a reader gets is its own copy
    assert ledger.recent(0)[0]["model"] == "m"


def test_default_ledger_size_matches_the_usage_log() -> None:
    default = MockConfig.default()
    assert default.ledger_size == default.usage_log_size == 10_000
    assert MockConfig().ledger_size == 10_000


# -- the usage log and the request record ----------------------------------------------------


def test_usage_log_bounds_the_records_and_keeps_exact_days() -> None:
    usage = UsageLog(3)
    stamp = 86_400 * 20_000 + 10.0
    records = [
        {"status": 200 if n % 2 else 429, "cost": n, "latency_ms": 0.5, "time": stamp}
        for n in range(5)
    ]
    for record in records:
        usage.add(record)
    assert usage.recent(0) == records[2:]
    assert usage.recent(1) == records[4:]
    [(day, row)] = usage.daily().items()
    assert day == time.strftime("%Y-%m-%d", time.gmtime(stamp))
    assert row == {
        "requests": 5,
        "errors": 3,
        "quota": 10,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "latency_ms_total": 2.5,
        "latency_ms_mean": 0.5,
    }


def test_request_record_is_masked_when_read(client: httpx.Client) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "record me"}]}]}
    secret = SECRETS["valid"]
    path = "/v1beta/models/gemini-2.5-flash:generateContent"
    answer = client.post(path, params={"key": secret, "alt": "json"}, json=body)
    assert answer.status_code == 200, answer.text
    client.post(CHAT, json=BODY, headers={**bearer(), "X-Custom": "kept"})
    first, second = admin_get(client, "requests")["requests"]
    assert first["query"] == {"key": f"{secret[:3]}…{secret[-4:]}", "alt": "json"}
    assert first["body"] == body and first["method"] == "POST" and first["path"] == path
    assert second["headers"]["authorization"] == f"Bearer {secret[:3]}…{secret[-4:]}"
    assert second["headers"]["x-custom"] == "kept"
    assert second["query"] == {} and second["body"] == BODY
    assert secret not in json.dumps(admin_get(client, "requests"))
    assert admin_get(client, "requests", limit=1)["requests"] == [second]


# -- identical requests share parse and generation results -----------------------------------


def test_identical_requests_are_each_billed_logged_and_recorded(client: httpx.Client) -> None:
    before = admin_get(client, "state")
    answers = [client.post(CHAT, json=BODY, headers=bearer()) for _ in range(4)]
    assert all(a.status_code == 200 for a in answers)
    contents = {a.json()["choices"][0]["message"]["content"] for a in answers}
    assert len(contents) == 1  # deterministic ...
    ids = [a.headers["x-request-id"] for a in answers]
    assert len(set(ids)) == 4  # ... yet four calls
    entries = admin_get(client, "ledger")["entries"]
    assert [e["request_id"] for e in entries] == ids
    assert [r["request_id"] for r in admin_get(client, "usage")["records"]] == ids
    assert [r["request_id"] for r in admin_get(client, "requests")["requests"]] == ids
    after = admin_get(client, "state")
    spent = before["accounts"]["main"] - after["accounts"]["main"]
    assert spent == sum(e["charged"] for e in entries) == 4 * entries[0]["charged"] > 0
    assert after["account_totals"]["main"]["settled"] == 4


def test_a_shared_body_is_still_authenticated_and_checked_per_key(client: httpx.Client) -> None:
    assert client.post(CHAT, json=BODY, headers=bearer()).status_code == 200
    assert client.post(CHAT, json=BODY, headers=bearer("disabled")).status_code == 401
    pro = BODY | {"model": "gpt-4o-pro"}
    assert client.post(CHAT, json=pro, headers=bearer("variant_pro")).status_code == 200
    assert client.post(CHAT, json=pro, headers=bearer()).status_code == 404  # other variant
    assert client.post(CHAT, json=pro, headers=bearer("restricted")).status_code == 404
    limited = [client.post(CHAT, json=BODY, headers=bearer("limited_rate")) for _ in range(4)]
    assert [a.status_code for a in limited] == [200, 200, 200, 429]


def test_header_directives_and_faults_apply_to_a_shared_body(client: httpx.Client) -> None:
    def tokens(headers: dict[str, str]) -> int:
        answer = client.post(CHAT, json=BODY, headers={**bearer(), **headers})
        assert answer.status_code == 200, answer.text
        count: int = answer.json()["usage"]["completion_tokens"]
        return count

    usual = tokens({})
    assert tokens({"x-gateprobe-directives": "chunks-5"}) == 5
    assert tokens({"x-gateprobe-directives": "chunks-7"}) == 7
    assert tokens({}) == usual
    client.post("/_gateprobe/faults", json={"directives": "error-503"}, headers=ADMIN)
    assert client.post(CHAT, json=BODY, headers=bearer()).status_code == 503
    assert tokens({}) == usual


def test_defects_switched_at_run_time_apply_to_a_shared_body(client: httpx.Client) -> None:
    body = BODY | {"stream": True}

    def stream() -> list[str]:
        answer = client.post(CHAT, json=body, headers=bearer())
        assert answer.status_code == 200
        return sse_data(answer.text)

    assert stream()[-1] == "[DONE]"
    assert stream()[-1] == "[DONE]"
    put = client.put("/_gateprobe/defects", json={"defects": ["missing-done"]}, headers=ADMIN)
    assert put.status_code == 200
    assert stream()[-1] != "[DONE]"
    client.put("/_gateprobe/defects", json={"defects": []}, headers=ADMIN)
    assert stream()[-1] == "[DONE]"


def test_created_is_per_call_and_model_name_per_body(client: httpx.Client) -> None:
    first = client.post(CHAT, json=BODY, headers=bearer()).json()
    time.sleep(1.05)
    second = client.post(CHAT, json=BODY, headers=bearer()).json()
    assert second["created"] > first["created"]
    assert first["choices"] == second["choices"] and first["id"] == second["id"]
    named = client.post(CHAT, json=BODY | {"model": "gpt-4o-mini--ttft-0"}, headers=bearer())
    assert named.json()["model"] == "gpt-4o-mini--ttft-0"
    assert named.json()["choices"] == first["choices"]  # directives never change the text


def test_reasoning_follows_the_model_on_repeats(client: httpx.Client) -> None:
    def reasoning(model: str) -> int:
        body = BODY | {"model": model, "reasoning_effort": "high"}
        answer = client.post(CHAT, json=body, headers=bearer())
        assert answer.status_code == 200, answer.text
        count: int = answer.json()["usage"]["completion_tokens_details"]["reasoning_tokens"]
        return count

    assert [reasoning("o3-mini") for _ in range(2)] == [16, 16]
    assert [reasoning("gpt-4o-mini") for _ in range(2)] == [0, 0]
    assert reasoning("o3-mini") == 16


def test_responses_stream_failure_keeps_its_id_on_repeats(client: httpx.Client) -> None:
    body = {"model": "gpt-4o-mini--fail-after-2--chunks-6", "input": "again", "stream": True}
    for _ in range(2):
        answer = client.post("/v1/responses", json=body, headers=bearer())
        events = [json.loads(d) for d in sse_data(answer.text)]
        assert events[-1]["type"] == "response.failed"
        assert events[-1]["response"]["id"] == events[0]["response"]["id"]


def test_image_urls_name_the_host_of_each_request(client: httpx.Client) -> None:
    body = {"prompt": "a lighthouse", "response_format": "url"}
    urls = []
    for host in ("one.test", "two.test"):
        answer = client.post(
            "/v1/images/generations", json=body, headers={**bearer(), "Host": host}
        )
        assert answer.status_code == 200, answer.text
        urls.append(answer.json()["data"][0]["url"])
    assert urls[0].startswith("http://one.test/") and urls[1].startswith("http://two.test/")


def test_reset_with_another_config_is_not_served_stale_results(
    mock_factory: Callable[..., MockServer],
) -> None:
    mock = mock_factory()
    with httpx.Client(base_url=mock.url, timeout=10.0) as client:
        first = client.post(CHAT, json=BODY, headers=bearer()).json()
        config = mock.state.config.to_mapping() | {"seed": 7}
        reset = client.post("/_gateprobe/reset", json={"config": config}, headers=ADMIN)
        assert reset.status_code == 200
        again = client.post(CHAT, json=BODY, headers=bearer()).json()
    assert again["id"] != first["id"]  # another seed, another completion


def test_result_cache_is_bounded_in_entries_and_bytes() -> None:
    cache = ResultCache(entries=3, key_bytes=800)
    for n in range(5):
        cache.put(n, f"v{n}", 10)
    assert len(cache) == 3 and cache.get(0) is None and cache.get(2) == "v2"
    cache.put(5, "v5", 10)  # 2 was used last: 3 goes
    assert cache.get(3) is None and cache.get(2) == "v2"
    cache.put("big", "too big", 101)  # more than an eighth of the byte budget
    assert cache.get("big") is None
    by_bytes = ResultCache(entries=100, key_bytes=800)
    for n in range(10):
        by_bytes.put(n, n, 100)
    assert len(by_bytes) == 8 and by_bytes.size == 800 and by_bytes.get(1) is None
    assert by_bytes.get(2) == 2 and by_bytes.get(9) == 9
    nothing = ResultCache(entries=0)
    nothing.put("x", 1, 1)
    assert nothing.get("x") is None


# -- disconnects -----------------------------------------------------------------------------


def test_disconnect_ends_a_wait_and_a_broken_receive_does_not() -> None:
    async def scenario() -> tuple[bool, float, bool, float, bool, bool]:
        async def leaves() -> Message:
            await asyncio.sleep(0.05)
            return {"type": "http.disconnect"}

        async def breaks() -> Message:
            raise RuntimeError("receive failed")

        loop = asyncio.get_running_loop()
        watch = Disconnect(leaves)
        before = await watch.sleep(0)  # nothing to wait for: answers at once
        started = loop.time()
        gone = await watch.sleep(5.0)
        waited = loop.time() - started
        watch.close()
        broken = Disconnect(breaks)
        started = loop.time()
        broken_gone = await broken.sleep(0.2)
        broken_waited = loop.time() - started
        broken.close()
        return before, waited, gone, broken_waited, broken_gone, watch.gone

    before, waited, gone, broken_waited, broken_gone, after = asyncio.run(scenario())
    assert before is False and gone is True and after is True
    assert waited < 2.0
    assert broken_gone is False and broken_waited >= 0.15
