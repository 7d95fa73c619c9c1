"""The bundled mock's probe: its admin API tells everything, exactly and at once."""

from __future__ import annotations

import fnmatch
import secrets
from typing import Any

from gateprobe.quota.base import Balance, Price, ProbeError, QuotaProbe, base_model

__all__ = ["RUN_KEY_PREFIX", "MockProbe"]

RUN_KEY_PREFIX = "gp-quota-"  # names of the keys and accounts the probe makes for the run


class MockProbe(QuotaProbe):
    """Reads ``/_gateprobe/quota`` (one key by its secret), the ledger, the usage log and
    the running configuration (prices); creates keys and accounts for the run."""

    kind = "gateprobe-mock"
    can_create_keys = True
    has_usage_log = True
    shows_reservations = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._prices: dict[str, Price] | None = None

    def _admin_spec(self, path: str, **extra: Any) -> dict[str, Any]:
        if not self.admin:
            raise ProbeError("the mock's quota probe needs the target's `admin` key")
        headers = {"x-gateprobe-admin": self.admin, **extra.pop("headers", {})}
        return {"method": "GET", "path": path, "key": None, "headers": headers, **extra}

    def _view(self, secret: str) -> dict[str, Any]:
        spec = self._admin_spec("/_gateprobe/quota", headers={"x-gateprobe-key": secret})
        what = f"reading the quota of key {self.masked(secret)}"
        data: dict[str, Any] = self.get_json(spec, what)
        return data

    def read(self, secret: str) -> Balance:
        data = self._view(secret)
        return Balance(
            key_remaining=data.get("remaining"),
            key_used=data.get("used"),
            account=data.get("balance"),
            pending=data.get("open"),
            key_name=data.get("key"),
        )

    def price(self, model: str) -> Price | None:
        if self._prices is None:
            config = self.get_json(self._admin_spec("/_gateprobe/config"), "reading the prices")
            channels = config.get("channels") or []
            self._prices = {}
            for m in config.get("models") or []:
                # the first channel serving the model is the one an unpinned call takes
                multiplier = next(
                    (
                        float(c.get("multiplier", 1.0))
                        for c in channels
                        if any(fnmatch.fnmatchcase(m["id"], p) for p in c.get("models") or [])
                    ),
                    1.0,
                )
                self._prices[m["id"]] = Price(
                    input_ratio=float(m.get("input_ratio", 1.0)),
                    completion_ratio=float(m.get("completion_ratio", 1.0)),
                    multiplier=multiplier,
                    per_call=m.get("per_call"),
                )
        return self._prices.get(base_model(model)) or super().price(model)

    def usage_record(self, request_id: str) -> dict[str, Any] | None:
        data = self.get_json(
            self._admin_spec("/_gateprobe/usage", query={"limit": "500"}), "reading the usage log"
        )
        for record in reversed(data.get("records") or []):
            if record.get("request_id") == request_id:
                return dict(record)
        return None

    def reservation(self, request_id: str) -> float | None:
        data = self.get_json(
            self._admin_spec("/_gateprobe/ledger", query={"limit": "500"}), "reading the ledger"
        )
        for entry in reversed(data.get("entries") or []):
            if entry.get("request_id") == request_id:
                return float(entry["reserved"])
        return None

    def create_key(self, quota: int | None, balance: int, **fields: Any) -> str:
        name = f"{RUN_KEY_PREFIX}{secrets.token_hex(6)}"
        secret = f"sk-gp-{secrets.token_hex(16)}"
        account = {"balance": balance}
        self.get_json(
            self._admin_spec(f"/_gateprobe/accounts/{name}", method="PUT", body=account),
            "creating an account for the run",
        )
        body = {"secret": secret, "account": name, "quota": quota, **fields}
        self.get_json(
            self._admin_spec(f"/_gateprobe/keys/{name}", method="PUT", body=body),
            "creating a key for the run",
        )
        return secret

    def isolate(self, secret: str) -> str | None:
        view = self._view(secret)
        if str(view.get("key", "")).startswith(RUN_KEY_PREFIX):
            return None  # already a key of its own (another check of the step made it)
        like = {name: view[name] for name in ("status", "models", "variant", "rpm") if name in view}
        balance = int(view.get("balance") or 0)
        remaining = view.get("remaining")
        # An unlimited key becomes one whose quota no call reaches, so the key's own figure
        # shows a charge or a refund as exactly as the account's does.
        quota = int(remaining) if remaining is not None else max(balance, 1)
        return self.create_key(quota, balance, **like)
