"""A copy-paste ``curl`` command that sends a step's request again, with no secret in it.

Every credential becomes a shell variable: a profile's key is the environment variable the
profile names for its kind (``keys: {valid: NEWAPI_KEY_VALID}`` -> ``"$NEWAPI_KEY_VALID"``),
so the command works in the shell that ran gateprobe; anything else the step sent as a
credential (a ``literal:`` key, a header of the scenario's own, a gateway key in a profile
header, a URL's password) becomes ``$GATEPROBE_LITERAL_KEY`` (``_2``, ``_3``, ... for more),
and a comment line above the command says what to set it to. What is left is masked with
the scenario's redactor as well, so a secret the run did not know it sent is masked, never
copied (the command then fails to authenticate instead of leaking).

Quoting is ``shlex.quote`` for every literal piece and ``"$VAR"`` for the variables, joined
without spaces (``'authorization: Bearer '"$KEY"``), so any header or body survives a POSIX
shell as sent. A text body up to 64 KiB goes in ``--data-raw``; a larger one is piped from
the shell's builtin ``printf`` (no argument-size limit), with a long run of one character (a
body padded to a size) written by ``head -c N /dev/zero | tr``; a body that is not text
(invalid UTF-8, control characters) is piped as ``printf`` octal escapes.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from gateprobe._redact import SECRET_QUERY_PARAMS, Redactor
from gateprobe.http import ACCEPT_ENCODING, RequestRecord
from gateprobe.request import BuiltRequest
from gateprobe.target import Target

__all__ = ["INLINE_BODY_LIMIT", "LITERAL_VARIABLE", "curl_command", "step_curl"]

LITERAL_VARIABLE = "GATEPROBE_LITERAL_KEY"
INLINE_BODY_LIMIT = 64 * 1024  # bytes of a text body given as one --data-raw argument
_MIN_BY_VALUE = 8  # a shorter secret is replaced where it is a credential, not everywhere
_MIN_RUN = 1024  # a run of one character this long in a large body is generated, not pasted
# Headers curl sets itself from the command (or that only describe the connection).
_CURL_OWN = frozenset({"host", "content-length", "connection", "transfer-encoding"})
_CODINGS = re.compile(r"(?i)\b(gzip|deflate|br|zstd)\b")
_QUERY_VALUE = re.compile(r"(?i)([?&](?:" + "|".join(sorted(SECRET_QUERY_PARAMS)) + r")=)([^&#]*)")
_RUN = re.compile(r"(.)\1{" + str(_MIN_RUN - 1) + ",}", re.DOTALL)
_TEXT = re.compile(r"[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*")

# A shell word: literal text and variable names, in order.
_Word = list[tuple[str, str]]  # ("lit", text) | ("var", NAME)


@dataclass
class _Secrets:
    """Secret value -> the variable standing for it, and the notes the command needs."""

    redactor: Redactor
    variables: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    _literals: int = 0

    def variable(self, value: str, what: str) -> str:
        name = self.variables.get(value)
        if name is None:
            self._literals += 1
            suffix = f"_{self._literals}" if self._literals > 1 else ""
            name = self.variables[value] = LITERAL_VARIABLE + suffix
            self.notes.append(f"# {name}: {what}; no key of the target profile, so set it yourself")
        return name

    def split(self, text: str) -> _Word:
        """``text`` with every known secret (long enough to match safely) as its variable."""
        known = sorted(
            (v for v in self.variables if len(v) >= _MIN_BY_VALUE), key=len, reverse=True
        )
        word: _Word = []
        pattern = re.compile("|".join(re.escape(v) for v in known)) if known else None
        at = 0
        for match in pattern.finditer(text) if pattern else ():
            word.append(("lit", text[at : match.start()]))
            word.append(("var", self.variables[match.group(0)]))
            at = match.end()
        word.append(("lit", text[at:]))
        return word

    def shell(self, word: _Word) -> str:
        """The word quoted for a POSIX shell; its literal pieces masked, so a secret the run
        did not know it sent never reaches the command whole."""
        merged: _Word = []
        for kind, text in word:
            if kind == "lit" and merged and merged[-1][0] == "lit":
                merged[-1] = ("lit", merged[-1][1] + text)
            elif text:
                merged.append((kind, text))
        parts = [
            shlex.quote(self.redactor.text(text)) if kind == "lit" else f'"${text}"'
            for kind, text in merged
            if text
        ]
        return "".join(parts) or "''"


def _secrets(target: Target, redactor: Redactor, sent: str | None) -> _Secrets:
    secrets = _Secrets(redactor)
    for kind, value in target.keys.items():
        secrets.variables.setdefault(value, target.key_env.get(kind) or f"GATEPROBE_KEY_{kind}")
    if sent:
        secrets.variable(sent, "the literal: key of the step (in its scenario's YAML)")
    return secrets


def _header_word(name: str, value: str, secrets: _Secrets) -> _Word:
    if not secrets.redactor.is_secret_header(name):
        return [("lit", f"{name}: "), *secrets.split(value)]
    if name.lower() in ("cookie", "set-cookie"):
        variable = secrets.variable(value, f"the {name} header the step sent")
        return [("lit", f"{name}: "), ("var", variable)]
    scheme, space, credential = value.strip().partition(" ")
    if not space:
        scheme, credential = "", value.strip()
    if not credential:
        return [("lit", f"{name}: {scheme}")]
    variable = secrets.variables.get(credential) or secrets.variable(
        credential, f"the credential the step sent in {name}"
    )
    return [("lit", f"{name}: {scheme}{space}"), ("var", variable)]


def _url_word(url: str, secrets: _Secrets) -> _Word:
    parts = urlsplit(url)
    if parts.password:
        secrets.variable(parts.password, "the password in the target's base URL")
    if "?" in url:
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key.lower() in SECRET_QUERY_PARAMS and value and value not in secrets.variables:
                secrets.variable(value, f"the ?{key}= credential the step sent")
    word: _Word = []
    for kind, text in secrets.split(url):
        if kind == "var":
            word.append((kind, text))
            continue
        # a short credential in ?key= is replaced where it stands (split leaves short ones)
        at = 0
        for match in _QUERY_VALUE.finditer(text):
            value = match.group(2)
            if value in secrets.variables:
                word.append(("lit", text[at : match.start(2)]))
                word.append(("var", secrets.variables[value]))
                at = match.end(2)
        word.append(("lit", text[at:]))
    return word


def _printf_escaped(data: bytes) -> str:
    """A ``printf`` format writing exactly ``data``."""
    out = []
    for byte in data:
        char = chr(byte)
        if char == "%":
            out.append("%%")
        elif char == "\\":
            out.append("\\\\")
        elif 0x20 <= byte < 0x7F:
            out.append(char)
        else:
            out.append(f"\\{byte:03o}")
    return shlex.quote("".join(out))


def _longest_run(text: str) -> tuple[int, int]:
    """(start, length) of the longest run of one character in ``text``."""
    best = (0, 0)
    for match in _RUN.finditer(text):
        if match.end() - match.start() > best[1]:
            best = (match.start(), match.end() - match.start())
    return best


def _body(data: bytes, secrets: _Secrets) -> tuple[str | None, str | None]:
    """(the ``--data-raw`` argument, or None; the shell command piped into curl, or None)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or not _TEXT.fullmatch(text):
        dashes = "-- " if data.startswith(b"-") else ""  # else printf reads an option
        return None, f"printf {dashes}{_printf_escaped(data)}"
    if len(data) <= INLINE_BODY_LIMIT:
        return f"--data-raw {secrets.shell(secrets.split(text))}", None
    start, length = _longest_run(text)
    if length:
        char = text[start]
        head, tail = text[:start], text[start + length :]
        pieces = [
            f"printf '%s' {secrets.shell(secrets.split(head))}" if head else "",
            f"head -c {length} /dev/zero | tr '\\0' {shlex.quote(char)}"
            if char.isascii()
            else f"printf '%s' {shlex.quote(char * length)}",
            f"printf '%s' {secrets.shell(secrets.split(tail))}" if tail else "",
        ]
        return None, "{ " + "; ".join(p for p in pieces if p) + "; }"
    return None, f"printf '%s' {secrets.shell(secrets.split(text))}"


