"""Accounts, keys and the quota ledger: pre-deduct, settle, roll back.

Every mutation takes one lock and holds it for a few dictionary operations, so a
reservation against a key's quota and its account's balance is atomic even when the admin
API and the request path run on different threads. A reservation is the largest cost the
call could have; settling can therefore only refund, and no balance ever goes below zero.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from gateprobe.mock.config import KeyConfig, MockConfig

__all__ = ["InsufficientQuota", "KeyState", "Ledger", "Reservation"]

ReservationState = Literal["reserved", "settled", "rolled_back"]


class InsufficientQuota(Exception):
    """The key's own quota, or its account's balance, cannot cover the reservation."""

    def __init__(self, scope: Literal["key", "account"], needed: int, available: int) -> None:
        super().__init__(scope)
        self.scope = scope
        self.needed = needed
        self.available = available


@dataclass
class KeyState:
    config: KeyConfig
    remaining: int | None  # None: unlimited
    used: int = 0

    @property
    def name(self) -> str:
        return self.config.name


@dataclass
class Reservation:
    request_id: str
    key: str
    account: str
    amount: int
    state: ReservationState = "reserved"
    charged: int = 0


@dataclass
class _Totals:
    settled: int = 0
    refunded: int = 0
    requests: int = 0


@dataclass
class Ledger:
    """Balances and the append-only record of what each request was charged."""

    config: MockConfig
    balances: dict[str, int] = field(default_factory=dict)
    keys: dict[str, KeyState] = field(default_factory=dict)
    by_secret: dict[str, KeyState] = field(default_factory=dict)
    entries: deque[dict[str, Any]] = field(default_factory=deque)
    open: dict[str, Reservation] = field(default_factory=dict)
    totals: _Totals = field(default_factory=_Totals)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
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

    def reserve(self, request_id: str, key: KeyState, amount: int) -> Reservation:
        account = key.config.account
        with self._lock:
            if key.remaining is not None and key.remaining < amount:
                raise InsufficientQuota("key", amount, key.remaining)
            balance = self.balances[account]
            if balance < amount:
                raise InsufficientQuota("account", amount, balance)
            if key.remaining is not None:
                key.remaining -= amount
            self.balances[account] = balance - amount
            reservation = Reservation(request_id, key.name, account, amount)
            self.open[request_id] = reservation
            return reservation

    def settle(self, reservation: Reservation, cost: int, *, detail: dict[str, Any]) -> int:
        """Confirm ``cost`` (at most the reserved amount) and refund the rest. Idempotent."""
        with self._lock:
            if reservation.state != "reserved":
                return reservation.charged
            cost = max(0, min(cost, reservation.amount))
            refund = reservation.amount - cost
            extra = cost if "double-charge" in self.config.defects else 0
            self._credit(reservation, refund - extra)
            key = self.keys.get(reservation.key)
            if key is not None:
                key.used += cost + extra
            reservation.state = "settled"
            reservation.charged = cost
            self.open.pop(reservation.request_id, None)
            self.totals.settled += cost
            self.totals.requests += 1
            self._record(reservation, "settled", cost, detail)
            return cost

    def rollback(self, reservation: Reservation, *, reason: str) -> None:
        """Return the whole reservation. Idempotent: a second rollback changes nothing."""
        with self._lock:
            if reservation.state != "reserved":
                return
            if "no-rollback" not in self.config.defects:
                self._credit(reservation, reservation.amount)
                self.totals.refunded += reservation.amount
            reservation.state = "rolled_back"
            self.open.pop(reservation.request_id, None)
            self.totals.requests += 1
            self._record(reservation, "rolled_back", 0, {"reason": reason})

    def _credit(self, reservation: Reservation, amount: int) -> None:
        self.balances[reservation.account] = self.balances.get(reservation.account, 0) + amount
        key = self.keys.get(reservation.key)
        if key is not None and key.remaining is not None:
            key.remaining += amount

    def _record(
        self, reservation: Reservation, state: str, charged: int, detail: dict[str, Any]
    ) -> None:
        self.entries.append(
            {
                "request_id": reservation.request_id,
                "key": reservation.key,
                "account": reservation.account,
                "reserved": reservation.amount,
                "charged": charged,
                "state": state,
                "time": time.time(),
                **detail,
            }
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
                "totals": {
                    "settled": self.totals.settled,
                    "refunded": self.totals.refunded,
                    "requests": self.totals.requests,
                },
            }

    def recent(self, limit: int) -> list[dict[str, Any]]:
        with self._lock:
            items = list(self.entries)
        return items[-limit:] if limit else items
