"""The mock gateway's configuration: accounts, keys, models, channels, limits, timing.

A configuration is plain data. It is read from YAML (``MockConfig.load``) or taken from the
embedded default (``default.yaml`` beside this module), and validated on load so that a
mistake names the file and the field instead of surfacing as a traceback mid-request.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from gateprobe._yaml import YamlDocument, load_yaml

__all__ = [
    "AccountConfig",
    "ChannelConfig",
    "ConfigError",
    "KeyConfig",
    "MockConfig",
    "ModelConfig",
]

Mode = Literal["gateway", "upstream"]
PathStyle = Literal["standard", "prefixed", "both"]
# Where the ``prefixed`` path style serves each protocol (as some hosted gateways do: Claude
# under /claude, Gemini under /gemini); ``standard`` serves each at the protocol's own prefix.
PREFIXED_PATHS = {"openai": "/v1", "anthropic": "/claude/v1", "gemini": "/gemini/v1beta"}
KeyStatus = Literal["enabled", "disabled", "expired"]

PROTOCOLS = ("openai", "anthropic", "gemini")
CAPABILITIES = ("chat", "responses", "embeddings", "images", "rerank", "tools", "json", "reasoning")


class ConfigError(ValueError):
    """A configuration file or value is invalid; the message names the file and field."""


@dataclass(frozen=True)
class AccountConfig:
    name: str
    balance: int


@dataclass(frozen=True)
class KeyConfig:
    name: str
    secret: str
    account: str
    status: KeyStatus = "enabled"
    quota: int | None = None  # None: unlimited key quota (the account balance still applies)
    models: tuple[str, ...] | None = None  # model allow-list; None: every model of the variant
    variant: str = "default"
    rpm: int | None = None  # requests per rate-limit window; None: the global default


@dataclass(frozen=True)
class ModelConfig:
    id: str
    protocols: tuple[str, ...] = PROTOCOLS
    capabilities: tuple[str, ...] = ("chat",)
    variants: tuple[str, ...] | None = None  # None: visible to every variant
    input_ratio: float = 1.0  # quota units per prompt token
    completion_ratio: float = 1.0  # completion token price relative to a prompt token
    per_call: int | None = None  # flat quota per call (images, rerank) instead of per token
    max_output_tokens: int = 1024
    ttft_ms: float | None = None
    itl_ms: float | None = None
    owned_by: str = "gateprobe"
    # Quota units that the calls of every key may spend on this model together (LiteLLM's
    # per-deployment max_budget); None: no budget of its own.
    budget: int | None = None


@dataclass(frozen=True)
class ChannelConfig:
    id: str
    models: tuple[str, ...] = ("*",)
    multiplier: float = 1.0

    def serves(self, model: str) -> bool:
        return "*" in self.models or model in self.models


@dataclass(frozen=True)
class MockConfig:
    mode: Mode = "gateway"
    seed: int = 0
    path_style: PathStyle = "standard"
    insufficient_quota_status: int = 402
    model_budget_status: int = 429  # a call refused because its model's budget is spent
    max_body_bytes: int = 1_048_576
    admin_token: str = "gp-admin-token"
    ttft_ms: float = 0.0
    itl_ms: float = 0.0
    min_output_tokens: int = 8
    max_output_tokens: int = 32
    hang_seconds: float = 300.0
    rpm: int | None = None  # default requests per window per key; None: unlimited
    rate_window_seconds: float = 60.0
    usage_log_size: int = 10_000
    ledger_size: int = 10_000
    embedding_dimensions: int = 16
    retry_times: int = 2  # retries of an upstream attempt that failed before the first byte
    accounts: tuple[AccountConfig, ...] = ()
    keys: tuple[KeyConfig, ...] = ()
    models: tuple[ModelConfig, ...] = ()
    channels: tuple[ChannelConfig, ...] = (ChannelConfig("default"),)
    defects: frozenset[str] = frozenset()

    # -- loading -------------------------------------------------------------------------

    @classmethod
    def default(cls) -> MockConfig:
        return cls.from_mapping(_default_mapping(), source="<embedded default>")

    @classmethod
    def load(cls, path: str | Path) -> MockConfig:
        """Read a YAML file; top-level fields it leaves out keep the embedded default's values."""
        path = Path(path)
        try:
            text = path.read_text("utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: cannot read: not UTF-8 ({exc.reason})") from None
        try:
            doc = load_yaml(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f":{mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or "syntax error"
            raise ConfigError(f"{path}{where}: invalid YAML: {problem}") from None
        data = doc.data if doc.data is not None else {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}:1: the top level must be a mapping")
        merged = _default_mapping()
        merged.update(data)
        return _Parser(str(path), doc).config(merged)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "<config>") -> MockConfig:
        return _Parser(source).config(data)

    # -- derived -------------------------------------------------------------------------

    def replace(self, **changes: Any) -> MockConfig:
        return dataclasses.replace(self, **changes)

    def to_mapping(self) -> dict[str, Any]:
        """A YAML-able mapping that ``from_mapping`` reads back to an equal config."""

        def plain(value: Any) -> Any:
            if isinstance(value, tuple | list | frozenset):
                return [
                    plain(v) for v in (sorted(value) if isinstance(value, frozenset) else value)
                ]
            if dataclasses.is_dataclass(value) and not isinstance(value, type):
                return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
            return value

        return {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


class _Parser:
    """Turns a mapping into a MockConfig, naming the source and field on every error."""

    def __init__(self, source: str, doc: YamlDocument | None = None) -> None:
        self.source = source
        self.doc = doc

    def fail(self, where: str, message: str) -> ConfigError:
        line = self.doc.line_of(where) if self.doc is not None else None
        location = f"{self.source}:{line}" if line else self.source
        return ConfigError(f"{location}: {where}: {message}")

    def config(self, data: Mapping[str, Any]) -> MockConfig:
        if not isinstance(data, Mapping):
            raise self.fail("<top>", "must be a mapping")
        known = {f.name for f in dataclasses.fields(MockConfig)}
        unknown = sorted(str(name) for name in set(data) - known)
        if unknown:
            raise self.fail(unknown[0], f"unknown field (known: {', '.join(sorted(known))})")
        kwargs: dict[str, Any] = {}
        for name in (
            "seed",
            "insufficient_quota_status",
            "max_body_bytes",
            "min_output_tokens",
            "max_output_tokens",
            "usage_log_size",
            "ledger_size",
            "embedding_dimensions",
            "retry_times",
        ):
            if name in data:
                kwargs[name] = self.integer(name, data[name], minimum=0)
        if "model_budget_status" in data:
            status = self.integer("model_budget_status", data["model_budget_status"], 400)
            if status > 599:
                raise self.fail("model_budget_status", f"must be at most 599, got {status!r}")
            kwargs["model_budget_status"] = status
        for name in ("ttft_ms", "itl_ms", "hang_seconds", "rate_window_seconds"):
            if name in data:
                kwargs[name] = self.number(name, data[name])
        if "rpm" in data:
            kwargs["rpm"] = None if data["rpm"] is None else self.integer("rpm", data["rpm"], 1)
        if "mode" in data:
            kwargs["mode"] = self.choice("mode", data["mode"], ("gateway", "upstream"))
        if "path_style" in data:
            kwargs["path_style"] = self.choice(
                "path_style", data["path_style"], ("standard", "prefixed", "both")
            )
        if "admin_token" in data:
            kwargs["admin_token"] = self.string("admin_token", data["admin_token"])
        if "defects" in data:
            from gateprobe.mock.defects import DEFECTS

            names = self.strings("defects", data["defects"])
            for name in names:
                if name not in DEFECTS:
                    raise self.fail("defects", f"unknown defect {name!r}")
            kwargs["defects"] = frozenset(names)
        accounts = tuple(self.account(i, a) for i, a in enumerate(self.items("accounts", data)))
        models = tuple(self.model(i, m) for i, m in enumerate(self.items("models", data)))
        channels = tuple(self.channel(i, c) for i, c in enumerate(self.items("channels", data)))
        keys = tuple(self.key(i, k) for i, k in enumerate(self.items("keys", data)))
        self.cross_check(accounts, keys, models, channels)
        if "channels" in data and not channels:
            raise self.fail("channels", "at least one channel is needed")
        kwargs.update(accounts=accounts, keys=keys, models=models)
        if channels:
            kwargs["channels"] = channels
        cfg = MockConfig(**kwargs)
        if cfg.min_output_tokens > cfg.max_output_tokens:
            raise self.fail("min_output_tokens", "must not exceed max_output_tokens")
        return cfg

    def cross_check(
        self,
        accounts: tuple[AccountConfig, ...],
        keys: tuple[KeyConfig, ...],
        models: tuple[ModelConfig, ...],
        channels: tuple[ChannelConfig, ...],
    ) -> None:
        account_names = {a.name for a in accounts}
        for label, names in (
            ("accounts", [a.name for a in accounts]),
            ("keys", [k.name for k in keys]),
            ("models", [m.id for m in models]),
            ("channels", [c.id for c in channels]),
        ):
            seen: set[str] = set()
            for name in names:
                if name in seen:
                    raise self.fail(label, f"duplicate name {name!r}")
                seen.add(name)
        secrets: set[str] = set()
        for i, key in enumerate(keys):
            if key.account not in account_names:
                raise self.fail(f"keys[{i}].account", f"no account named {key.account!r}")
            if key.secret in secrets:
                raise self.fail(f"keys[{i}].secret", "duplicate secret")
            secrets.add(key.secret)

    def items(self, name: str, data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        value = data.get(name) or []
        if not isinstance(value, list):
            raise self.fail(name, "must be a list")
        for i, item in enumerate(value):
            if not isinstance(item, Mapping):
                raise self.fail(f"{name}[{i}]", "must be a mapping")
        return value

    def fields(self, where: str, item: Mapping[str, Any], cls: type) -> None:
        known = {f.name for f in dataclasses.fields(cls)}
        for name in item:
            if name not in known:
                raise self.fail(
                    f"{where}.{name}", f"unknown field (known: {', '.join(sorted(known))})"
                )

    def account(self, i: int, item: Mapping[str, Any]) -> AccountConfig:
        where = f"accounts[{i}]"
        self.fields(where, item, AccountConfig)
        return AccountConfig(
            name=self.string(f"{where}.name", item.get("name")),
            balance=self.integer(f"{where}.balance", item.get("balance", 0), 0),
        )

    def key(self, i: int, item: Mapping[str, Any]) -> KeyConfig:
        where = f"keys[{i}]"
        self.fields(where, item, KeyConfig)
        quota = item.get("quota")
        rpm = item.get("rpm")
        models = item.get("models")
        return KeyConfig(
            name=self.string(f"{where}.name", item.get("name")),
            secret=self.string(f"{where}.secret", item.get("secret")),
            account=self.string(f"{where}.account", item.get("account")),
            status=self.choice(  # type: ignore[arg-type]
                f"{where}.status", item.get("status", "enabled"), ("enabled", "disabled", "expired")
            ),
            quota=None if quota is None else self.integer(f"{where}.quota", quota, 0),
            models=None if models is None else tuple(self.strings(f"{where}.models", models)),
            variant=self.string(f"{where}.variant", item.get("variant", "default")),
            rpm=None if rpm is None else self.integer(f"{where}.rpm", rpm, 1),
        )

    def model(self, i: int, item: Mapping[str, Any]) -> ModelConfig:
        where = f"models[{i}]"
        self.fields(where, item, ModelConfig)
        model_id = self.string(f"{where}.id", item.get("id"))
        if "--" in model_id or "/" in model_id or ":" in model_id:
            raise self.fail(f"{where}.id", "must not contain '--', '/' or ':'")
        protocols = tuple(self.strings(f"{where}.protocols", item.get("protocols", PROTOCOLS)))
        for p in protocols:
            if p not in PROTOCOLS:
                raise self.fail(f"{where}.protocols", f"unknown protocol {p!r}")
        caps = tuple(self.strings(f"{where}.capabilities", item.get("capabilities", ["chat"])))
        for c in caps:
            if c not in CAPABILITIES:
                raise self.fail(f"{where}.capabilities", f"unknown capability {c!r}")
        variants = item.get("variants")
        per_call = item.get("per_call")
        budget = item.get("budget")
        ttft, itl = item.get("ttft_ms"), item.get("itl_ms")
        return ModelConfig(
            id=model_id,
            protocols=protocols,
            capabilities=caps,
            variants=None
            if variants is None
            else tuple(self.strings(f"{where}.variants", variants)),
            input_ratio=self.number(f"{where}.input_ratio", item.get("input_ratio", 1.0)),
            completion_ratio=self.number(
                f"{where}.completion_ratio", item.get("completion_ratio", 1.0)
            ),
            per_call=None if per_call is None else self.integer(f"{where}.per_call", per_call, 0),
            max_output_tokens=self.integer(
                f"{where}.max_output_tokens", item.get("max_output_tokens", 1024), 1
            ),
            ttft_ms=None if ttft is None else self.number(f"{where}.ttft_ms", ttft),
            itl_ms=None if itl is None else self.number(f"{where}.itl_ms", itl),
            owned_by=self.string(f"{where}.owned_by", item.get("owned_by", "gateprobe")),
            budget=None if budget is None else self.integer(f"{where}.budget", budget, 0),
        )

    def channel(self, i: int, item: Mapping[str, Any]) -> ChannelConfig:
        where = f"channels[{i}]"
        self.fields(where, item, ChannelConfig)
        return ChannelConfig(
            id=self.string(f"{where}.id", item.get("id")),
            models=tuple(self.strings(f"{where}.models", item.get("models", ["*"]))),
            multiplier=self.number(f"{where}.multiplier", item.get("multiplier", 1.0)),
        )

    # -- scalar validators ---------------------------------------------------------------

    def string(self, where: str, value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(where, f"must be a non-empty string, got {value!r}")
        return value

    def strings(self, where: str, value: Any) -> list[str]:
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise self.fail(where, "must be a list of strings")
        return list(value)

    def integer(self, where: str, value: Any, minimum: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(where, f"must be an integer >= {minimum}, got {value!r}")
        return value

    def number(self, where: str, value: Any) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < 0
        ):
            raise self.fail(where, f"must be a finite number >= 0, got {value!r}")
        return float(value)

    def choice(self, where: str, value: Any, options: tuple[str, ...]) -> str:
        if value not in options:
            raise self.fail(where, f"must be one of {', '.join(options)}, got {value!r}")
        return str(value)


def _default_mapping() -> dict[str, Any]:
    text = resources.files("gateprobe.mock").joinpath("default.yaml").read_text("utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return data