def curl_command(
    request: RequestRecord,
    target: Target,
    redactor: Redactor,
    *,
    stream: bool = False,
    sent_secret: str | None = None,
    notes: Iterable[str] = (),
) -> str:
    """The request as a curl command (comment lines first, then one command over several
    lines joined with ``\\``); ``sent_secret``: the key the step sent (a literal key)."""
    secrets = _secrets(target, redactor, sent_secret)
    headers = {k.lower(): v for k, v in request.headers.items()}
    body = request.body or b""
    options = ["curl -sS -i"]
    if stream or "text/event-stream" in headers.get("accept", ""):
        options.append("-N")  # print each event as it arrives
    encoding = headers.get("accept-encoding")
    if encoding is not None and _CODINGS.search(encoding):
        options.append("--compressed")  # curl undoes the coding it is sent, as gateprobe did
    method = request.method.upper()
    if method == "HEAD":
        options.append("--head")
    elif method != ("POST" if body else "GET"):
        options.append(f"-X {shlex.quote(method)}")
    lines = [" ".join(options) + " " + secrets.shell(_url_word(request.url, secrets))]
    netloc = urlsplit(request.url).netloc
    for name, value in request.headers.items():
        lowered = name.lower()
        if lowered == "host" and value == netloc:
            continue
        if lowered == "content-length" and value == str(len(body)):
            continue
        if lowered in _CURL_OWN - {"host", "content-length"}:
            continue
        if lowered == "accept-encoding" and value == ACCEPT_ENCODING:
            continue  # --compressed asks for what this curl can undo
        if lowered == "user-agent" and value.startswith("python-httpx/"):
            continue
        if lowered == "accept" and value == "*/*":
            continue  # curl's own
        lines.append(f"-H {secrets.shell(_header_word(name, value, secrets))}")
    pipe = None
    if body:
        if "content-type" not in headers:
            lines.append("-H 'content-type:'")  # curl would add a form content type
        data, pipe = _body(body, secrets)
        lines.append(data or "--data-binary @-")
    command = " \\\n  ".join(lines)
    if pipe is not None:
        command = f"{pipe} | \\\n  {command}"
    return "\n".join([*secrets.notes, *notes, command])


