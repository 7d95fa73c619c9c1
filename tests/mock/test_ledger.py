"""The quota ledger on its own (no server): reserve, settle, roll back, defects, threads."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any

import pytest

from gateprobe.mock.config import AccountConfig, KeyConfig, MockConfig
from gateprobe.mock.ledger import InsufficientQuota, Ledger

CONFIG = MockConfig(
    accounts=(AccountConfig("rich", 1000), AccountConfig("thin", 100)),
    keys=(
        KeyConfig("capped", "sk-capped", "rich", quota=500),
        KeyConfig("open", "sk-open", "rich"),
        KeyConfig("thin", "sk-thin", "thin"),
        KeyConfig("thin_capped", "sk-thin-capped", "thin", quota=60),
    ),
)
DETAIL = {"model": "m", "channel": "c"}


@pytest.fixture
def ledger() -> Ledger:
    return Ledger(CONFIG)


def balances(ledger: Ledger) -> tuple[dict[str, int], dict[str, int | None], dict[str, int]]:
    snap = ledger.snapshot()
    keys = snap["keys"]
    return (
        snap["accounts"],
        {name: k["remaining"] for name, k in keys.items()},
        {name: k["used"] for name, k in keys.items()},
    )


def test_initial_state(ledger: Ledger) -> None:
    snap = ledger.snapshot()
    assert snap["accounts"] == {"rich": 1000, "thin": 100}
    assert snap["keys"]["capped"]["remaining"] == 500
    assert snap["keys"]["open"]["remaining"] is None
    assert snap["open_reservations"] == 0
    assert snap["totals"] == {"settled": 0, "refunded": 0, "requests": 0}
    assert ledger.lookup("sk-capped") is ledger.keys["capped"]
    assert ledger.lookup("sk-nobody") is None


def test_reserve_deducts_key_quota_and_account_balance_together(ledger: Ledger) -> None:
    res = ledger.reserve("r1", ledger.keys["capped"], 200)
    assert (res.request_id, res.key, res.account, res.amount) == ("r1", "capped", "rich", 200)
    assert res.state == "reserved" and res.charged == 0
    assert ledger.balances["rich"] == 800
    assert ledger.keys["capped"].remaining == 300
    assert ledger.keys["capped"].used == 0  # used counts settled cost only
    assert ledger.snapshot()["open_reservations"] == 1
    # An unlimited key draws on the same account and keeps no remaining figure.
    ledger.reserve("r2", ledger.keys["open"], 50)
    assert ledger.balances["rich"] == 750
    assert ledger.keys["open"].remaining is None
    assert ledger.balances["thin"] == 100
    assert ledger.recent(0) == []  # nothing is recorded until the reservation ends


def test_key_quota_shortfall_names_scope_key_and_changes_nothing(ledger: Ledger) -> None:
    ledger.reserve("r1", ledger.keys["capped"], 450)
    before = balances(ledger)
    with pytest.raises(InsufficientQuota) as info:
        ledger.reserve("r2", ledger.keys["capped"], 51)
    assert info.value.scope == "key"
    assert (info.value.needed, info.value.available) == (51, 50)
    assert str(info.value) == "key"
    assert balances(ledger) == before
    assert set(ledger.open) == {"r1"}
    assert ledger.recent(0) == []
    # Exactly the rest still fits.
    ledger.reserve("r3", ledger.keys["capped"], 50)
    assert ledger.keys["capped"].remaining == 0


def test_account_shortfall_names_scope_account_and_changes_nothing(ledger: Ledger) -> None:
    before = balances(ledger)
    with pytest.raises(InsufficientQuota) as info:
        ledger.reserve("r1", ledger.keys["thin"], 101)
    assert info.value.scope == "account"
    assert (info.value.needed, info.value.available) == (101, 100)
    assert balances(ledger) == before
    assert ledger.open == {}
    ledger.reserve("r2", ledger.keys["thin"], 100)
    assert ledger.balances["thin"] == 0


def test_account_shortfall_on_a_capped_key_with_room(ledger: Ledger) -> None:
    ledger.reserve("r1", ledger.keys["thin"], 70)
    with pytest.raises(InsufficientQuota) as info:
        ledger.reserve("r2", ledger.keys["thin_capped"], 40)  # key has 60 left, account 30
    assert info.value.scope == "account"
    assert ledger.keys["thin_capped"].remaining == 60
    assert ledger.balances["thin"] == 30


def test_key_scope_is_checked_before_the_account(ledger: Ledger) -> None:
    with pytest.raises(InsufficientQuota) as info:
        ledger.reserve("r1", ledger.keys["thin_capped"], 1000)  # neither can cover it
    assert info.value.scope == "key"
    assert info.value.available == 60


def test_settle_refunds_the_difference(ledger: Ledger) -> None:
    res = ledger.reserve("r1", ledger.keys["capped"], 200)
    assert ledger.settle(res, 120, detail=DETAIL) == 120
    assert ledger.balances["rich"] == 880
    assert ledger.keys["capped"].remaining == 380
    assert ledger.keys["capped"].used == 120
    assert res.state == "settled" and res.charged == 120
    assert ledger.open == {}
    [entry] = ledger.recent(0)
    assert entry["request_id"] == "r1"
    assert (entry["key"], entry["account"]) == ("capped", "rich")
    assert (entry["reserved"], entry["charged"], entry["state"]) == (200, 120, "settled")
    assert entry["model"] == "m" and entry["channel"] == "c"
    totals = ledger.snapshot()["totals"]
    assert totals == {"settled": 120, "refunded": 0, "requests": 1}


def test_settle_is_idempotent(ledger: Ledger) -> None:
    res = ledger.reserve("r1", ledger.keys["capped"], 200)
    ledger.settle(res, 120, detail=DETAIL)
    after = balances(ledger)
    assert ledger.settle(res, 120, detail=DETAIL) == 120
    assert ledger.settle(res, 10, detail=DETAIL) == 120
    assert balances(ledger) == after
    assert len(ledger.recent(0)) == 1
    assert ledger.snapshot()["totals"]["requests"] == 1


@pytest.mark.parametrize(("cost", "charged"), [(0, 0), (-5, 0), (200, 200), (999, 200)])
def test_settle_clamps_cost_to_the_reservation(ledger: Ledger, cost: int, charged: int) -> None:
    res = ledger.reserve("r1", ledger.keys["capped"], 200)
    assert ledger.settle(res, cost, detail=DETAIL) == charged
    assert ledger.balances["rich"] == 1000 - charged
    assert ledger.keys["capped"].remaining == 500 - charged
    assert ledger.recent(0)[0]["charged"] == charged


def test_rollback_restores_exactly_and_is_idempotent(ledger: Ledger) -> None:
    before = balances(ledger)
    res = ledger.reserve("r1", ledger.keys["capped"], 333)
    ledger.rollback(res, reason="error")
    assert balances(ledger) == before
    assert res.state == "rolled_back" and res.charged == 0
    assert ledger.open == {}
    ledger.rollback(res, reason="again")
    assert balances(ledger) == before
    [entry] = ledger.recent(0)
    assert (entry["state"], entry["charged"], entry["reserved"]) == ("rolled_back", 0, 333)
    assert entry["reason"] == "error"
    assert ledger.snapshot()["totals"] == {"settled": 0, "refunded": 333, "requests": 1}


def test_settle_after_rollback_does_nothing(ledger: Ledger) -> None:
    before = balances(ledger)
    res = ledger.reserve("r1", ledger.keys["capped"], 200)
    ledger.rollback(res, reason="error")
    assert ledger.settle(res, 150, detail=DETAIL) == 0
    assert balances(ledger) == before
    assert res.state == "rolled_back"
    assert [e["state"] for e in ledger.recent(0)] == ["rolled_back"]


def test_rollback_after_settle_does_nothing(ledger: Ledger) -> None:
    res = ledger.reserve("r1", ledger.keys["capped"], 200)
    ledger.settle(res, 150, detail=DETAIL)
    after = balances(ledger)
    ledger.rollback(res, reason="late")
    assert balances(ledger) == after
    assert res.state == "settled" and res.charged == 150
    assert [e["state"] for e in ledger.recent(0)] == ["settled"]


def test_interleaved_reservations_are_independent(ledger: Ledger) -> None:
    capped = ledger.keys["capped"]
    a = ledger.reserve("a", capped, 100)
    b = ledger.reserve("b", capped, 100)
    c = ledger.reserve("c", ledger.keys["open"], 300)
    assert ledger.balances["rich"] == 500 and capped.remaining == 300
    ledger.settle(b, 40, detail=DETAIL)
    ledger.rollback(a, reason="error")
    ledger.settle(c, 300, detail=DETAIL)
    assert ledger.balances["rich"] == 1000 - 40 - 300
    assert capped.remaining == 460
    assert capped.used == 40 and ledger.keys["open"].used == 300
    assert [e["request_id"] for e in ledger.recent(0)] == ["b", "a", "c"]
    assert [e["request_id"] for e in ledger.recent(2)] == ["a", "c"]


# -- defects --------------------------------------------------------------------------------


def test_no_rollback_defect_keeps_the_reservation(ledger: Ledger) -> None:
    ledger.config = CONFIG.replace(defects=frozenset({"no-rollback"}))
    res = ledger.reserve("r1", ledger.keys["capped"], 200)
    ledger.rollback(res, reason="error")
    # The call failed and is recorded as charged 0, yet the money stays gone: the bug a
    # billing check must catch.
    assert ledger.balances["rich"] == 800
    assert ledger.keys["capped"].remaining == 300
    assert ledger.recent(0)[0]["charged"] == 0
    assert ledger.snapshot()["totals"] == {"settled": 0, "refunded": 0, "requests": 1}
    assert ledger.open == {}
    # Settling is unaffected.
    ok = ledger.reserve("r2", ledger.keys["capped"], 100)
    ledger.settle(ok, 30, detail=DETAIL)
    assert ledger.balances["rich"] == 800 - 30


def test_double_charge_defect_charges_twice_the_cost(ledger: Ledger) -> None:
    ledger.config = CONFIG.replace(defects=frozenset({"double-charge"}))
    res = ledger.reserve("r1", ledger.keys["capped"], 200)
    assert ledger.settle(res, 60, detail=DETAIL) == 60
    assert ledger.balances["rich"] == 1000 - 2 * 60
    assert ledger.keys["capped"].remaining == 500 - 2 * 60
    assert ledger.keys["capped"].used == 2 * 60
    # The record claims the real cost, so balance drop and ledger disagree.
    assert ledger.recent(0)[0]["charged"] == 60
    assert ledger.snapshot()["totals"]["settled"] == 60
    # Rollbacks are unaffected.
    failed = ledger.reserve("r2", ledger.keys["capped"], 100)
    ledger.rollback(failed, reason="error")
    assert ledger.balances["rich"] == 1000 - 2 * 60


def test_defects_follow_the_live_config(ledger: Ledger) -> None:
    res = ledger.reserve("r1", ledger.keys["capped"], 200)
    ledger.config = CONFIG.replace(defects=frozenset({"no-rollback"}))
    ledger.config = CONFIG  # switched off again before the rollback
    ledger.rollback(res, reason="error")
    assert ledger.balances["rich"] == 1000


# -- keys and accounts ----------------------------------------------------------------------


def test_put_key_creates_and_replaces(ledger: Ledger) -> None:
    res = ledger.reserve("r1", ledger.keys["capped"], 100)
    ledger.settle(res, 100, detail=DETAIL)
    state = ledger.put_key(KeyConfig("capped", "sk-capped-2", "rich", quota=70))
    assert state.remaining == 70  # quota restarts
    assert state.used == 100  # history is kept
    assert ledger.lookup("sk-capped") is None
    assert ledger.lookup("sk-capped-2") is state
    new = ledger.put_key(KeyConfig("fresh", "sk-fresh", "thin"))
    assert ledger.keys["fresh"] is new and new.used == 0


def test_put_key_refuses_unknown_account_and_secret_clash(ledger: Ledger) -> None:
    with pytest.raises(KeyError):
        ledger.put_key(KeyConfig("x", "sk-x", "nobody"))
    with pytest.raises(ValueError):
        ledger.put_key(KeyConfig("x", "sk-open", "rich"))
    assert "x" not in ledger.keys
    assert ledger.lookup("sk-open") is ledger.keys["open"]


def test_set_balance_and_reset(ledger: Ledger) -> None:
    ledger.set_balance("thin", 5)
    with pytest.raises(InsufficientQuota):
        ledger.reserve("r1", ledger.keys["thin"], 6)
    res = ledger.reserve("r2", ledger.keys["capped"], 10)
    ledger.settle(res, 10, detail=DETAIL)
    ledger.reset(CONFIG)
    assert ledger.snapshot()["accounts"] == {"rich": 1000, "thin": 100}
    assert ledger.keys["capped"].remaining == 500 and ledger.keys["capped"].used == 0
    assert ledger.recent(0) == [] and ledger.open == {}


def test_ledger_size_bounds_the_record(ledger: Ledger) -> None:
    small = Ledger(CONFIG.replace(ledger_size=3))
    for i in range(5):
        small.settle(small.reserve(f"r{i}", small.keys["open"], 2), 1, detail=DETAIL)
    assert [e["request_id"] for e in small.recent(0)] == ["r2", "r3", "r4"]
    assert small.snapshot()["totals"]["requests"] == 5
    assert small.balances["rich"] == 995


# -- many threads ---------------------------------------------------------------------------


def _hammer(
    ledger: Ledger, worker: Callable[[int, random.Random], dict[str, Any]], threads: int
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = [{} for _ in range(threads)]
    start = threading.Barrier(threads)

    def run(i: int) -> None:
        start.wait()
        results[i] = worker(i, random.Random(i))

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in pool)
    return results


def test_concurrent_cycles_keep_balances_exact_and_never_negative() -> None:
    # Small balances so that reservations often fail: the race is on the last units.
    config = MockConfig(
        accounts=(AccountConfig("a", 5000), AccountConfig("b", 3000)),
        keys=(
            KeyConfig("ka", "sk-a", "a", quota=4000),
            KeyConfig("ka2", "sk-a2", "a"),
            KeyConfig("kb", "sk-b", "b", quota=2500),
        ),
    )
    ledger = Ledger(config)
    names = ["ka", "ka2", "kb"]
    stop = threading.Event()
    seen_negative: list[dict[str, Any]] = []

    def watch() -> None:
        while not stop.is_set():
            snap = ledger.snapshot()
            values = list(snap["accounts"].values()) + [
                k["remaining"] for k in snap["keys"].values() if k["remaining"] is not None
            ]
            if any(v < 0 for v in values):
                seen_negative.append(snap)

    def worker(i: int, rng: random.Random) -> dict[str, Any]:
        charged: dict[str, int] = dict.fromkeys(names, 0)
        counts = {"reserved": 0, "refused": 0, "settled": 0, "rolled_back": 0}
        for n in range(400):
            key = ledger.keys[names[rng.randrange(3)]]
            try:
                res = ledger.reserve(f"t{i}-{n}", key, rng.randint(1, 60))
            except InsufficientQuota:
                counts["refused"] += 1
                continue
            counts["reserved"] += 1
            if rng.random() < 0.6:
                cost = rng.randint(0, res.amount)
                got = ledger.settle(res, cost, detail={})
                assert got == cost
                # A duplicate settle or late rollback from another path changes nothing.
                assert ledger.settle(res, cost + 1, detail={}) == cost
                ledger.rollback(res, reason="late")
                charged[key.name] += cost
                counts["settled"] += 1
            else:
                ledger.rollback(res, reason="error")
                ledger.rollback(res, reason="error")
                assert ledger.settle(res, 5, detail={}) == 0
                counts["rolled_back"] += 1
        return {"charged": charged, "counts": counts}

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        results = _hammer(ledger, worker, threads=16)
    finally:
        stop.set()
        watcher.join(timeout=10)

    assert seen_negative == []
    charged = {name: sum(r["charged"][name] for r in results) for name in names}
    counts = {k: sum(r["counts"][k] for r in results) for k in results[0]["counts"]}
    assert counts["refused"] > 0  # the limits were really reached
    assert counts["reserved"] == counts["settled"] + counts["rolled_back"]
    snap = ledger.snapshot()
    assert snap["open_reservations"] == 0
    assert snap["accounts"]["a"] == 5000 - charged["ka"] - charged["ka2"]
    assert snap["accounts"]["b"] == 3000 - charged["kb"]
    assert snap["keys"]["ka"]["remaining"] == 4000 - charged["ka"]
    assert snap["keys"]["kb"]["remaining"] == 2500 - charged["kb"]
    assert {n: snap["keys"][n]["used"] for n in names} == charged
    assert all(v >= 0 for v in snap["accounts"].values())
    entries = ledger.recent(0)
    assert len(entries) == counts["reserved"] == snap["totals"]["requests"]
    assert len({e["request_id"] for e in entries}) == len(entries)
    assert sum(e["charged"] for e in entries) == sum(charged.values()) == snap["totals"]["settled"]
    assert sum(1 for e in entries if e["state"] == "rolled_back") == counts["rolled_back"]
    assert all(e["charged"] == 0 for e in entries if e["state"] == "rolled_back")


def test_concurrent_reservations_never_overdraw() -> None:
    # Everyone reserves at once and holds; the admitted total can never exceed the balance.
    config = MockConfig(
        accounts=(AccountConfig("a", 1000),),
        keys=(KeyConfig("k", "sk-k", "a", quota=700), KeyConfig("u", "sk-u", "a")),
    )
    ledger = Ledger(config)

    def worker(i: int, rng: random.Random) -> dict[str, Any]:
        key = ledger.keys["k" if i % 2 else "u"]
        held = []
        for n in range(50):
            try:
                held.append(ledger.reserve(f"h{i}-{n}", key, 7))
            except InsufficientQuota as exc:
                assert exc.available < 7
        return {"held": held}

    results = _hammer(ledger, worker, threads=12)
    held = [res for r in results for res in r["held"]]
    capped = sum(res.amount for res in held if res.key == "k")
    total = sum(res.amount for res in held)
    assert capped <= 700 and total <= 1000
    assert ledger.balances["a"] == 1000 - total
    assert ledger.keys["k"].remaining == 700 - capped
    assert ledger.balances["a"] < 7  # the account was drained to the last unit that fits
    for res in held:
        ledger.rollback(res, reason="done")
    assert ledger.balances["a"] == 1000 and ledger.keys["k"].remaining == 700
