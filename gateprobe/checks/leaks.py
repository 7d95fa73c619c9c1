"""The ``no_credential_leak`` check: no credential-shaped string in an answer.

``no_secret_echo`` looks for the key the client sent; this one looks for any credential: a
gateway that passes an upstream error through verbatim may quote its channel key, the
upstream's ``Authorization`` header or a URL with ``?key=``. What is found is reported masked.
"""

from __future__ import annotations

import re

from gateprobe._redact import mask_secret
from gateprobe.checks._registry import FLAG, CheckContext, check
from gateprobe.errors import CheckFailed

__all__ = ["CREDENTIAL_PATTERNS", "credentials_in"]

CREDENTIAL_PATTERNS: dict[str, re.Pattern[str]] = {
    "an sk- API key": re.compile(r"\bsk-[A-Za-z0-9_\-]{20,}"),
    "a Google API key": re.compile(r"\bAIza[0-9A-Za-z_\-]{30,}"),
    "a bearer token": re.compile(r"(?i)\bbearer\s+([A-Za-z0-9._~+/\-]{16,}=*)"),
    "a key in a URL": re.compile(r"[?&](?:key|api_key|access_token)=([A-Za-z0-9._\-]{12,})"),
}


def credentials_in(text: str) -> list[tuple[str, str]]:
    """(what, masked value) of every credential-shaped string in ``text``."""
    found = []
    for what, pattern in CREDENTIAL_PATTERNS.items():
        for match in pattern.finditer(text):
            value = match.group(match.lastindex or 0)
            found.append((what, mask_secret(value)))
    return found


@check("no_credential_leak", argument=FLAG)
def no_credential_leak(ctx: CheckContext, wanted: bool) -> None:
    """No credential-shaped string (sk- key, Google key, bearer token, ?key=) in the answer."""
    if not wanted:
        return
    header_text = "\n".join(
        f"{k}: {v}" for k, v in ctx.exchange.headers.items() if k.lower() != "set-cookie"
    )
    for where, text in (("body", ctx.exchange.text()), ("headers", header_text)):
        found = credentials_in(text)
        if found:
            what, masked = found[0]
            raise CheckFailed(
                "no_credential_leak",
                f"the response {where} carries {what} ({masked})",
                expected="no credential in the response",
                actual=masked,
                where=where,
            )
