"""Shared test constants and helpers: the default mock's keys and the admin header."""

from __future__ import annotations

from gateprobe.mock import MockConfig

ADMIN = {"x-gateprobe-admin": "gp-admin-token"}
DEFAULT = MockConfig.default()
SECRETS = {k.name: k.secret for k in DEFAULT.keys}


def bearer(name: str = "valid") -> dict[str, str]:
    return {"Authorization": f"Bearer {SECRETS[name]}"}


def claude(name: str = "valid") -> dict[str, str]:
    return {"x-api-key": SECRETS[name], "anthropic-version": "2023-06-01"}


def goog(name: str = "valid") -> dict[str, str]:
    return {"x-goog-api-key": SECRETS[name]}