def step_curl(
    request: RequestRecord | None,
    built: BuiltRequest | None,
    target: Target,
    redactor: Redactor,
) -> str | None:
    """The curl command of one step (the request as sent, else as built); None when the step
    built no request."""
    notes = []
    if request is None:
        if built is None:
            return None
        body = built.content
        if body is None and built.json_body is not None:
            body = json.dumps(built.json_body).encode()
        headers = dict(built.headers)
        if built.json_body is not None and "content-type" not in headers:
            headers["content-type"] = "application/json"
        request = RequestRecord(built.method, target.base_url + built.url, headers, body)
    elif request.body is None and built is not None and built.json_body is not None:
        # a request the hang breaker refused keeps only raw content: the JSON body is built's
        request = RequestRecord(
            request.method,
            request.url,
            {"content-type": "application/json", **request.headers},
            json.dumps(built.json_body).encode(),
        )
    if built is not None and built.disconnect_after_events is not None:
        notes.append(
            f"# gateprobe hung up after {built.disconnect_after_events} events; "
            "press Ctrl-C to do the same"
        )
    stream = built is not None and built.stream is not None
    secret = built.secret if built is not None else None
    if secret is not None and secret in target.keys.values():
        secret = None
    return curl_command(request, target, redactor, stream=stream, sent_secret=secret, notes=notes)
