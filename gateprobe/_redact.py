"""Masking of secrets for anything gateprobe prints, logs or stores."""

from __future__ import annotations

__all__ = ["SECRET_HEADERS", "mask_headers", "mask_secret"]

SECRET_HEADERS = frozenset(
    {
        "authorization",
        "x-api-key",
        "x-goog-api-key",
        "api-key",
        "x-litellm-api-key",
        "proxy-authorization",
        "x-gateprobe-admin",
    }
)


def mask_secret(value: str) -> str:
    """Keep enough of a secret to tell keys apart, never enough to use one."""
    scheme = ""
    if " " in value:
        scheme, _, value = value.partition(" ")
        scheme += " "
    if len(value) <= 8:
        return scheme + "***"
    return f"{scheme}{value[:3]}…{value[-4:]}"


def mask_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: mask_secret(v) if k.lower() in SECRET_HEADERS else v for k, v in headers.items()}
