"""Quota probes: how the quota scenarios read a gateway's balances, by the profile's kind.

``probe_for(target, call)`` gives the probe the target's ``quota_probe.kind`` names;
``unavailable(target)`` says why there is none (scenarios using quota checks are then
skipped with that reason).
"""

from __future__ import annotations

from gateprobe.quota.base import (
    Balance,
    Call,
    Price,
    ProbeError,
    QuotaProbe,
    QuotaSettings,
    base_model,
    wait_for,
)
from gateprobe.quota.gateways import BillingProbe, LiteLLMProbe, NewApiTokenProbe
from gateprobe.quota.mock import MockProbe
from gateprobe.target import Target

__all__ = [
    "PROBES",
    "Balance",
    "BillingProbe",
    "Call",
    "LiteLLMProbe",
    "MockProbe",
    "NewApiTokenProbe",
    "Price",
    "ProbeError",
    "QuotaProbe",
    "QuotaSettings",
    "base_model",
    "probe_class",
    "probe_for",
    "settings_of",
    "unavailable",
    "wait_for",
]

PROBES: dict[str, type[QuotaProbe]] = {
    "gateprobe-mock": MockProbe,
    "new-api": NewApiTokenProbe,
    "one-api": BillingProbe,
    "litellm": LiteLLMProbe,
}


def settings_of(target: Target) -> QuotaSettings:
    return QuotaSettings.from_mapping({"kind": target.quota_probe, **target.quota_options})


def probe_class(target: Target) -> type[QuotaProbe] | None:
    return PROBES.get(target.quota_probe)


def unavailable(target: Target) -> str | None:
    """Why the quota checks cannot run on ``target``, or None."""
    cls = probe_class(target)
    if cls is None:
        return f"target {target.name!r} has no quota probe (quota_probe: {target.quota_probe})"
    if cls is MockProbe and target.key("admin") is None:
        return f"the mock's quota probe needs an `admin` key, which {target.name!r} lacks"
    return None


def probe_for(target: Target, call: Call) -> QuotaProbe:
    cls = probe_class(target)
    if cls is None:
        raise ProbeError(unavailable(target) or "no quota probe")
    return cls(call, settings_of(target), admin=target.key("admin"))
