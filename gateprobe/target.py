"""Target profiles: everything gateway-specific, loaded from YAML and validated.

A profile names the gateway's base URL, path prefix per protocol, extra headers, which
environment variable holds each kind of key, model ids per capability, claimed
capabilities, its dialect (the status it uses for insufficient quota, the error envelope
each route answers in), declared deviations, the quota probe, timeouts and SLOs. Scenarios
never hard-code a gateway; they ask the profile.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from gateprobe import protocols
from gateprobe._files import load_documents, validate_document
from gateprobe._redact import Redactor
from gateprobe.errors import UsageError
from gateprobe.http import Limits
from gateprobe.protocols import PROTOCOLS

__all__ = ["PROTOCOLS", "Deviation", "Dialect", "Target", "load_target"]  # PROTOCOLS: re-exported

DEFAULT_PATHS = {p: protocols.primary(p).default_prefix for p in PROTOCOLS}
CREDENTIAL_FORMS = tuple(dict.fromkeys(f for a in protocols.APIS for f in a.credentials))
# The forms the seeds document per protocol (new-api reads Authorization on /v1/messages too).
DEFAULT_CREDENTIALS: Mapping[str, tuple[str, ...]] = {
    p: protocols.primary(p).credentials for p in PROTOCOLS
}
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class Dialect:
    insufficient_quota_status: int = 402
    unknown_model_status: int = 404
    auth_error_status: int = 401
    exhausted_key_status: int = 402  # a key whose own quota is used up
    model_forbidden_status: int = 403  # a key not allowed to use the model
    lowercase_bearer_status: int = 200  # `Authorization: bearer <key>`: accepted (200) or not
    model_budget_status: int = 429  # a model (deployment) whose own budget is spent
    max_body_bytes: int | None = None  # the request-body limit it enforces (413 above it)
    error_envelope: Mapping[str, str] = field(default_factory=lambda: {p: p for p in PROTOCOLS})
    usage_chunk_by_default: bool = False
    request_id_header: str = "x-request-id"

    @classmethod
    def from_profile(cls, data: Mapping[str, Any]) -> Dialect:
        """The ``dialect:`` of a profile (already valid against target.schema.json): every
        field it names, the defaults above for the rest."""
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {k: v for k, v in data.items() if k in known}
        values["error_envelope"] = {p: p for p in PROTOCOLS} | dict(
            data.get("error_envelope") or {}
        )
        if "request_id_header" in values:
            values["request_id_header"] = str(values["request_id_header"]).lower()
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        return {
            f.name: dict(value) if isinstance(value := getattr(self, f.name), Mapping) else value
            for f in fields(self)
        }


@dataclass(frozen=True)
class Deviation:
    scenario: str
    check: str | None
    reason: str

    def matches(self, scenario_id: str, check: str) -> bool:
        return fnmatch.fnmatchcase(scenario_id, self.scenario) and self.check in (None, check)


@dataclass(frozen=True)
class Target:
    name: str
    base_url: str
    source: str = "<target>"
    paths: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_PATHS))
    headers: Mapping[str, str] = field(default_factory=dict)
    key_env: Mapping[str, str] = field(default_factory=dict)
    keys: Mapping[str, str] = field(default_factory=dict)
    models: Mapping[str, Any] = field(default_factory=dict)
    capabilities: frozenset[str] = frozenset()
    dialect: Dialect = field(default_factory=Dialect)
    deviations: tuple[Deviation, ...] = ()
    quota_probe: str = "none"
    quota_options: Mapping[str, Any] = field(default_factory=dict)  # the whole quota_probe entry
    limits: Limits = field(default_factory=Limits)
    slo: Mapping[str, float] = field(default_factory=dict)
    provision: str = "none"
    description: str = ""
    # How the upstream's fault directives travel: in the model name (every gateway forwards
    # it) or in the x-gateprobe-directives header (only where the gateway forwards headers).
    directives: str = "model"
    auth_required: bool = True  # False: the gateway checks no key of its own (Portkey OSS)
    # Credential forms accepted per protocol ("anthropic" -> ("x-api-key", "bearer")).
    credentials: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: dict(DEFAULT_CREDENTIALS)
    )
    protocol_headers: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # Headers masked by name in every report, beside the usual credential headers
    # (gateprobe/_redact.py): a gateway's own key header, x-portkey-api-key say.
    secret_headers: frozenset[str] = frozenset()

    def headers_for(self, protocol: str | None) -> dict[str, str]:
        """The extra headers of every request, then those of ``protocol``'s routes."""
        extra = self.protocol_headers.get(protocol or "", {})
        return {**self.headers, **extra}

    def claims(self, capability: str) -> bool:
        """Whether the target claims ``capability``, listed or implied by its profile."""
        return capability in self.capabilities or capability in self.implied_capabilities()

    def implied_capabilities(self) -> frozenset[str]:
        """What the profile's other fields say: accepted credential forms, authentication."""
        implied = {
            f"auth.{protocol}.{form}"
            for protocol, forms in self.credentials.items()
            for form in forms
        }
        if self.auth_required:
            implied.add("auth.keys")
        if self.dialect.max_body_bytes is not None:
            implied.add("errors.body_limit")
        return frozenset(implied)

    def key(self, kind: str) -> str | None:
        return self.keys.get(kind)

    def model(self, capability: str, protocol: str) -> str | None:
        value = self.models.get(capability)
        if isinstance(value, Mapping):
            found = value.get(protocol)
            return str(found) if found is not None else None
        return str(value) if value is not None else None

    def deviation(self, scenario_id: str, check: str) -> Deviation | None:
        return next((d for d in self.deviations if d.matches(scenario_id, check)), None)

    def redactor(self, sent: Iterable[str | None] = ()) -> Redactor:
        """Masks this profile's keys, the values of its secret headers, and ``sent``: the
        keys a run sent beside them (a step's ``literal:`` key)."""
        redactor = Redactor(self.keys.values(), secret_headers=self.secret_headers)
        for headers in (self.headers, *self.protocol_headers.values()):
            redactor.learn(headers)  # a gateway key sent in a profile header, masked by value
        for secret in sent:
            redactor.add(secret)
        return redactor

    def template_view(self) -> dict[str, Any]:
        """What scenarios may template as ``{target.…}``: never the secrets."""
        return {
            "name": self.name,
            "base_url": self.base_url,
            "paths": dict(self.paths),
            "models": {
                k: (dict(v) if isinstance(v, Mapping) else v) for k, v in self.models.items()
            },
            "capabilities": sorted(self.capabilities | self.implied_capabilities()),
            "directives": self.directives,
            "auth_required": self.auth_required,
            "dialect": self.dialect.as_dict(),
            "slo": dict(self.slo),
            "key_kinds": sorted(self.keys),
        }

    def metadata(self) -> dict[str, Any]:
        """For reports: what was tested, without secrets."""
        return {
            "name": self.name,
            "base_url": self.base_url,
            "source": self.source,
            "capabilities": sorted(self.capabilities),
            "key_kinds": sorted(self.keys),
            "paths": dict(self.paths),
            "deviations": [
                {"scenario": d.scenario, "check": d.check, "reason": d.reason}
                for d in self.deviations
            ],
        }


