"""compare.json: runs of several targets side by side, built from their summary.json files.

A conformance run contributes a column to the matrix (scenario x target: verdict and reason)
and to the counts per area; a load run contributes its figures (latency percentiles,
throughput, requests and error classes). Rows are matched by scenario name (``id[params]``),
so targets that ran different selections still line up: a scenario one target did not run
has the verdict ``null`` there. A row *differs* when its verdicts are not all the same, and
rows that differ come first.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateprobe import __version__

__all__ = [
    "LOAD_METRICS",
    "VERDICTS",
    "Column",
    "build_comparison",
]

VERDICTS = ("pass", "fail", "skip", "deviation")
# The load figures a comparison sets side by side (the distributions of load/record.METRICS
# that every streaming run has).
LOAD_METRICS = ("ttft_ms", "itl_ms", "tpot_ms", "e2e_ms")


@dataclass(frozen=True)
class Column:
    """One target of a comparison: its label and what ran against it (either may be absent:
    a load-only comparison, or a target whose run produced no summary)."""

    label: str
    run_dir: Path | None = None
    run_summary: Mapping[str, Any] | None = None
    load_dir: Path | None = None
    load_summary: Mapping[str, Any] | None = None

    def target(self) -> Mapping[str, Any]:
        for summary in (self.run_summary, self.load_summary):
            target = summary.get("target") if summary else None
            if isinstance(target, Mapping):
                return target
        return {}


def build_comparison(columns: Sequence[Column], *, profile: str | None = None) -> dict[str, Any]:
    """The compare.json document of ``columns`` (in the order given)."""
    runs = [c.run_summary for c in columns]
    comparison: dict[str, Any] = {
        "gateprobe": __version__,
        "created": time.time(),
        "targets": [_target_entry(c) for c in columns],
        "areas": _areas(runs) if any(runs) else [],
        "rows": [],
        "differing": 0,
        "load": None,
    }
    if any(runs):
        rows = _rows(runs)
        comparison["rows"] = rows
        comparison["differing"] = sum(1 for row in rows if row["differs"])
    if any(c.load_summary for c in columns):
        comparison["load"] = _load(columns, profile)
    return comparison


def _target_entry(column: Column) -> dict[str, Any]:
    target = column.target()
    run = column.run_summary or {}
    return {
        "label": column.label,
        "name": target.get("name"),
        "base_url": target.get("base_url"),
        "run_dir": str(column.run_dir) if column.run_dir else None,
        "load_dir": str(column.load_dir) if column.load_dir else None,
        "totals": dict(run["totals"]) if run.get("totals") else None,
        "interrupted": bool(run.get("interrupted")),
        "strict": bool(run.get("strict")),
    }


def _areas(runs: Sequence[Mapping[str, Any] | None]) -> list[dict[str, Any]]:
    per_target: list[dict[str, Mapping[str, Any]]] = [
        {row["area"]: row for row in (run or {}).get("areas", ())} for run in runs
    ]
    names = sorted({area for table in per_target for area in table})
    empty = dict.fromkeys(VERDICTS, 0)
    return [
        {
            "area": area,
            "counts": [
                {v: int(table.get(area, empty).get(v, 0)) for v in VERDICTS} for table in per_target
            ],
        }
        for area in names
    ]


def _rows(runs: Sequence[Mapping[str, Any] | None]) -> list[dict[str, Any]]:
    by_target: list[dict[str, Mapping[str, Any]]] = [
        {str(s["name"]): s for s in (run or {}).get("scenarios", ())} for run in runs
    ]
    names = {name for scenarios in by_target for name in scenarios}
    rows = []
    for name in names:
        records = [scenarios.get(name) for scenarios in by_target]
        first = next(r for r in records if r is not None)
        cells = [
            {"verdict": r["verdict"], "reason": r.get("reason") or "", "checks": _failed_checks(r)}
            if r is not None
            else {"verdict": None, "reason": "not run on this target", "checks": []}
            for r in records
        ]
        rows.append(
            {
                "id": first.get("id"),
                "name": name,
                "area": first.get("area"),
                "title": first.get("title"),
                "file": first.get("file"),
                "line": first.get("line"),
                "differs": len({cell["verdict"] for cell in cells}) > 1,
                "cells": cells,
            }
        )
    rows.sort(key=lambda row: (not row["differs"], row["area"] or "", row["name"]))
    return rows


def _failed_checks(record: Mapping[str, Any]) -> list[str]:
    seen: list[str] = []
    for step in record.get("steps", ()):
        for failure in step.get("failures", ()):
            if failure["check"] not in seen:
                seen.append(failure["check"])
    return seen


def _load(columns: Sequence[Column], profile: str | None) -> dict[str, Any]:
    targets: list[dict[str, Any]] = []
    for column in columns:
        summary = column.load_summary
        if summary is None:
            targets.append({"label": column.label, "summary_path": None})
            continue
        metrics = summary.get("metrics") or {}
        targets.append(
            {
                "label": column.label,
                "summary_path": str(column.load_dir / "summary.json") if column.load_dir else None,
                "profile": summary.get("profile"),
                "interrupted": bool(summary.get("interrupted")),
                "metrics": {name: dict(metrics.get(name) or {"count": 0}) for name in LOAD_METRICS},
                "throughput": dict(summary.get("throughput") or {}),
                "requests": dict(summary.get("requests") or {}),
                "goodput": dict(summary.get("goodput") or {}),
                "slo": dict(summary.get("slo") or {}),
                "warnings": list(summary.get("warnings") or ()),
            }
        )
    profiles = {_profile_name(t.get("profile")) for t in targets} - {None}
    name = profile or (next(iter(profiles)) if len(profiles) == 1 else None)
    return {"profile": name, "metrics": list(LOAD_METRICS), "targets": targets}


def _profile_name(profile: Any) -> str | None:
    if isinstance(profile, Mapping):
        return str(profile.get("name")) if profile.get("name") else None
    return str(profile) if profile else None
