"""Load profiles: what a load run sends, how requests arrive, for how long, and its SLOs.

A profile is a YAML file validated against ``schemas/load_profile.schema.json``; the bundled
ones live in ``loadtests/profiles/`` (``chat-steady``, ``mixed-protocols``, ...). Command-line
options override its fields (``--users``, ``--rate``, ``--duration``, ``--slo key=value``).
Bad input raises ``UsageError`` naming the file, line and field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gateprobe import protocols
from gateprobe._files import load_documents, validate_document
from gateprobe._resources import resource_dir
from gateprobe.errors import UsageError

__all__ = [
    "LoadProfile",
    "LoadSettings",
    "RequestSpec",
    "Shape",
    "bundled_profiles",
    "load_profile",
    "parse_duration",
    "profile_dir",
    "profile_path",
]

_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: float | int | str, *, what: str = "duration") -> float:
    """Seconds from ``30``, ``"30s"``, ``"5m"``, ``"1m30s"`` or ``"250ms"``."""
    if isinstance(value, bool):
        raise UsageError(f"{what}: not a duration: {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise UsageError(f"{what}: must be >= 0, got {value!r}")
        return float(value)
    text = str(value).strip()
    try:
        return parse_duration(float(text), what=what)
    except ValueError:
        pass
    position, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT[match.group(2)]
        position = match.end()
    if position != len(text) or not text:
        raise UsageError(f"{what}: not a duration: {value!r} (use 30, 30s, 5m, 1m30s, 250ms)")
    return total


@dataclass(frozen=True)
class RequestSpec:
    """One entry of the request mix; ``spec()`` is what ``protocol.build_request`` takes."""

    name: str
    protocol: str
    operation: str
    stream: bool | str = False
    model: str | None = None
    key: str = "valid"
    body: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str | None] = field(default_factory=dict)
    weight: int = 1

    def spec(self) -> dict[str, Any]:
        body = dict(self.body)
        if self.stream is True:
            # Server-counted output tokens instead of an estimate (see metrics.py), where
            # the API sends them only when asked (OpenAI chat's stream_options)
            api = protocols.api(self.protocol, self.operation)
            for name, value in api.stream_usage_request.items():
                body.setdefault(name, value)
        out: dict[str, Any] = {
            "protocol": self.protocol,
            "operation": self.operation,
            "stream": self.stream,
            "key": self.key,
            "headers": dict(self.headers),
        }
        if body:
            out["body"] = body
        if self.model:
            out["model"] = self.model
        return out


@dataclass(frozen=True)
class LoadSettings:
    mode: str = "closed"  # closed | open
    users: int = 10
    spawn_rate: float = 10.0
    think_time: float = 0.0
    rate: float | None = None  # open loop: requests per second, all processes together
    arrival: str = "constant"  # constant | poisson


@dataclass(frozen=True)
class Shape:
    """How many users over time (seconds from the start of the run, warmup included)."""

    kind: str  # step | spike | stages
    stages: tuple[tuple[float, int, float], ...]  # (end time, users, spawn rate)

    def at(self, elapsed: float) -> tuple[int, float] | None:
        for end, users, spawn_rate in self.stages:
            if elapsed < end:
                return users, spawn_rate
        return None

    @property
    def length(self) -> float:
        return self.stages[-1][0] if self.stages else 0.0

    @property
    def peak_users(self) -> int:
        return max((users for _, users, _ in self.stages), default=0)


@dataclass(frozen=True)
class LoadProfile:
    name: str
    source: str
    requests: tuple[RequestSpec, ...]
    load: LoadSettings = field(default_factory=LoadSettings)
    duration: float = 30.0  # the measured window, after the warmup
    warmup: float = 0.0
    shape: Shape | None = None
    slo: Mapping[str, float] = field(default_factory=dict)
    mock_ttft_ms: float = 200.0
    mock_itl_ms: float = 20.0
    description: str = ""

    def metadata(self) -> dict[str, Any]:
        """What a report says of the profile it ran."""
        return {
            "name": self.name,
            "source": self.source,
            "mode": self.load.mode,
            "users": self.load.users,
            "rate": self.load.rate,
            "arrival": self.load.arrival if self.load.mode == "open" else None,
            "duration_s": self.duration,
            "warmup_s": self.warmup,
            "shape": self.shape.kind if self.shape else None,
        }

    @property
    def run_time(self) -> float:
        """Seconds Locust runs: warmup plus the measured window."""
        return self.warmup + self.duration

    def with_overrides(self, overrides: Mapping[str, Any]) -> LoadProfile:
        """Apply command-line overrides: users, spawn_rate, rate, arrival, duration, warmup,
        slo, mock_ttft_ms, mock_itl_ms."""
        load = self.load
        changes: dict[str, Any] = {}
        for name in ("users", "spawn_rate", "arrival", "think_time"):
            if overrides.get(name) is not None:
                load = replace(load, **{name: overrides[name]})
        if overrides.get("rate") is not None:
            load = replace(load, rate=float(overrides["rate"]), mode="open")
        if overrides.get("mode") is not None:
            load = replace(load, mode=overrides["mode"])
        if load.mode == "open" and not load.rate:
            raise UsageError("open-loop arrivals need a rate (--rate RPS or load.rate)")
        changes["load"] = load
        if overrides.get("duration") is not None:
            changes["duration"] = parse_duration(overrides["duration"], what="--duration")
        if overrides.get("warmup") is not None:
            changes["warmup"] = parse_duration(overrides["warmup"], what="--warmup")
        if overrides.get("slo"):
            changes["slo"] = {**self.slo, **overrides["slo"]}
        for name in ("mock_ttft_ms", "mock_itl_ms"):
            if overrides.get(name) is not None:
                changes[name] = float(overrides[name])
        if overrides.get("users") is not None and self.shape is not None:
            changes["shape"] = None  # an explicit user count replaces the profile's shape
        return replace(self, **changes)


def profile_dir() -> Path:
    return resource_dir("loadtests/profiles")


def bundled_profiles() -> list[str]:
    return sorted(p.stem for p in profile_dir().glob("*.yaml"))


def profile_path(name_or_path: str | Path) -> Path:
    """A file path as given, or the bundled profile of that name."""
    given = Path(name_or_path)
    if given.suffix in (".yaml", ".yml") or given.exists() or "/" in str(name_or_path):
        return given
    path = profile_dir() / f"{name_or_path}.yaml"
    if not path.is_file():
        known = ", ".join(bundled_profiles())
        raise UsageError(f"no load profile named {str(name_or_path)!r} (bundled: {known})")
    return path


def load_profile(name_or_path: str | Path) -> LoadProfile:
    path = profile_path(name_or_path)
    if not path.is_file():
        raise UsageError("load profile not found", file=str(path))
    docs = load_documents(path)
    if len(docs) != 1 or not isinstance(docs[0].data, dict):
        raise UsageError("a load profile is one YAML mapping", file=str(path))
    doc = docs[0]
    validate_document(doc, "load_profile.schema.json", path)
    data: dict[str, Any] = doc.data
    source = str(path)

    def duration(field_name: str, value: Any) -> float:
        try:
            return parse_duration(value, what=field_name)
        except UsageError as exc:
            raise UsageError(
                str(exc).split(": ", 1)[-1],
                file=source,
                line=doc.line_of(field_name),
                field=field_name,
            ) from None

    requests: list[RequestSpec] = []
    names: set[str] = set()
    for index, item in enumerate(data["requests"]):
        where = f"requests[{index}]"
        stream = item.get("stream", False)
        if item["operation"] == "embeddings" and stream:
            raise UsageError(
                "embeddings do not stream",
                file=source,
                line=doc.line_of(f"{where}.stream"),
                field=f"{where}.stream",
            )
        known = protocols.operations(item["protocol"])
        if item["operation"] not in known:
            raise UsageError(
                f"{item['operation']} is not an operation of {item['protocol']} "
                f"(its operations: {', '.join(known)})",
                file=source,
                line=doc.line_of(f"{where}.operation"),
                field=f"{where}.operation",
            )
        if stream == "array" and "array" not in protocols.primary(item["protocol"]).stream_modes:
            raise UsageError(
                "only Gemini streams a JSON array",
                file=source,
                line=doc.line_of(f"{where}.stream"),
                field=f"{where}.stream",
            )
        default_name = f"{item['protocol']} {item['operation']}" + (" stream" if stream else "")
        name = item.get("name") or default_name
        if name in names:
            raise UsageError(
                f"duplicate request name {name!r} (set a distinct name)",
                file=source,
                line=doc.line_of(where),
                field=f"{where}.name",
            )
        names.add(name)
        requests.append(
            RequestSpec(
                name=name,
                protocol=item["protocol"],
                operation=item["operation"],
                stream=stream,
                model=item.get("model"),
                key=item.get("key", "valid"),
                body=dict(item.get("body") or {}),
                headers=dict(item.get("headers") or {}),
                weight=int(item.get("weight", 1)),
            )
        )
    raw_load = data.get("load") or {}
    load = LoadSettings(
        mode=raw_load.get("mode", "open" if raw_load.get("rate") else "closed"),
        users=int(raw_load.get("users", 10)),
        spawn_rate=float(raw_load.get("spawn_rate", raw_load.get("users", 10))),
        think_time=duration("load.think_time", raw_load.get("think_time", 0)),
        rate=float(raw_load["rate"]) if raw_load.get("rate") else None,
        arrival=raw_load.get("arrival", "constant"),
    )
    if load.mode == "open" and not load.rate:
        raise UsageError(
            "open-loop arrivals need a rate",
            file=source,
            line=doc.line_of("load.mode"),
            field="load.rate",
        )
    warmup = duration("warmup", data.get("warmup", 0))
    run_duration = duration("duration", data.get("duration", 30))
    shape = _shape(data.get("shape"), duration, warmup + run_duration)
    mock = data.get("mock") or {}
    return LoadProfile(
        name=data["name"],
        source=source,
        requests=tuple(requests),
        load=load,
        duration=run_duration,
        warmup=warmup,
        shape=shape,
        slo={k: float(v) for k, v in (data.get("slo") or {}).items()},
        mock_ttft_ms=float(mock.get("ttft_ms", 200.0)),
        mock_itl_ms=float(mock.get("itl_ms", 20.0)),
        description=data.get("description", ""),
    )


def _shape(raw: Any, duration: Any, run_time: float) -> Shape | None:
    if not raw:
        return None
    kind = raw["kind"]
    stages: list[tuple[float, int, float]] = []
    if kind == "step":
        every = duration("shape.every", raw["every"])
        if every <= 0:
            raise UsageError("shape.every: must be > 0")
        users, t = int(raw["start"]), 0.0
        cap = int(raw.get("max", 1 << 30))
        rate = float(raw.get("spawn_rate", max(1, raw["step"])))
        while t < run_time:
            stages.append((min(t + every, run_time), min(users, cap), rate))
            t += every
            users += int(raw["step"])
    elif kind == "spike":
        at, hold = duration("shape.at", raw["at"]), duration("shape.hold", raw["hold"])
        rate = float(raw.get("spawn_rate", max(raw["peak"], 1)))
        stages = [
            (at, int(raw["base"]), rate),
            (at + hold, int(raw["peak"]), rate),
            (max(run_time, at + hold), int(raw["base"]), rate),
        ]
        stages = [s for i, s in enumerate(stages) if i == 0 or s[0] > stages[i - 1][0]]
    else:
        t = 0.0
        for index, stage in enumerate(raw["stages"]):
            t += duration(f"shape.stages[{index}].duration", stage["duration"])
            users = int(stage["users"])
            stages.append((t, users, float(stage.get("spawn_rate", max(users, 1)))))
    return Shape(kind, tuple(stages))
