"""The mock's admin API under ``/_gateprobe/``, guarded by the admin token.

    GET   /_gateprobe/health            mode, defects, event-loop lag (?since=<epoch s>), pid
    POST  /_gateprobe/reset             restore balances, keys, model budgets, logs; optional
                                        {config, defects}
    GET   /_gateprobe/state             balances, keys (remaining, used), model budgets (spent,
                                        open, remaining), ledger totals
    GET   /_gateprobe/quota             the key in ``x-gateprobe-key``: quota, used, balance
    GET   /_gateprobe/ledger?limit=N    settled and rolled-back reservations
    GET   /_gateprobe/usage?limit=N     per-request usage records and per-day aggregates
    GET   /_gateprobe/requests?limit=N  what the upstream received (masked), newest last;
                                        a retried call lists its upstream ``attempts``
    PUT   /_gateprobe/keys/{name}       create or replace a key
    PATCH /_gateprobe/keys/{name}       change some of a key's fields
    PUT   /_gateprobe/accounts/{name}   create an account or set its balance: {balance}
    POST  /_gateprobe/faults            {directives, count, model?, key?, path?}
    GET   /_gateprobe/defects, PUT /_gateprobe/defects {defects: [...]}
    GET   /_gateprobe/config            the running configuration, secrets masked

The token goes in ``Authorization: Bearer <token>`` or ``x-gateprobe-admin: <token>``.
"""

from __future__ import annotations

import dataclasses
import hmac
import os
from typing import Any

from gateprobe._redact import mask_secret
from gateprobe.mock.asgi import Request
from gateprobe.mock.config import ConfigError, KeyConfig, MockConfig
from gateprobe.mock.defects import DEFECTS
from gateprobe.mock.errors import GatewayError
from gateprobe.mock.state import MockState, ScheduledFault
from gateprobe.mock.upstream import DirectiveError, Directives

__all__ = ["PREFIX", "handle_admin"]

PREFIX = "/_gateprobe/"


def _authorize(state: MockState, request: Request) -> None:
    token = request.headers.get("x-gateprobe-admin", "")
    if not token:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        token = value if scheme.lower() == "bearer" else ""
    if not token or not hmac.compare_digest(token.encode(), state.config.admin_token.encode()):
        raise GatewayError(401, "admin_unauthorized", "Admin token missing or wrong")


def _limit(request: Request) -> int:
    try:
        return max(0, int(request.query.get("limit", "0")))
    except ValueError:
        raise GatewayError(400, "invalid_request", "'limit' must be an integer") from None


def _since(request: Request) -> float | None:
    """``?since=<epoch seconds>``: the health figures of the samples taken after it."""
    raw = request.query.get("since")
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        raise GatewayError(400, "invalid_request", "'since' must be a number") from None


