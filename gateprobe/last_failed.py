"""``gateprobe run --lf``: only the scenarios that failed in the latest earlier run.

What failed is read from that run's own summary.json, under the same report root
(``--report-dir``, ``./reports`` by default): the reports are the cache, so an installed
gateprobe run outside a clone keeps nothing anywhere else (pytest's cache would go under its
rootdir, inside site-packages). pytest's own ``--lf`` is no use here: pytest 9 parses a cached
id's ``[...]`` as parameters, which the id of a plugin's item never has, so a parametrized
scenario (``auth.missing_key[openai]``) would never count as failed.

``gateprobe.run`` loads this module as a pytest plugin (``-p``), so xdist workers, which do
the collecting, load it too; the summary to read comes in ``GATEPROBE_LAST_FAILED``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

__all__ = ["ENV", "failed_in", "latest_summary"]

ENV = "GATEPROBE_LAST_FAILED"  # the path of the summary.json whose failures are selected


def latest_summary(report_root: Path, *, besides: Path | None = None) -> Path | None:
    """The summary.json of the latest run under ``report_root`` (run ids sort by time)."""
    if not report_root.is_dir():
        return None
    found = sorted(
        p / "summary.json"
        for p in report_root.iterdir()
        if p != besides and (p / "summary.json").is_file()
    )
    return found[-1] if found else None


def failed_in(summary: Path) -> set[str]:
    """The names (``id[params]``) of the scenarios that failed in a run."""
    try:
        data = json.loads(summary.read_text("utf-8"))
        return {str(s["name"]) for s in data["scenarios"] if s["verdict"] == "fail"}
    except (OSError, ValueError, KeyError, TypeError):
        return set()  # an unreadable summary selects nothing: every scenario runs


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    summary = os.environ.get(ENV)
    if not summary:
        return
    failed = failed_in(Path(summary))
    selected = [item for item in items if item.name in failed]
    if not selected:  # as pytest's --lf: nothing known to have failed here, so run everything
        return
    config.hook.pytest_deselected(items=[item for item in items if item.name not in failed])
    items[:] = selected
