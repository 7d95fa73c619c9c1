"""Masking of secrets for anything gateprobe prints, logs or stores.

Two ways, as Schemathesis does: by value (every secret the run knows it sent: the profile's
keys, a step's literal key, the credentials a request carried) wherever the value appears,
bodies included; and by name, for secrets nobody announced: the values of credential headers
(Authorization keeps its scheme), cookies, ``key=`` / ``api_key=`` / ``access_token=`` query
parameters, a URL's password, ``Bearer <token>`` and ``literal:<key>`` in any text (a curl
line, a scenario's YAML, an error message quoting a request).

Masking is idempotent: a report is masked when it is built and again when it is written, and
a masked value must come out of the second pass as it went in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, urlsplit

__all__ = [
    "SECRET_HEADERS",
    "SECRET_QUERY_PARAMS",
    "Redactor",
    "mask_headers",
    "mask_secret",
]

SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "x-goog-api-key",
        "api-key",
        "x-litellm-api-key",
        "x-gateprobe-admin",
        "cookie",
        "set-cookie",
    }
)
SECRET_QUERY_PARAMS = frozenset({"key", "api_key", "apikey", "access_token"})
_COOKIE_HEADERS = frozenset({"cookie", "set-cookie"})
# Credentials learned from a request by name are masked by value elsewhere only when this
# long: a two-letter "key" would otherwise be masked in every word that contains it.
_MIN_LEARNED = 8
# Schemes kept in front of a masked credential, so a report still shows how it was sent.
_SCHEMES = r"(?:bearer|basic|token|digest|apikey|key)"
# A mask, raw or as JSON escapes it (json.dumps writes the ellipsis as \u2026).
_MASKED = re.compile(r"\*\*\*|[^\s…\\]{0,3}(?:…|\\u2026)[^\s…\\]{0,4}")
# One character of a credential in free text; a JSON-escaped ellipsis counts, so a mask
# written into JSON is still seen whole (and left alone) on the next pass.
_CHAR = r"(?:[^\s\"'{}(),;<>\\\[\]]|\\u2026)"
_TOKEN = _CHAR + r"{8,}"  # prose is left alone: "Authorization: bearer <key>" masks nothing

_QUERY = re.compile(
    r"(?i)([?&](?:" + "|".join(sorted(SECRET_QUERY_PARAMS)) + r")=)((?:[^\s\"'&#<>\\]|\\u2026)+)"
)
_USERINFO = re.compile(r"(://[^/\s:@\"']+:)([^/\s@\"'\\]+)(@)")
_BEARER = re.compile(r"(?i)(\bbearer\s+)([A-Za-z0-9._~+/\-]{8,}=*)")
_LITERAL = re.compile(r"(?<![\w-])(literal:)(" + _CHAR + r"+)")
_COOKIE_LINE = re.compile(
    r"(?i)(?<![\w-])((?:set-)?cookie)(\\?[\"']?[ \t]*:[ \t]*\\?[\"']?)((?:[^\r\n\"'\\]|\\u2026)+)"
)


def _header_line(names: Iterable[str]) -> re.Pattern[str]:
    """``name: value`` in free text (a curl ``-H`` line, YAML, a failure's ``> name:`` line,
    JSON, escaped or not): the value, with its scheme if it has one."""
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.compile(
        r"(?i)(?<![\w-])(" + alternatives + r")(\\?[\"']?[ \t]*:[ \t]*\\?[\"']?)"
        r"((?:" + _SCHEMES + r"[ \t]+)?" + _TOKEN + r")"
    )


_DEFAULT_HEADER_LINE = _header_line(SECRET_HEADERS - _COOKIE_HEADERS)


def _already_masked(value: str) -> bool:
    return _MASKED.fullmatch(value) is not None


def mask_secret(value: str) -> str:
    """Keep enough of a secret to tell keys apart, never enough to use one.

    A leading scheme (``Bearer sk-…``) is kept; a value masked already is returned as is."""
    scheme = ""
    if " " in value:
        scheme, _, value = value.partition(" ")
        scheme += " "
    if _already_masked(value):
        return scheme + value
    if len(value) <= 8:
        return scheme + "***"
    return f"{scheme}{value[:3]}…{value[-4:]}"


def _mask_cookies(name: str, value: str) -> str:
    """Each cookie's value masked, its name and (Set-Cookie) attributes kept."""

    def one(pair: str) -> str:
        key, eq, val = pair.partition("=")
        return f"{key}={mask_secret(val.strip())}" if eq else mask_secret(pair.strip())

    if name == "set-cookie":
        first, sep, attributes = value.partition(";")
        return one(first) + sep + attributes
    return "; ".join(one(p.strip()) for p in value.split(";") if p.strip())


