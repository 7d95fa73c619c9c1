"""The quota probe interface: read a key's quota and its account's balance, before and after.

A probe is chosen by the target profile's ``quota_probe.kind`` (see ``probe_for``). It sends
its requests through the same ``call`` the checks use (same client, limits and headers), so
it needs nothing but the target. Figures are in the probe's ``units``: quota units for the
mock, new-api and one-api (USD figures are converted with ``quota_per_unit``), USD for
LiteLLM. Charges and refunds can land after the answer: ``wait_for`` reads again, with a
bounded timeout, before a check concludes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateprobe._redact import mask_secret
from gateprobe.errors import GateprobeError
from gateprobe.http import Exchange

__all__ = [
    "Balance",
    "Call",
    "Price",
    "ProbeError",
    "QuotaProbe",
    "QuotaSettings",
    "base_model",
    "wait_for",
]

Call = Callable[[Mapping[str, Any]], Exchange]
POLICIES = ("client_disconnect", "upstream_failure_midstream")


class ProbeError(GateprobeError):
    """The probe could not read the gateway's figures (the message names what it asked)."""


@dataclass(frozen=True)
class Balance:
    """What a probe read at one moment. None: the gateway does not show it (or unlimited)."""

    key_remaining: float | None = None
    key_used: float | None = None
    account: float | None = None  # the account's (user's) balance
    pending: float | None = None  # reserved by calls still in flight (the mock shows it)
    key_name: str | None = None

    def charged_since(self, before: Balance) -> dict[str, float]:
        """What was taken between ``before`` and this reading, per visible scope."""
        out: dict[str, float] = {}
        if before.key_remaining is not None and self.key_remaining is not None:
            out["key"] = before.key_remaining - self.key_remaining
        elif before.key_used is not None and self.key_used is not None:
            out["key"] = self.key_used - before.key_used
        if before.account is not None and self.account is not None:
            out["account"] = before.account - self.account
        return out

    def lowest(self) -> float | None:
        """The lowest of the remaining figures (to tell a negative balance)."""
        values = [v for v in (self.key_remaining, self.account) if v is not None]
        return min(values) if values else None


@dataclass(frozen=True)
class Price:
    """A model's price in probe units (new-api's ratio form)."""

    input_ratio: float = 1.0
    completion_ratio: float = 1.0
    multiplier: float = 1.0
    per_call: float | None = None

    def cost(self, prompt: int, completion: int, *, whole_units: bool) -> float:
        if self.per_call is not None:
            raw = self.per_call * self.multiplier
        else:
            raw = (prompt + completion * self.completion_ratio) * self.input_ratio * self.multiplier
        return float(math.ceil(raw - 1e-9)) if whole_units else raw

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Price:
        per_call = data.get("per_call")
        return cls(
            input_ratio=float(data.get("input_ratio", 1.0)),
            completion_ratio=float(data.get("completion_ratio", 1.0)),
            multiplier=float(data.get("multiplier", 1.0)),
            per_call=float(per_call) if per_call is not None else None,
        )


@dataclass(frozen=True)
class QuotaSettings:
    """The profile's ``quota_probe`` entry, with defaults."""

    kind: str = "none"
    quota_per_unit: float | None = None
    timeout: float = 5.0
    interval: float = 0.1
    tolerance: float = 0.0
    policy: Mapping[str, str] = field(default_factory=dict)
    prices: Mapping[str, Price] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> QuotaSettings:
        poll = data.get("poll") or {}
        per_unit = data.get("quota_per_unit")
        return cls(
            kind=str(data.get("kind", "none")),
            quota_per_unit=float(per_unit) if per_unit is not None else None,
            timeout=float(poll.get("timeout", 5.0)),
            interval=float(poll.get("interval", 0.1)),
            tolerance=float(data.get("tolerance", 0.0)),
            policy={name: str(data.get("policy", {}).get(name, "delivered")) for name in POLICIES},
            prices={
                str(model): Price.from_mapping(price)
                for model, price in (data.get("prices") or {}).items()
            },
        )


def base_model(name: str) -> str:
    """The model name without the mock's fault directives (``gpt-4o-mini--error-503``)."""
    return name.split("--", 1)[0]


class QuotaProbe:
    """Reads a key's figures. Subclasses implement ``read`` and whatever more they can."""

    kind = "none"
    units = "quota units"
    whole_units = True  # charges are whole units (rounded up), so prices round up too
    can_create_keys = False  # keys made for the run (the mock's admin API)
    has_usage_log = False
    shows_reservations = False

    def __init__(self, call: Call, settings: QuotaSettings, admin: str | None = None) -> None:
        self.call = call
        self.settings = settings
        self.admin = admin

    def read(self, secret: str) -> Balance:
        raise ProbeError(f"the {self.kind!r} quota probe cannot read balances")

    def price(self, model: str) -> Price | None:
        prices = self.settings.prices
        return prices.get(model) or prices.get(base_model(model))

    def usage_record(self, request_id: str) -> dict[str, Any] | None:
        """The gateway's log record of one call, or None when it has none (yet)."""
        return None

    def reservation(self, request_id: str) -> float | None:
        """What the gateway pre-deducted for one call, where it shows it."""
        return None

    def create_key(self, quota: int | None, balance: int) -> str:
        """A fresh key (on a fresh account) made for the run; returns its secret."""
        raise ProbeError(f"the {self.kind!r} quota probe cannot create keys")

    def isolate(self, secret: str) -> str | None:
        """A key made for the run that behaves like ``secret``'s (same status, remaining
        quota, model limits and balance, on an account of its own), so a measurement is not
        disturbed by other traffic on the target's key; None where keys cannot be made."""
        return None

    # -- helpers for the adapters --------------------------------------------------------

    def get_json(self, spec: Mapping[str, Any], what: str) -> Any:
        """GET (or send) ``spec`` and return its JSON body; ProbeError when it fails."""
        ex = self.call(spec)
        path = spec.get("path")
        if ex.status is None:
            raise ProbeError(f"{what}: no answer from {path}: {ex.error}")
        if ex.status != 200:
            raise ProbeError(f"{what}: {path} answered HTTP {ex.status}")
        try:
            return ex.json()
        except ValueError as exc:
            raise ProbeError(f"{what}: {path} did not answer JSON: {exc}") from None

    @staticmethod
    def masked(secret: str) -> str:
        return mask_secret(secret)


def wait_for(
    read: Callable[[], Balance], done: Callable[[Balance], bool], settings: QuotaSettings
) -> Balance:
    """Read until ``done`` holds or the profile's poll timeout passes; the last reading."""
    deadline = time.monotonic() + settings.timeout
    reading = read()
    while not done(reading) and time.monotonic() < deadline:
        time.sleep(settings.interval)
        reading = read()
    return reading
