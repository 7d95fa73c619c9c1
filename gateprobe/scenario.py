"""Scenarios: YAML files under suites/<area>/, validated, parametrized, ready to run.

A file may hold several scenarios separated by ``---``. Validation happens at load time,
against schemas/scenario.schema.json and against the check registry (each check's name and
the argument it takes), so a typo in a field, a check name or a check's value is reported with
its file, line and field before anything is sent. Templated values are checked once rendered,
when the scenario runs.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateprobe._files import load_documents, validate_document
from gateprobe.checks import REGISTRY
from gateprobe.checks._registry import argument_problem
from gateprobe.errors import UsageError
from gateprobe.templating import names_in

__all__ = ["Instance", "Scenario", "Step", "load_scenarios", "scenario_files"]

# Filled in by build_request, not by templating: ``{prefix}`` (the protocol's path prefix in a
# raw ``path``) and ``{key}`` (the secret in ``auth: raw:<value>``).
CONTEXT_ROOTS = {"target", "prefix", "key"}


@dataclass(frozen=True)
class Step:
    index: int
    name: str
    request: dict[str, Any]
    expect: dict[str, Any]
    save: dict[str, str]
    line: int


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    area: str
    path: Path
    line: int
    end_line: int
    steps: tuple[Step, ...]
    capabilities: tuple[str, ...] = ()
    key_kinds: tuple[str, ...] = ()
    marks: tuple[str, ...] = ()
    parameters: dict[str, list[Any]] = field(default_factory=dict)
    description: str = ""

    def instances(self) -> Iterator[Instance]:
        if not self.parameters:
            yield Instance(self, {}, "")
            return
        names = list(self.parameters)
        for combo in itertools.product(*(self.parameters[n] for n in names)):
            params = dict(zip(names, combo, strict=True))
            yield Instance(self, params, "-".join(_param_label(v) for v in combo))

    def source_lines(self) -> list[str]:
        try:
            lines = self.path.read_text("utf-8").splitlines()
        except OSError:
            return []
        return lines[self.line - 1 : self.end_line]


def _param_label(value: Any) -> str:
    """A short id for a parameter value: a mapping's ``id`` (or first value), else the value."""
    if isinstance(value, dict) and value:
        return str(value.get("id", next(iter(value.values()))))
    return str(value)


@dataclass(frozen=True)
class Instance:
    """One scenario with one combination of its parameters."""

    scenario: Scenario
    params: dict[str, Any]
    param_id: str

    @property
    def name(self) -> str:
        return f"{self.scenario.id}[{self.param_id}]" if self.param_id else self.scenario.id


def scenario_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.yaml") if p.is_file()) + sorted(
        p for p in root.rglob("*.yml") if p.is_file()
    )


def load_scenarios(path: Path, suites_root: Path | None = None) -> list[Scenario]:
    docs = load_documents(path)
    text_lines = len(path.read_text("utf-8").splitlines())
    starts = [d.first_line for d in docs] + [text_lines + 1]
    scenarios = []
    for position, doc in enumerate(docs):
        if not isinstance(doc.data, dict):
            raise UsageError("a scenario must be a mapping", file=str(path), line=doc.first_line)
        validate_document(doc, "scenario.schema.json", path)
        data: dict[str, Any] = doc.data
        params = data.get("parametrize") or {}
        known = CONTEXT_ROOTS | set(params)
        steps = []
        for i, raw in enumerate(data["steps"]):
            prefix = f"steps[{i}]"
            for check, argument in (raw.get("expect") or {}).items():
                if check not in REGISTRY:
                    raise UsageError(
                        f"unknown check {check!r} (known: {', '.join(sorted(REGISTRY))})",
                        file=str(path),
                        line=doc.line_of(f"{prefix}.expect.{check}"),
                        field=f"{prefix}.expect.{check}",
                    )
                problem = argument_problem(check, argument, rendered=False)
                if problem is not None:
                    site = f"{prefix}.expect.{check}{problem[0]}"
                    raise UsageError(problem[1], file=str(path), line=doc.line_of(site), field=site)
            for part in ("request", "expect"):
                for name in names_in(raw.get(part)) - known:
                    site = _template_site(raw.get(part), name, f"{prefix}.{part}")
                    raise UsageError(
                        f"template names {name!r}, which is neither a parameter, a value saved "
                        f"by an earlier step, nor 'target'",
                        file=str(path),
                        line=doc.line_of(site),
                        field=site,
                    )
            save = dict(raw.get("save") or {})
            known |= set(save)
            steps.append(
                Step(
                    i,
                    raw.get("name") or f"step {i + 1}",
                    dict(raw["request"]),
                    dict(raw.get("expect") or {}),
                    save,
                    doc.line_of(prefix) or doc.first_line,
                )
            )
        requires = data.get("requires") or {}
        area = data.get("area") or _area_of(path, suites_root)
        scenarios.append(
            Scenario(
                id=data["id"],
                title=data["title"],
                area=area,
                path=path,
                # The first key's line, past any comments that open the document.
                line=min(
                    (n for k, n in doc.lines.items() if "." not in k and "[" not in k),
                    default=doc.first_line,
                ),
                # The line before the next document's `---`, or the last line of the file.
                end_line=starts[position + 1] - (2 if position + 1 < len(docs) else 1),
                steps=tuple(steps),
                capabilities=tuple(requires.get("capabilities") or ()),
                key_kinds=tuple(requires.get("keys") or ()),
                marks=tuple(data.get("marks") or ()),
                parameters=dict(params),
                description=data.get("description", ""),
            )
        )
    return scenarios


def _template_site(value: Any, name: str, path: str) -> str:
    """The field path of the first value whose templates name ``name`` (for error messages)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if name in names_in(key) | names_in(item):
                return _template_site(item, name, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if name in names_in(item):
                return _template_site(item, name, f"{path}[{i}]")
    return path


def _area_of(path: Path, suites_root: Path | None) -> str:
    if suites_root is not None:
        try:
            relative = path.resolve().relative_to(suites_root.resolve())
        except ValueError:
            relative = None
        if relative is not None and len(relative.parts) > 1:
            return relative.parts[0]
    return path.parent.name
