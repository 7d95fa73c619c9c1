"""Accounts, keys and the quota ledger: pre-deduct, settle, roll back.

Every mutation takes one lock and holds it for a few dictionary operations, so a
reservation against a key's quota and its account's balance is atomic even when the admin
API and the request path run on different threads. A reservation is the largest cost the
call could have; settling can therefore only refund, and no balance ever goes below zero.

The record of finished reservations is bounded (``ledger_size``) and kept compactly: one
tuple per entry, turned into a dictionary only when read (``recent``). Running totals per
account and per key (``snapshot``) stay exact however many entries have rolled off, so
balances can always be reconciled: for an account whose balance was not set by hand,
``initial balance - balance == debited + open`` (its ``account_totals`` row).

A model may have a budget of its own (``ModelConfig.budget``), shared by every key. It is
reserved from like a key's quota, under the same lock and before the key and account are
looked at: a call whose estimate the budget's remainder cannot cover is refused, so the spend
never passes the budget (LiteLLM admits while the spend is below it and may overshoot by one
call). Settling spends the call's cost; a rollback spends nothing.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from gateprobe.mock.config import KeyConfig, MockConfig

__all__ = [
    "InsufficientQuota",
    "KeyState",
    "Ledger",
    "ModelBudget",
    "ModelBudgetExceeded",
    "Reservation",
]

ReservationState = Literal["reserved", "settled", "rolled_back"]


class InsufficientQuota(Exception):
    """The key's own quota, or its account's balance, cannot cover the reservation."""

    def __init__(self, scope: Literal["key", "account"], needed: int, available: int) -> None:
        super().__init__(scope)
        self.scope = scope
        self.needed = needed
        self.available = available


class ModelBudgetExceeded(Exception):
    """The model's budget, shared by every key, cannot cover the call's reservation."""

    def __init__(self, model: str, budget: int, available: int, needed: int) -> None:
        super().__init__(model)
        self.model = model
        self.budget = budget
        self.available = available
        self.needed = needed


@dataclass(slots=True)
class ModelBudget:
    model: str
    budget: int
    spent: int = 0  # the costs of settled calls
    held: int = 0  # reserved by calls in flight

    @property
    def available(self) -> int:
        return self.budget - self.spent - self.held


@dataclass
class KeyState:
    config: KeyConfig
    remaining: int | None  # None: unlimited
    used: int = 0

    @property
    def name(self) -> str:
        return self.config.name


@dataclass(slots=True)
class Reservation:
    request_id: str
    key: str
    account: str
    amount: int
    state: ReservationState = "reserved"
    charged: int = 0
    # The budget of the call's model and what the call holds of it. The object, not the model
    # name: a reservation made before a reset must not settle against the fresh budget.
    budget: ModelBudget | None = None
    budget_hold: int = 0


@dataclass
class _Totals:
    settled: int = 0
    refunded: int = 0
    requests: int = 0


class _Tally:
    """Exact running totals of the finished reservations of one account or one key."""

    __slots__ = ("charged", "debited", "refunded", "requests", "rolled_back", "settled")

    def __init__(self) -> None:
        self.requests = 0  # finished reservations: settled + rolled_back
        self.settled = 0
        self.rolled_back = 0
        self.charged = 0  # cost confirmed by settling (what the entries' "charged" add up to)
        self.refunded = 0  # returned in full by rollbacks
        self.debited = 0  # what finished reservations took from the balance for good

    def row(self, open_amount: int) -> dict[str, int]:
        return {
            "requests": self.requests,
            "settled": self.settled,
            "rolled_back": self.rolled_back,
            "charged": self.charged,
            "refunded": self.refunded,
            "debited": self.debited,
            "open": open_amount,  # still reserved by calls in flight
        }


# An entry: request_id, key, account, reserved, charged, state, time, detail keys, *values.
_Entry = tuple[Any, ...]
_ENTRY_FIELDS = ("request_id", "key", "account", "reserved", "charged", "state", "time")
_DETAIL_AT = len(_ENTRY_FIELDS)
_MAX_SHAPES = 64  # distinct detail key sets shared between entries


def _entry_dict(entry: _Entry) -> dict[str, Any]:
    out = dict(zip(_ENTRY_FIELDS, entry, strict=False))
    keys = entry[_DETAIL_AT]
    if keys:
        out.update(zip(keys, entry[_DETAIL_AT + 1 :], strict=True))
    return out


@dataclass
class Ledger:
    """Balances and the append-only record of what each request was charged."""

    config: MockConfig
    balances: dict[str, int] = field(default_factory=dict)
    keys: dict[str, KeyState] = field(default_factory=dict)
    by_secret: dict[str, KeyState] = field(default_factory=dict)
    entries: deque[_Entry] = field(default_factory=deque)
    open: dict[str, Reservation] = field(default_factory=dict)
    totals: _Totals = field(default_factory=_Totals)
    account_totals: dict[str, _Tally] = field(default_factory=dict)
    key_totals: dict[str, _Tally] = field(default_factory=dict)
    budgets: dict[str, ModelBudget] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._shapes: dict[tuple[str, ...], tuple[str, ...]] = {}
        self.reset(self.config)

    # -- setup ---------------------------------------------------------------------------

    def reset(self, config: MockConfig) -> None:
        with self._lock:
            self.config = config
            self.balances = {a.name: a.balance for a in config.accounts}
            self.keys = {k.name: KeyState(k, k.quota) for k in config.keys}
            self.by_secret = {k.config.secret: k for k in self.keys.values()}
            self.entries = deque(maxlen=config.ledger_size)
            self.open = {}
            self.totals = _Totals()
            self.account_totals = {}
            self.key_totals = {}
            self.budgets = {
                m.id: ModelBudget(m.id, m.budget) for m in config.models if m.budget is not None
            }

    def put_key(self, key: KeyConfig) -> KeyState:
        """Create or replace a key; its remaining quota restarts from ``key.quota``."""
        with self._lock:
            if key.account not in self.balances:
                raise KeyError(f"no account named {key.account!r}")
            old = self.keys.get(key.name)
            if old is not None:
                self.by_secret.pop(old.config.secret, None)
            clash = self.by_secret.get(key.secret)
            if clash is not None and clash.name != key.name:
                raise ValueError(f"secret already used by key {clash.name!r}")
            state = KeyState(key, key.quota, used=old.used if old else 0)
            self.keys[key.name] = state
            self.by_secret[key.secret] = state
            return state

    def set_balance(self, account: str, balance: int) -> None:
        with self._lock:
            self.balances[account] = balance

    def lookup(self, secret: str) -> KeyState | None:
        return self.by_secret.get(secret)

    # -- the reservation cycle -----------------------------------------------------------

    def reserve(
        self, request_id: str, key: KeyState, amount: int, *, model: str | None = None
    ) -> Reservation:
        """Hold ``amount`` of the key's quota, its account's balance and ``model``'s budget."""
        account = key.config.account
        with self._lock:
            budget = self.budgets.get(model) if model is not None else None
            if budget is not None and "model-budget-ignored" not in self.config.defects:
                available = budget.available
                # a spent budget refuses even a call that would cost nothing
                if available <= 0 or available < amount:
                    raise ModelBudgetExceeded(budget.model, budget.budget, available, amount)
            hold = amount if budget is not None else 0
            if "overdraft" in self.config.defects:
                # The defect: admit whatever has anything left and reserve nothing; the cost
                # is taken when the call settles, with no floor (new-api's trusted path).
                needed, amount = amount, 0
                if key.remaining is not None and key.remaining <= 0:
                    raise InsufficientQuota("key", needed, key.remaining)
                if self.balances[account] <= 0:
                    raise InsufficientQuota("account", needed, self.balances[account])
            if key.remaining is not None and key.remaining < amount:
                raise InsufficientQuota("key", amount, key.remaining)
            balance = self.balances[account]
            if balance < amount:
                raise InsufficientQuota("account", amount, balance)
            if key.remaining is not None:
                key.remaining -= amount
            self.balances[account] = balance - amount
            if budget is not None:
                budget.held += hold
            reservation = Reservation(
                request_id, key.name, account, amount, budget=budget, budget_hold=hold
            )
            self.open[request_id] = reservation
            return reservation

    def settle(self, reservation: Reservation, cost: int, *, detail: Mapping[str, Any]) -> int:
        """Confirm ``cost`` (at most the reserved amount) and refund the rest. Idempotent."""
        with self._lock:
            if reservation.state != "reserved":
                return reservation.charged
            if "overdraft" not in self.config.defects:
                cost = min(cost, reservation.amount)
            cost = max(0, cost)
            refund = reservation.amount - cost
            extra = cost if "double-charge" in self.config.defects else 0
            self._credit(reservation, refund - extra)
            key = self.keys.get(reservation.key)
            if key is not None:
                key.used += cost + extra
            budget = reservation.budget
            if budget is not None:
                budget.held -= reservation.budget_hold
                budget.spent += cost
            reservation.state = "settled"
            reservation.charged = cost
            self.open.pop(reservation.request_id, None)
            self.totals.settled += cost
            self.totals.requests += 1
            for tally in self._tallies(reservation):
                tally.requests += 1
                tally.settled += 1
                tally.charged += cost
                tally.debited += cost + extra
            self._record(reservation, "settled", cost, detail)
            return cost

    def rollback(self, reservation: Reservation, *, reason: str) -> None:
        """Return the whole reservation. Idempotent: a second rollback changes nothing."""
        with self._lock:
            if reservation.state != "reserved":
                return
            kept = "no-rollback" in self.config.defects
            if reservation.budget is not None:
                # a failed call spends no budget (no-rollback is about the key's quota only)
                reservation.budget.held -= reservation.budget_hold
            if not kept:
                self._credit(reservation, reservation.amount)
                self.totals.refunded += reservation.amount
            reservation.state = "rolled_back"
            self.open.pop(reservation.request_id, None)
            self.totals.requests += 1
            for tally in self._tallies(reservation):
                tally.requests += 1
                tally.rolled_back += 1
                if kept:
                    tally.debited += reservation.amount
                else:
                    tally.refunded += reservation.amount
            self._record(reservation, "rolled_back", 0, {"reason": reason})

    def _credit(self, reservation: Reservation, amount: int) -> None:
        self.balances[reservation.account] = self.balances.get(reservation.account, 0) + amount
        key = self.keys.get(reservation.key)
        if key is not None and key.remaining is not None:
            key.remaining += amount

    def _tallies(self, reservation: Reservation) -> tuple[_Tally, _Tally]:
        account = self.account_totals.get(reservation.account)
        if account is None:
            account = self.account_totals[reservation.account] = _Tally()
        key = self.key_totals.get(reservation.key)
        if key is None:
            key = self.key_totals[reservation.key] = _Tally()
        return account, key

    def _record(
        self, reservation: Reservation, state: str, charged: int, detail: Mapping[str, Any]
    ) -> None:
        keys = tuple(detail)
        shared = self._shapes.get(keys)
        if shared is not None:
            keys = shared
        elif len(self._shapes) < _MAX_SHAPES:
            self._shapes[keys] = keys
        self.entries.append(
            (
                reservation.request_id,
                reservation.key,
                reservation.account,
                reservation.amount,
                charged,
                state,
                time.time(),
                keys,
                *detail.values(),
            )
        )

    # -- views ---------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "accounts": dict(self.balances),
                "keys": {
                    name: {
                        "account": k.config.account,
                        "status": k.config.status,
                        "quota": k.config.quota,
                        "remaining": k.remaining,
                        "used": k.used,
                        "variant": k.config.variant,
                        "models": list(k.config.models) if k.config.models is not None else None,
                    }
                    for name, k in self.keys.items()
                },
                "open_reservations": len(self.open),
                "model_budgets": {
                    name: {
                        "budget": b.budget,
                        "spent": b.spent,
                        "open": b.held,
                        "remaining": b.available,
                    }
                    for name, b in self.budgets.items()
                },
                "totals": {
                    "settled": self.totals.settled,
                    "refunded": self.totals.refunded,
                    "requests": self.totals.requests,
                },
                **self._tally_rows(),
            }

    def _tally_rows(self) -> dict[str, dict[str, dict[str, int]]]:
        """Per-account and per-key totals of every reservation since the last reset."""
        open_accounts: dict[str, int] = {}
        open_keys: dict[str, int] = {}
        for r in self.open.values():
            open_accounts[r.account] = open_accounts.get(r.account, 0) + r.amount
            open_keys[r.key] = open_keys.get(r.key, 0) + r.amount
        empty = _Tally()
        accounts = {**dict.fromkeys(self.balances), **dict.fromkeys(self.account_totals)}
        keys = {**dict.fromkeys(self.keys), **dict.fromkeys(self.key_totals)}
        return {
            "account_totals": {
                name: self.account_totals.get(name, empty).row(open_accounts.get(name, 0))
                for name in accounts
            },
            "key_totals": {
                name: self.key_totals.get(name, empty).row(open_keys.get(name, 0)) for name in keys
            },
        }

    def key_view(self, secret: str) -> dict[str, Any] | None:
        """One key's quota and its account's balance, found by its secret (the quota probe)."""
        with self._lock:
            key = self.by_secret.get(secret)
            if key is None:
                return None
            account = key.config.account
            tally = self.key_totals.get(key.name) or _Tally()
            pending = sum(r.amount for r in self.open.values() if r.key == key.name)
            return {
                "key": key.name,
                "account": account,
                "balance": self.balances.get(account, 0),
                "quota": key.config.quota,
                "remaining": key.remaining,
                "used": key.used,
                "status": key.config.status,
                "models": list(key.config.models) if key.config.models is not None else None,
                "variant": key.config.variant,
                "rpm": key.config.rpm,
                "open": pending,
                "in_flight": sum(1 for r in self.open.values() if r.key == key.name),
                "requests": tally.requests,
            }

    def recent(self, limit: int) -> list[dict[str, Any]]:
        with self._lock:
            if not limit or limit >= len(self.entries):
                items = list(self.entries)
            else:
                items = list(itertools.islice(self.entries, len(self.entries) - limit, None))
        return [_entry_dict(entry) for entry in items]
