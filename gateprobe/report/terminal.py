"""What ``gateprobe run`` prints of its failures: one line per failed scenario, grouped by cause.

pytest's own section per failure (the scenario's YAML, resolved values, expected and actual,
the masked exchange, a curl command: dozens of lines each) is left out of the terminal by
``QuietFailures`` unless ``gateprobe run -v`` asks for it; junit.xml keeps it whole either
way. After the per-area table, ``failure_lines`` lists the failed scenarios under the causes
of summary.json's ``failure_groups`` (gateprobe/report/groups.py), the largest first: a
heading with the count, then each scenario's name, file:line and message, fitted to the
terminal's width.

Only the failures of scenarios are left out (the report of a scenario whose item raised
``ScenarioFailure``, marked ``FAILED_PROPERTY`` by the plugin): an error collecting a file,
in a fixture or of gateprobe around a scenario is printed by pytest as before, since the
messages of gateprobe run point at "pytest's output above".
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Generator, Mapping
from pathlib import Path
from typing import Any

import pytest

from gateprobe.report.groups import FailureLine, failure_lines

__all__ = ["FAILED_PROPERTY", "QuietFailures", "failure_report"]

# user property of a scenario's report when the scenario failed (ScenarioFailure raised)
FAILED_PROPERTY = "gateprobe_failed"
_FALLBACK_WIDTH = 120  # not a terminal (a CI log, a pipe): wide, as such logs are shown
_NAME_MIN = 24  # a name is cut no shorter than this, the line overflowing instead
_WHERE_MAX = 40
_MESSAGE_MIN = 20


def _is_scenario_failure(report: Any) -> bool:
    return any(name == FAILED_PROPERTY for name, _ in getattr(report, "user_properties", ()))


class QuietFailures:
    """A pytest plugin leaving the scenarios' failures out of pytest's FAILURES section and
    short test summary (gateprobe lists them after its table); the counts stay pytest's."""

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> Generator[None, None, None]:
        # outermost wrapper: pytest's own reads stats["failed"] inside; its count line
        # ("3 failed, 5 passed") comes after this hook, from the restored list
        stats = terminalreporter.stats
        failed = stats.get("failed")
        if failed:
            stats["failed"] = [r for r in failed if not _is_scenario_failure(r)]
        try:
            return (yield)
        finally:
            if failed:
                stats["failed"] = failed


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def _where(line: FailureLine) -> str:
    path = Path(line.file)
    try:
        shown = os.path.relpath(path)
    except ValueError:  # another drive
        shown = str(path)
    if shown.startswith(".."):  # outside the working directory: from the suites folder on
        parts = path.parts
        shown = str(Path(*parts[parts.index("suites") :])) if "suites" in parts else str(path)
    return f"{shown}:{line.line}"


def failure_report(summary: Mapping[str, Any], width: int | None = None) -> list[str]:
    """The lines listing the failed scenarios of ``summary`` (summary.json) by cause; none
    when nothing failed."""
    groups = summary.get("failure_groups") or []
    if not groups:
        return []
    width = width or shutil.get_terminal_size((_FALLBACK_WIDTH, 24)).columns
    lines = failure_lines(summary.get("scenarios") or [])
    count = sum(g["count"] for g in groups)
    out = [
        "",
        _fit(f"gateprobe: {count} failed scenario(s) by cause (whole text: -v, junit.xml)", width),
    ]
    for group in groups:
        out.append(_fit(f"[{group['count']}] {group['cause']}", width))
        rows = [lines[name] for name in group["scenarios"] if name in lines]
        if not rows:
            continue
        # columns per group (its names are alike); the message gets what is left, the name
        # is cut last since it is what to rerun (-k) and look up
        name_width = max(len(r.name) for r in rows)
        where = {r.name: _where(r) for r in rows}
        if name_width + max(map(len, where.values())) + 6 + _MESSAGE_MIN > width:
            # narrow: the file's name is enough beside the scenario's (its area says where)
            where = {r.name: f"{Path(r.file).name}:{r.line}" for r in rows}
        where_width = min(_WHERE_MAX, max(map(len, where.values())))
        name_width = min(name_width, max(width - 6 - where_width - _MESSAGE_MIN, _NAME_MIN))
        message_width = max(_MESSAGE_MIN, width - 6 - name_width - where_width)
        for row in rows:
            message = row.message.splitlines()[0] if row.message else ""
            if row.more:
                message += f" (+{row.more} more)"
            out.append(
                f"  {_fit(row.name, name_width):<{name_width}}  "
                f"{_fit(where[row.name], where_width):<{where_width}}  "
                f"{_fit(message, message_width)}".rstrip()
            )
    return out
