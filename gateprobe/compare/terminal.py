"""What ``gateprobe compare`` prints: totals per target, the rows that differ, load figures.

The terminal shows what a reader acts on; the rows that agree, the reasons in full and the
plots are in compare.html and compare.json.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["format_comparison"]

_PERCENTILES = ("p50", "p90", "p99")
_MAX_ROWS = 60  # differing rows shown; the rest are in the reports


def format_comparison(comparison: Mapping[str, Any], *, width: int | None = None) -> str:
    width = width or shutil.get_terminal_size((120, 24)).columns
    targets: Sequence[Mapping[str, Any]] = comparison["targets"]
    labels = [str(t["label"]) for t in targets]
    lines = ["", "comparison of " + ", ".join(f"[{n}] {label}" for n, label in _numbered(labels))]
    for n, target in _numbered(targets):
        totals = target.get("totals")
        where = target.get("base_url") or "-"
        if totals:
            lines.append(
                f"  [{n}] {totals['pass']} passed, {totals['fail']} failed, "
                f"{totals['skip']} skipped, {totals['deviation']} deviations  ({where})"
            )
    if comparison["rows"]:
        lines += _area_lines(comparison, len(targets))
        lines += _differing_lines(comparison, len(targets), width)
    if comparison.get("load"):
        lines += _load_lines(comparison["load"], len(targets))
    return "\n".join(lines)


def _numbered(items: Sequence[Any]) -> list[tuple[int, Any]]:
    return list(enumerate(items, start=1))


def _area_lines(comparison: Mapping[str, Any], count: int) -> list[str]:
    columns = "".join(f"{f'[{n}] pass/fail/skip':>22}" for n in range(1, count + 1))
    header = f"{'area':<14}{columns}"
    lines = ["", header, "-" * len(header)]
    for area in comparison["areas"]:
        cells = "".join(f"{_counts(c):>22}" for c in area["counts"])
        lines.append(f"{area['area']:<14}{cells}")
    return lines


def _counts(counts: Mapping[str, int]) -> str:
    text = f"{counts['pass']}/{counts['fail']}/{counts['skip']}"
    return text + (f" +{counts['deviation']} dev" if counts["deviation"] else "")


def _differing_lines(comparison: Mapping[str, Any], count: int, width: int) -> list[str]:
    differing = [row for row in comparison["rows"] if row["differs"]]
    total = len(comparison["rows"])
    if not differing:
        return ["", f"all {total} scenarios have the same verdict on every target"]
    lines = ["", f"{len(differing)} of {total} scenarios differ:"]
    name_width = min(48, max(len(row["name"]) for row in differing[:_MAX_ROWS]))
    for row in differing[:_MAX_ROWS]:
        verdicts = "  ".join(f"{_verdict(cell['verdict']):<9}" for cell in row["cells"])
        reason = next(
            (c["reason"] for c in row["cells"] if c["verdict"] == "fail" and c["reason"]), ""
        )
        line = f"  {row['name']:<{name_width}}  {verdicts}  {reason}".rstrip()
        lines.append(line if len(line) <= width else line[: width - 1] + "…")
    if len(differing) > _MAX_ROWS:
        lines.append(f"  … {len(differing) - _MAX_ROWS} more in compare.html and compare.json")
    return lines


def _verdict(verdict: str | None) -> str:
    return "not run" if verdict is None else verdict


def _load_lines(load: Mapping[str, Any], count: int) -> list[str]:
    targets = load["targets"]
    title = f"load ({load['profile']})" if load.get("profile") else "load"
    columns = "".join(f"{f'[{n}]':>14}" for n in range(1, count + 1))
    header = f"{title:<24}{columns}"
    lines = ["", header, "-" * len(header)]
    for metric in load["metrics"]:
        for q in _PERCENTILES:
            cells = "".join(
                f"{_number((t.get('metrics') or {}).get(metric, {}).get(q)):>14}" for t in targets
            )
            lines.append(f"{metric + ' ' + q:<24}{cells}")
    for key, name in (
        ("requests_per_s", "requests/s"),
        ("output_tokens_per_s", "output tokens/s"),
    ):
        cells = "".join(f"{_number((t.get('throughput') or {}).get(key)):>14}" for t in targets)
        lines.append(f"{name:<24}{cells}")
    cells = "".join(f"{_number((t.get('requests') or {}).get('error_ratio')):>14}" for t in targets)
    lines.append(f"{'error ratio':<24}{cells}")
    for n, target in _numbered(targets):
        classes = (target.get("requests") or {}).get("by_error_class") or {}
        if classes:
            text = ", ".join(f"{k} {v}" for k, v in sorted(classes.items()))
            lines.append(f"  [{n}] errors: {text}")
    return lines


def _number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)
