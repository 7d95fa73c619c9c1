"""Probes for real gateways: what each lets a key read about its own quota.

- new-api ``GET /api/usage/token/``: the token's granted, used and available quota in raw
  quota units (any token status; rate-limited to 20 reads per 20 minutes per IP by default).
- new-api and one-api ``GET /v1/dashboard/billing/subscription`` and ``/usage``: the
  token's limit in USD and its usage in US cents, converted back to quota units with
  ``quota_per_unit`` (from the profile, else ``GET /api/status``, else 500000).
- LiteLLM ``GET /key/info``: the key's ``spend`` and ``max_budget`` in USD.

None of them shows the account (user) balance to a key, nor reservations in flight.
"""

from __future__ import annotations

from typing import Any

from gateprobe.quota.base import Balance, ProbeError, QuotaProbe

__all__ = ["BillingProbe", "LiteLLMProbe", "NewApiTokenProbe"]

DEFAULT_QUOTA_PER_UNIT = 500_000.0  # new-api and one-api: quota units per USD
UNLIMITED_USD = 100_000_000  # the billing limit an unlimited token reports


def _bearer(secret: str, path: str) -> dict[str, Any]:
    return {"method": "GET", "path": path, "key": f"literal:{secret}", "auth": "bearer"}


def _error_in(body: Any) -> str | None:
    """new-api and one-api answer some failures with HTTP 200 and an error body."""
    if not isinstance(body, dict):
        return "the answer is not a JSON object"
    if isinstance(body.get("error"), dict):
        return str(body["error"].get("message", "error"))
    if body.get("success") is False:
        return str(body.get("message", "error"))
    return None


class NewApiTokenProbe(QuotaProbe):
    kind = "new-api"

    def read(self, secret: str) -> Balance:
        what = f"reading the quota of token {self.masked(secret)}"
        body = self.get_json(_bearer(secret, "/api/usage/token/"), what)
        problem = _error_in(body)
        if problem is not None or not isinstance(body.get("data"), dict):
            raise ProbeError(f"{what}: /api/usage/token/ answered an error: {problem}")
        data = body["data"]
        unlimited = bool(data.get("unlimited_quota"))
        return Balance(
            key_remaining=None if unlimited else float(data["total_available"]),
            key_used=float(data["total_used"]),
            key_name=data.get("name"),
        )


class BillingProbe(QuotaProbe):
    """The OpenAI-style billing endpoints that new-api and one-api keep for old clients."""

    kind = "one-api"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._per_unit: float | None = self.settings.quota_per_unit

    def quota_per_unit(self) -> float:
        if self._per_unit is None:
            try:
                body = self.get_json(
                    {"method": "GET", "path": "/api/status", "key": None}, "reading /api/status"
                )
                value = (body.get("data") or {}).get("quota_per_unit")
                self._per_unit = float(value) if value else DEFAULT_QUOTA_PER_UNIT
            except (ProbeError, AttributeError, TypeError, ValueError):
                self._per_unit = DEFAULT_QUOTA_PER_UNIT
        return self._per_unit

    def read(self, secret: str) -> Balance:
        what = f"reading the billing of token {self.masked(secret)}"
        subscription = self.get_json(_bearer(secret, "/v1/dashboard/billing/subscription"), what)
        usage = self.get_json(_bearer(secret, "/v1/dashboard/billing/usage"), what)
        for body in (subscription, usage):
            problem = _error_in(body)
            if problem is not None:
                raise ProbeError(f"{what}: the billing endpoint answered an error: {problem}")
        per_unit = self.quota_per_unit()
        limit_usd = float(subscription["hard_limit_usd"])
        used = round(float(usage["total_usage"]) / 100.0 * per_unit)
        unlimited = limit_usd >= UNLIMITED_USD
        granted = round(limit_usd * per_unit)
        return Balance(
            key_remaining=None if unlimited else float(granted - used),
            key_used=float(used),
        )


class LiteLLMProbe(QuotaProbe):
    kind = "litellm"
    units = "USD"
    whole_units = False

    def read(self, secret: str) -> Balance:
        what = f"reading /key/info of key {self.masked(secret)}"
        body = self.get_json(_bearer(secret, "/key/info"), what)
        info = body.get("info") if isinstance(body, dict) else None
        if not isinstance(info, dict):
            raise ProbeError(f"{what}: the answer has no `info` object")
        spend = float(info.get("spend") or 0.0)
        budget = info.get("max_budget")
        return Balance(
            key_remaining=None if budget is None else float(budget) - spend,
            key_used=spend,
            key_name=info.get("key_alias") or info.get("key_name"),
        )
