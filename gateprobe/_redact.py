"""Masking of secrets for anything gateprobe prints, logs or stores."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["SECRET_HEADERS", "Redactor", "mask_headers", "mask_secret"]

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


class Redactor:
    """Masks known secrets wherever they appear: headers, URLs (``?key=``), bodies, messages.

    Header values of the usual credential headers are masked even when the secret is not
    known in advance; known secrets are masked in any text.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another is masked whole.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def add(self, secret: str) -> None:
        if secret and secret not in self._secrets:
            self._secrets.append(secret)
            self._secrets.sort(key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, mask_secret(secret))
        return value

    def headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        return {
            k: mask_secret(v) if k.lower() in SECRET_HEADERS else self.text(v)
            for k, v in headers.items()
        }