def _mask_header(name: str, value: str) -> str:
    lowered = name.lower()
    if lowered in _COOKIE_HEADERS:
        return _mask_cookies(lowered, value)
    return mask_secret(value)


def mask_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The usual credential headers masked by name (no secret known in advance)."""
    return {k: _mask_header(k, v) if k.lower() in SECRET_HEADERS else v for k, v in headers.items()}


def _credential(value: str) -> str:
    """``Bearer sk-x`` -> ``sk-x``: the part of a header value that is the secret."""
    scheme, space, rest = value.strip().partition(" ")
    if space and re.fullmatch(_SCHEMES, scheme, re.IGNORECASE):
        return rest.strip()
    return value.strip()


class Redactor:
    """Masks secrets by value and by name wherever they appear: headers, URLs, bodies, text.

    ``secrets`` are masked in any text, whatever their length. ``secret_headers`` adds header
    names (a profile's ``secret_headers``) to the usual credential headers masked by name.
    """

    def __init__(self, secrets: Iterable[str] = (), *, secret_headers: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another is masked whole.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        # Learned from what a request carried (a header set by a scenario, say): masked after
        # the announced secrets, so a key with a suffix (``<key>-x``) shows the known key's
        # mask followed by the suffix, as the key's own mask does elsewhere in the report.
        self._learned: list[str] = []
        extra = {h.lower() for h in secret_headers} - SECRET_HEADERS
        self._header_names = SECRET_HEADERS | extra
        self._header_line = (
            _header_line(self._header_names - _COOKIE_HEADERS) if extra else _DEFAULT_HEADER_LINE
        )

    @property
    def secrets(self) -> list[str]:
        return [*self._secrets, *self._learned]

    def add(self, secret: str | None) -> None:
        if secret and secret not in self._secrets:
            self._secrets.append(secret)
            self._secrets.sort(key=len, reverse=True)
            if secret in self._learned:
                self._learned.remove(secret)

    def learn(self, headers: Mapping[str, str] | None = None, url: str = "") -> None:
        """Take the credentials a request carried by name (credential headers, ``?key=``)
        as secrets to mask by value: an answer may quote them."""
        found = [
            _credential(v)
            for k, v in (headers or {}).items()
            if k.lower() in self._header_names and k.lower() not in _COOKIE_HEADERS
        ]
        query = urlsplit(url).query if "?" in url else ""
        found += [v for k, v in parse_qsl(query) if k.lower() in SECRET_QUERY_PARAMS]
        for value in found:
            if (
                len(value) >= _MIN_LEARNED
                and not _already_masked(value)
                and value not in self._secrets
                and value not in self._learned
            ):
                self._learned.append(value)
        self._learned.sort(key=len, reverse=True)

    def is_secret_header(self, name: str) -> bool:
        return name.lower() in self._header_names

    def text(self, value: str) -> str:
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, mask_secret(secret))
        for secret in self._learned:
            if secret in value:
                value = value.replace(secret, mask_secret(secret))
        return self._by_name(value)

    def _by_name(self, value: str) -> str:
        def keep_1(match: re.Match[str]) -> str:
            return match.group(1) + mask_secret(match.group(2))

        def header(match: re.Match[str]) -> str:
            return match.group(1) + match.group(2) + mask_secret(match.group(3))

        def cookie(match: re.Match[str]) -> str:
            masked = _mask_cookies(match.group(1).lower(), match.group(3))
            return match.group(1) + match.group(2) + masked

        value = _QUERY.sub(keep_1, value)
        value = _USERINFO.sub(lambda m: m.group(1) + mask_secret(m.group(2)) + m.group(3), value)
        value = self._header_line.sub(header, value)
        value = _COOKIE_LINE.sub(cookie, value)
        value = _BEARER.sub(keep_1, value)
        return _LITERAL.sub(keep_1, value)

    def headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        return {
            k: _mask_header(k, v) if self.is_secret_header(k) else self.text(v)
            for k, v in headers.items()
        }
