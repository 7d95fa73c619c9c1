"""Provisioning the bundled mock as a target: start it, create fresh keys, export them.

The run never reuses the mock's well-known default secrets: every kind of key the mock
target profile names gets a new random secret through the admin API, so a report that
leaked one would leak nothing reusable, and the secret-leak test has real values to hunt.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import httpx

from gateprobe._files import load_documents
from gateprobe._resources import resource_dir
from gateprobe.mock import MockConfig, MockServer

__all__ = ["MOCK_TARGET", "provision_mock", "start_bundled_mock"]

MOCK_TARGET = resource_dir("fixtures/targets") / "mock.yaml"

# What each key kind is on the mock (see gateprobe/mock/default.yaml for the accounts).
MOCK_KEYS: dict[str, dict[str, Any]] = {
    "valid": {"account": "main"},
    "valid2": {"account": "second"},
    "disabled": {"account": "main", "status": "disabled"},
    "expired": {"account": "main", "status": "expired"},
    "low_quota": {"account": "main", "quota": 10},
    "poor": {"account": "poor"},
    "restricted": {"account": "main", "models": ["gpt-4o-mini"]},
    "variant": {"account": "main", "variant": "pro"},
    "rate_limited": {"account": "main", "rpm": 3},
}


def key_variables(target_file: Path = MOCK_TARGET) -> dict[str, str]:
    """Key kind -> environment variable, as the (mock) target profile declares them."""
    docs = load_documents(target_file)
    data = docs[0].data if docs else {}
    return dict((data or {}).get("keys") or {})


def provision_mock(base_url: str, admin_token: str, variables: dict[str, str]) -> dict[str, str]:
    """Create one fresh key per kind on the mock at ``base_url``; returns variable -> value."""
    env: dict[str, str] = {}
    admin = {"x-gateprobe-admin": admin_token}
    with httpx.Client(base_url=base_url, timeout=10.0) as client:
        client.post("/_gateprobe/reset", headers=admin).raise_for_status()
        for kind, variable in variables.items():
            if kind == "admin":
                env[variable] = admin_token
                continue
            fields = MOCK_KEYS.get(kind)
            if fields is None:
                continue
            secret = f"sk-gp-{secrets.token_hex(16)}"
            response = client.put(
                f"/_gateprobe/keys/run-{kind}", headers=admin, json={"secret": secret, **fields}
            )
            response.raise_for_status()
            env[variable] = secret
    return env


def start_bundled_mock(
    target_file: Path = MOCK_TARGET, config: MockConfig | None = None
) -> tuple[MockServer, dict[str, str]]:
    """Start the mock on a free loopback port and provision it; returns it and the env to set."""
    config = config or MockConfig.default()
    config = config.replace(admin_token=f"gp-admin-{secrets.token_hex(8)}")
    server = MockServer(config).start()
    try:
        env = provision_mock(server.url, config.admin_token, key_variables(target_file))
    except Exception:
        server.stop()
        raise
    env["GATEPROBE_MOCK_URL"] = server.url
    return server, env
