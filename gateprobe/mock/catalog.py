"""Read-only endpoints: model lists in each protocol's shape, status, billing, token usage.

Shapes follow new-api (see shared/reference/gateway-behaviour.md): ``/api/status`` reports
``quota_per_unit``; the billing endpoints report USD derived from quota units; the token
usage endpoint answers even for a disabled, expired or exhausted key.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from gateprobe.mock.asgi import Request
from gateprobe.mock.config import ModelConfig
from gateprobe.mock.errors import GatewayError
from gateprobe.mock.ledger import KeyState
from gateprobe.mock.state import MockState

__all__ = [
    "QUOTA_PER_UNIT",
    "anthropic_list",
    "billing_subscription",
    "billing_usage",
    "gemini_list",
    "gemini_model",
    "openai_list",
    "openai_model",
    "status",
    "token_usage",
]

QUOTA_PER_UNIT = 500_000  # quota units per USD, as new-api and one-api count them
UNLIMITED_USD = 100_000_000
MODEL_CREATED = 1_735_689_600  # 2025-01-01, a fixed date keeps answers deterministic
STARTED = int(time.time())


def openai_model(m: ModelConfig) -> dict[str, Any]:
    return {"id": m.id, "object": "model", "created": MODEL_CREATED, "owned_by": m.owned_by}


# The list builders take the models to show (``MockState.listed``): they filter nothing.


def openai_list(models: list[ModelConfig]) -> dict[str, Any]:
    return {"object": "list", "data": [openai_model(m) for m in models]}


def anthropic_list(models: list[ModelConfig]) -> dict[str, Any]:
    created = datetime.fromtimestamp(MODEL_CREATED, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    data = [
        {"type": "model", "id": m.id, "display_name": m.id, "created_at": created} for m in models
    ]
    return {
        "data": data,
        "has_more": False,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


def gemini_model(m: ModelConfig) -> dict[str, Any]:
    methods = ["generateContent", "streamGenerateContent", "countTokens"]
    if "embeddings" in m.capabilities:
        methods = ["embedContent"]
    return {
        "name": f"models/{m.id}",
        "version": "001",
        "displayName": m.id,
        "description": f"{m.id} served by the gateprobe mock",
        "inputTokenLimit": 1_048_576,
        "outputTokenLimit": m.max_output_tokens,
        "supportedGenerationMethods": methods,
    }


def gemini_list(models: list[ModelConfig]) -> dict[str, Any]:
    return {"models": [gemini_model(m) for m in models]}


def status(state: MockState, request: Request) -> dict[str, Any]:
    return {
        "success": True,
        "message": "",
        "data": {
            "version": "gateprobe-mock/0.1.0",
            "start_time": STARTED,
            "quota_per_unit": QUOTA_PER_UNIT,
            "display_in_currency": True,
            "quota_display_type": "USD",
            "usd_exchange_rate": 1,
            "price": 1,
            "self_use_mode_enabled": False,
            "default_use_auto_group": False,
            "enable_batch_update": False,
            "server_address": f"http://{request.headers.get('host', '127.0.0.1')}",
            "system_name": "gateprobe mock gateway",
            "mode": state.config.mode,
            "setup": True,
        },
    }


def _account_used(state: MockState, account: str) -> int:
    return sum(k.used for k in state.ledger.keys.values() if k.config.account == account)


def _granted_and_used(state: MockState, key: KeyState) -> tuple[float, int]:
    if key.remaining is not None:
        return float(key.remaining + key.used), key.used
    account = key.config.account
    used = _account_used(state, account)
    return float(state.ledger.balances.get(account, 0) + used), used


def billing_subscription(state: MockState, key: KeyState | None) -> dict[str, Any]:
    if key is None:
        limit = float(UNLIMITED_USD)
    else:
        granted, _ = _granted_and_used(state, key)
        limit = round(granted / QUOTA_PER_UNIT, 6)
    return {
        "object": "billing_subscription",
        "has_payment_method": True,
        "soft_limit_usd": limit,
        "hard_limit_usd": limit,
        "system_hard_limit_usd": limit,
        "access_until": 0,
    }


def billing_usage(state: MockState, key: KeyState | None) -> dict[str, Any]:
    used = 0 if key is None else _granted_and_used(state, key)[1]
    return {"object": "list", "total_usage": round(used / QUOTA_PER_UNIT * 100, 6)}


def token_usage(state: MockState, request: Request) -> dict[str, Any]:
    """new-api's read-only token view: any key status, but exactly ``Bearer <key>``."""
    header = request.headers.get("authorization", "")
    if not header:
        raise GatewayError(401, "missing_api_key", "No Authorization header")
    scheme, _, secret = header.partition(" ")
    if scheme != "Bearer" or not secret:
        raise GatewayError(401, "malformed_api_key", "Invalid Bearer token")
    key = state.ledger.lookup(secret.strip())
    if key is None:
        raise GatewayError(401, "invalid_api_key", "Invalid API key")
    granted, used = _granted_and_used(state, key)
    allow = key.config.models
    return {
        "code": True,
        "message": "ok",
        "data": {
            "object": "token_usage",
            "name": key.name,
            "total_granted": int(granted),
            "total_used": used,
            "total_available": int(granted) - used,
            "unlimited_quota": key.remaining is None,
            "model_limits": {m: True for m in allow} if allow is not None else {},
            "model_limits_enabled": allow is not None,
            "expires_at": -1 if key.config.status == "expired" else 0,
            "status": key.config.status,
        },
    }