def _key_from(name: str, data: dict[str, Any], base: KeyConfig | None) -> KeyConfig:
    fields = {f.name for f in dataclasses.fields(KeyConfig)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise GatewayError(400, "invalid_request", f"Unknown key field '{unknown[0]}'")
    merged = dataclasses.asdict(base) if base is not None else {}
    merged.update(data)
    merged["name"] = name
    try:
        cfg = MockConfig.from_mapping(
            {"accounts": [{"name": merged.get("account") or "-", "balance": 0}], "keys": [merged]},
            source="admin request",
        )
    except ConfigError as exc:
        raise GatewayError(400, "invalid_request", str(exc)) from None
    return cfg.keys[0]


def handle_admin(state: MockState, request: Request, body: Any) -> tuple[int, dict[str, Any]]:
    _authorize(state, request)
    route = request.path[len(PREFIX) :].strip("/")
    method = request.method
    ledger = state.ledger
    if route == "health" and method == "GET":
        return 200, {
            "status": "ok",
            "mode": state.config.mode,
            "defects": sorted(state.defects),
            "loop_lag_ms": state.loop_lag.snapshot(_since(request)),
            "pid": os.getpid(),  # which process answered (gateprobe mock --workers N)
        }
    if route == "reset" and method == "POST":
        config = state.config
        if isinstance(body, dict) and body.get("config") is not None:
            try:
                config = MockConfig.from_mapping(body["config"], source="reset request")
            except ConfigError as exc:
                raise GatewayError(400, "invalid_request", str(exc)) from None
        if isinstance(body, dict) and body.get("defects") is not None:
            config = config.replace(defects=_defects(body["defects"]))
        state.reset(config)
        return 200, {"reset": True, "defects": sorted(state.defects)}
    if route == "state" and method == "GET":
        return 200, ledger.snapshot()
    if route == "quota" and method == "GET":
        found = ledger.key_view(request.headers.get("x-gateprobe-key", "").strip())
        if found is None:
            raise GatewayError(404, "not_found", "No key with that secret (x-gateprobe-key)")
        return 200, found
    if route == "ledger" and method == "GET":
        return 200, {
            "entries": ledger.recent(_limit(request)),
            "totals": ledger.snapshot()["totals"],
        }
    if route == "usage" and method == "GET":
        return 200, {"records": state.usage.recent(_limit(request)), "daily": state.usage.daily()}
    if route == "requests" and method == "GET":
        return 200, {"requests": state.received_records(_limit(request))}
    if route.startswith("keys/") and method in ("PUT", "PATCH"):
        name = route[len("keys/") :]
        if not isinstance(body, dict):
            raise GatewayError(400, "invalid_request", "A JSON object is required")
        existing = ledger.keys.get(name)
        if method == "PATCH" and existing is None:
            raise GatewayError(404, "not_found", f"No key named '{name}'")
        key = _key_from(name, body, existing.config if method == "PATCH" and existing else None)
        try:
            ledger.put_key(key)
        except (KeyError, ValueError) as exc:
            raise GatewayError(400, "invalid_request", str(exc).strip("'\"")) from None
        return 200, {"name": key.name, "secret": mask_secret(key.secret), "account": key.account}
    if route.startswith("accounts/") and method == "PUT":
        name = route[len("accounts/") :]
        balance = body.get("balance") if isinstance(body, dict) else None
        if isinstance(balance, bool) or not isinstance(balance, int) or balance < 0:
            raise GatewayError(400, "invalid_request", "'balance' must be an integer >= 0")
        ledger.set_balance(name, balance)
        return 200, {"name": name, "balance": balance}
    if route == "faults" and method == "POST":
        return 200, _schedule(state, body)
    if route == "defects" and method == "GET":
        return 200, {"defects": sorted(state.defects), "known": DEFECTS}
    if route == "defects" and method == "PUT":
        names = body.get("defects") if isinstance(body, dict) else None
        state.set_defects(_defects(names))
        return 200, {"defects": sorted(state.defects)}
    if route == "config" and method == "GET":
        data = state.config.to_mapping()
        data["admin_token"] = mask_secret(data["admin_token"])
        for key in data["keys"]:
            key["secret"] = mask_secret(key["secret"])
        return 200, data
    raise GatewayError(404, "unknown_url", f"Invalid URL ({method} {request.path})")


def _defects(names: Any) -> frozenset[str]:
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise GatewayError(400, "invalid_request", "'defects' must be a list of names")
    unknown = [n for n in names if n not in DEFECTS]
    if unknown:
        raise GatewayError(400, "invalid_request", f"Unknown defect '{unknown[0]}'")
    return frozenset(names)


def _schedule(state: MockState, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("directives"), str):
        raise GatewayError(400, "invalid_request", "'directives' (a string) is required")
    try:
        directives = Directives.parse(body["directives"].split(","))
    except DirectiveError as exc:
        raise GatewayError(400, "invalid_directive", str(exc)) from None
    count = body.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise GatewayError(400, "invalid_request", "'count' must be an integer >= 1")
    fault = ScheduledFault(directives, count, body.get("model"), body.get("key"), body.get("path"))
    state.schedule(fault)
    return {"scheduled": count, "directives": body["directives"]}
