"""What ``gateprobe compare --target`` names: a target profile, or a variant of the bundled mock.

    --target my-gateway.yaml                      a gateway described by its profile
    --target mock                                 the bundled mock, as `gateprobe run` starts it
    --target mock:defect=stream-usage-zero        the mock with a known gateway bug
    --target mock:insufficient-quota-status=403,path-style=prefixed,label=new-api-like

A mock variant's *dialect* options (the insufficient-quota status, the path style) change what
the mock does and what its profile declares alike, since a gateway that declares its dialect
honestly conforms; a *defect* changes only what the mock does, so the suites find it.
Repeat ``defect=`` for several. ``label=`` names the column (default: ``mock`` and the
options, e.g. ``mock[defect=stream-usage-zero]``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gateprobe.errors import UsageError
from gateprobe.mock.config import PREFIXED_PATHS, MockConfig
from gateprobe.mock.defects import DEFECTS, describe_defects

__all__ = ["MOCK", "TargetSpec", "bundled_mock", "parse_target", "unique_labels"]

MOCK = "mock"
_PATH_STYLES = ("standard", "prefixed", "both")


@dataclass(frozen=True)
class TargetSpec:
    """One ``--target``: a profile file, or (``file`` None) a bundled mock variant."""

    text: str
    file: Path | None = None
    label: str | None = None
    defects: tuple[str, ...] = ()
    mock_options: dict[str, Any] = field(default_factory=dict)

    @property
    def is_mock(self) -> bool:
        return self.file is None

    def default_label(self) -> str:
        if self.label:
            return self.label
        if self.file is not None:
            return _profile_name(self.file) or self.file.stem
        options = [f"defect={d}" for d in self.defects] + [
            f"{k.replace('_', '-')}={v}" for k, v in self.mock_options.items()
        ]
        return f"{MOCK}[{','.join(options)}]" if options else MOCK

    def mock_config(self) -> MockConfig:
        config = MockConfig.default()
        if self.defects:
            config = config.replace(defects=config.defects | frozenset(self.defects))
        return config.replace(**self.mock_options) if self.mock_options else config


def parse_target(text: str) -> TargetSpec:
    """A ``--target`` value as a spec; UsageError naming the bad part."""
    if text != MOCK and not text.startswith(MOCK + ":"):
        path = Path(text)
        if not path.is_file():
            raise UsageError("target file not found", file=text)
        return TargetSpec(text, file=path)
    defects: list[str] = []
    options: dict[str, Any] = {}
    label = None
    body = text[len(MOCK) + 1 :] if text != MOCK else ""
    for part in filter(None, (p.strip() for p in body.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not value:
            raise UsageError(f"--target {text}: {part!r} is not OPTION=VALUE")
        key = key.strip().replace("_", "-")
        value = value.strip()
        if key == "defect":
            if value not in DEFECTS:
                raise UsageError(
                    f"--target {text}: unknown defect {value!r}; known defects:\n"
                    f"{describe_defects()}"
                )
            defects.append(value)
        elif key == "insufficient-quota-status":
            status = _int(text, key, value)
            if not 400 <= status <= 599:
                raise UsageError(f"--target {text}: {key} must be a 4xx or 5xx status")
            options["insufficient_quota_status"] = status
        elif key == "path-style":
            if value not in _PATH_STYLES:
                raise UsageError(f"--target {text}: {key} must be one of {', '.join(_PATH_STYLES)}")
            options["path_style"] = value
        elif key == "seed":
            options["seed"] = _int(text, key, value)
        elif key == "label":
            label = value
        else:
            raise UsageError(
                f"--target {text}: unknown mock option {key!r} (defect, "
                "insufficient-quota-status, path-style, seed, label)"
            )
    return TargetSpec(text, label=label, defects=tuple(defects), mock_options=options)


def _int(text: str, key: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"--target {text}: {key} takes an integer, not {value!r}") from None


def _profile_name(path: Path) -> str | None:
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except (OSError, yaml.YAMLError):
        return None  # load_target reports it properly when the run starts
    name = data.get("name") if isinstance(data, dict) else None
    return str(name) if name else None


def unique_labels(specs: list[TargetSpec]) -> list[str]:
    """Each spec's label, made unique (``name``, ``name#2``...) so no two columns share one."""
    labels: list[str] = []
    for spec in specs:
        label = spec.default_label()
        candidate, n = label, 1
        while candidate in labels:
            n += 1
            candidate = f"{label}#{n}"
        labels.append(candidate)
    return labels


def write_mock_profile(spec: TargetSpec, label: str, directory: Path) -> Path:
    """The bundled mock's profile, declaring the variant's dialect, as a file of the report."""
    from gateprobe.provision import MOCK_TARGET

    data = yaml.safe_load(MOCK_TARGET.read_text("utf-8"))
    data["name"] = label
    data["description"] = f"the bundled mock, started by gateprobe compare as {spec.text!r}"
    status = spec.mock_options.get("insufficient_quota_status")
    if status is not None:
        data.setdefault("dialect", {})["insufficient_quota_status"] = status
    if spec.mock_options.get("path_style") == "prefixed":
        data["paths"] = dict(PREFIXED_PATHS)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "target.yaml"
    path.write_text(
        "# written by gateprobe compare: the bundled mock's profile for this variant\n"
        + yaml.safe_dump(data, sort_keys=False),
        "utf-8",
    )
    return path


@contextmanager
def bundled_mock(spec: TargetSpec, profile: Path, **changes: Any) -> Iterator[str]:
    """The mock variant running on a free loopback port, provisioned with fresh keys, its
    variables set in this process's environment (restored after); yields its URL.
    ``changes``: further configuration (a load profile's delays)."""
    from gateprobe.provision import start_bundled_mock

    saved = dict(os.environ)
    server, env = start_bundled_mock(profile, spec.mock_config().replace(**changes))
    try:
        os.environ.update(env)
        yield server.url
    finally:
        server.stop()
        os.environ.clear()
        os.environ.update(saved)
