"""The comparison report: compare_dir/compare.json (``gateprobe compare``) -> compare.html.

The matrix shows the rows whose verdicts differ first (highlighted), the rest folded; with a
load comparison, each target's figures side by side and the distributions of TTFT, ITL and
end-to-end latency overlaid, read from each target's ``<load_dir>/requests.jsonl``. A target
whose directory is gone still has its figures in the table; it only misses from the plots.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gateprobe.load.record import METRICS_BY_NAME
from gateprobe.load.summary import measured_records
from gateprobe.report.html import plots
from gateprobe.report.html.load_view import DISTRIBUTIONS, STATS
from gateprobe.report.html.render import render

__all__ = ["compare_context", "write_compare_report"]

# the load figures set side by side: (section, key, label, digits)
_LOAD_FIGURES = (
    ("requests", "measured", "measured requests", 0),
    ("requests", "ok", "ok", 0),
    ("requests", "failed", "failed", 0),
    ("requests", "error_ratio", "error ratio", 4),
    ("throughput", "requests_per_s", "requests/s", 2),
    ("throughput", "output_tokens_per_s", "output tokens/s", 2),
    ("throughput", "peak_output_tokens_per_s", "peak output tokens/s", 0),
    ("throughput", "observed_concurrency", "observed concurrency", 2),
)


def _load_dir(entry: Mapping[str, Any], target: Mapping[str, Any] | None) -> Path | None:
    if entry.get("summary_path"):
        return Path(str(entry["summary_path"])).parent
    if target and target.get("load_dir"):
        return Path(str(target["load_dir"]))
    return None


def _load(load: Mapping[str, Any], targets: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    by_label = {str(t.get("label")): t for t in targets}
    entries = list(load.get("targets") or ())
    metrics = [m for m in load.get("metrics") or () if isinstance(m, str)]
    # one row per metric and target: the distributions of a metric read together
    rows = [
        {
            "metric": name,
            "first": index == 0,
            "label": entry.get("label"),
            "index": index,
            "stats": ((entry.get("metrics") or {}).get(name) or {}),
        }
        for name in metrics
        for index, entry in enumerate(entries)
    ]
    figures = [
        {
            "section": section,
            "key": key,
            "label": label,
            "digits": digits,
            "cells": [(e.get(section) or {}).get(key) for e in entries],
        }
        for section, key, label, digits in _LOAD_FIGURES
    ]
    # the samples of each distribution, per target, from its records
    samples: dict[str, list[tuple[str, list[float]]]] = {name: [] for name in DISTRIBUTIONS}
    courses: list[tuple[str, list[Any]]] = []
    for entry in entries:
        directory = _load_dir(entry, by_label.get(str(entry.get("label"))))
        path = directory / "requests.jsonl" if directory else None
        if path is None or not path.is_file():
            continue
        measured = list(measured_records(path))
        courses.append((str(entry.get("label")), measured))
        ok = [r for r in measured if r.get("ok")]
        for name in DISTRIBUTIONS:
            samples[name].append((str(entry.get("label")), list(METRICS_BY_NAME[name].samples(ok))))
    svgs = [
        plots.cdf_svg(series, title, METRICS_BY_NAME[name].unit, f"compare-{name}")
        for name, title in DISTRIBUTIONS.items()
        if (series := [s for s in samples[name] if s[1]])
    ]
    over_time = plots.over_time_overlay_svg(courses, "compare-over-time")
    if over_time is not None:
        svgs.append(over_time)
    return {"profile": load.get("profile"), "entries": entries, "rows": rows,
            "stats": ("count", *STATS), "figures": figures, "plots": svgs}  # fmt: skip


def compare_context(comparison: Mapping[str, Any]) -> dict[str, Any]:
    targets = list(comparison.get("targets") or ())
    rows = list(comparison.get("rows") or ())
    differing = [r for r in rows if r.get("differs")]
    load = comparison.get("load")
    return {
        "comparison": comparison,
        "targets": targets,
        "swatches": [plots.PALETTE[i % len(plots.PALETTE)] for i in range(len(targets))],
        "areas": list(comparison.get("areas") or ()),
        "differing": differing,
        "same": [r for r in rows if not r.get("differs")],
        "differing_count": comparison.get("differing", len(differing)),
        "load": _load(load, targets) if isinstance(load, Mapping) else None,
    }


def write_compare_report(compare_dir: Path) -> Path:
    """compare_dir/compare.json -> compare_dir/compare.html."""
    comparison = json.loads((compare_dir / "compare.json").read_text("utf-8"))
    return render("compare.html.j2", compare_dir / "compare.html", **compare_context(comparison))