def _expand_env(value: str, env: Mapping[str, str], where: tuple[str, int | None, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env and env[name] != "":
            return env[name]
        if default is not None:
            return default
        file, line, fieldname = where
        raise UsageError(
            f"environment variable {name} is not set", file=file, line=line, field=fieldname
        )

    return _ENV.sub(replace, value)


def load_target(
    path: str | Path,
    env: Mapping[str, str] | None = None,
    *,
    needed_keys: Collection[str] | None = None,
) -> Target:
    """Load and validate a profile; keys are read from the environment variables it names.

    Every key kind the profile declares must be set, unless ``needed_keys`` names the ones a
    run uses (a load run sends with one or two): the others may then be left unset."""
    env = os.environ if env is None else env
    path = Path(path)
    if not path.is_file():
        raise UsageError("target file not found", file=str(path))
    docs = load_documents(path)
    if len(docs) != 1:
        raise UsageError(
            "a target file holds exactly one YAML document",
            file=str(path),
            line=docs[1].first_line if len(docs) > 1 else None,
        )
    doc = docs[0]
    if not isinstance(doc.data, dict):
        raise UsageError("the top level must be a mapping", file=str(path), line=doc.first_line)
    validate_document(doc, "target.schema.json", path)
    data: dict[str, Any] = doc.data
    source = str(path)

    def where(name: str) -> tuple[str, int | None, str]:
        return source, doc.line_of(name), name

    base_url = _expand_env(data["base_url"], env, where("base_url")).rstrip("/")
    if not base_url.startswith(("http://", "https://")):
        raise UsageError(
            f"must start with http:// or https://, got {base_url!r}",
            file=source,
            line=doc.line_of("base_url"),
            field="base_url",
        )
    keys: dict[str, str] = {}
    for kind, variable in (data.get("keys") or {}).items():
        secret = env.get(variable, "")
        if not secret and needed_keys is not None and kind not in needed_keys:
            continue
        if not secret:
            raise UsageError(
                f"environment variable {variable} is not set (key kind {kind!r})",
                file=source,
                line=doc.line_of(f"keys.{kind}"),
                field=f"keys.{kind}",
            )
        keys[kind] = secret
    headers = {
        name: _expand_env(value, env, where(f"headers.{name}"))
        for name, value in (data.get("headers") or {}).items()
    }
    protocol_headers = {
        protocol: {
            name.lower(): _expand_env(value, env, where(f"protocol_headers.{protocol}.{name}"))
            for name, value in values.items()
        }
        for protocol, values in (data.get("protocol_headers") or {}).items()
    }
    auth = data.get("auth") or {}
    credentials = dict(DEFAULT_CREDENTIALS)
    credentials.update(
        {protocol: tuple(forms) for protocol, forms in (auth.get("credentials") or {}).items()}
    )
    dialect = Dialect.from_profile(data.get("dialect") or {})
    from gateprobe.capabilities import unknown

    for name in unknown(data.get("capabilities") or ()):
        raise UsageError(
            f"unknown capability {name!r} (docs/capabilities.md lists them)",
            file=source,
            line=doc.line_of("capabilities"),
            field="capabilities",
        )
    timeouts = data.get("timeouts") or {}
    limits = Limits(
        connect=float(timeouts.get("connect", 5.0)),
        read=float(timeouts.get("read", 30.0)),
        total=float(timeouts.get("total", 60.0)),
    )
    return Target(
        name=data["name"],
        base_url=base_url,
        source=source,
        paths={**DEFAULT_PATHS, **(data.get("paths") or {})},
        headers=headers,
        key_env=dict(data.get("keys") or {}),
        keys=keys,
        models=dict(data.get("models") or {}),
        capabilities=frozenset(data.get("capabilities") or ()),
        dialect=dialect,
        deviations=tuple(
            Deviation(d["scenario"], d.get("check"), d["reason"])
            for d in data.get("deviations") or ()
        ),
        quota_probe=(data.get("quota_probe") or {}).get("kind", "none"),
        quota_options=dict(data.get("quota_probe") or {}),
        limits=limits,
        slo=dict(data.get("slo") or {}),
        provision=data.get("provision", "none"),
        description=data.get("description", ""),
        directives=data.get("directives", "model"),
        auth_required=bool(auth.get("required", True)),
        credentials=credentials,
        protocol_headers=protocol_headers,
        secret_headers=frozenset(h.lower() for h in data.get("secret_headers") or ()),
    )
