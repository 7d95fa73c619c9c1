"""``gateprobe run``: the suites against a target (or the bundled mock), with reports.

Writes ``reports/<run-id>/``: junit.xml, summary.json, allure-results/. Exit codes: 0 every
scenario passed (or was skipped or a declared deviation), 1 some failed, 2 usage error.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateprobe._resources import resource_dir
from gateprobe.errors import UsageError
from gateprobe.mock import MockConfig

__all__ = ["RunOptions", "run"]

DEFAULT_SUITES = resource_dir("suites")


@dataclass
class RunOptions:
    target: Path | None = None
    strict: bool = False
    keyword: str | None = None
    workers: str | None = None
    report_root: Path = Path("reports")
    suites: list[Path] = field(default_factory=lambda: [DEFAULT_SUITES])
    mock_config: MockConfig | None = None
    extra_pytest_args: Sequence[str] = ()


def _run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


def validate_inputs(target: Path, suites: list[Path]) -> int:
    """Load the target and every scenario file; UsageError on the first problem."""
    from gateprobe.scenario import load_scenarios, scenario_files
    from gateprobe.target import load_target

    load_target(target)
    count = 0
    seen: dict[str, str] = {}
    for root in suites:
        if not root.is_dir():
            raise UsageError("suites directory not found", file=str(root))
        for path in scenario_files(root):
            for scenario in load_scenarios(path, root):
                where = f"{path}:{scenario.line}"
                if scenario.id in seen:
                    raise UsageError(
                        f"duplicate scenario id {scenario.id!r} (first at {seen[scenario.id]})",
                        file=str(path),
                        line=scenario.line,
                        field="id",
                    )
                seen[scenario.id] = where
                count += 1
    return count


def run(options: RunOptions) -> int:
    import pytest

    from gateprobe.provision import MOCK_TARGET, start_bundled_mock

    run_id = _run_id()
    report_dir = (options.report_root / run_id).resolve()
    mock = None
    target = options.target
    saved_env = dict(os.environ)
    try:
        if target is None:
            mock, env = start_bundled_mock(MOCK_TARGET, options.mock_config)
            os.environ.update(env)
            target = MOCK_TARGET
            print(f"gateprobe: bundled mock gateway on {mock.url}")
        validate_inputs(target, options.suites)
        report_dir.mkdir(parents=True, exist_ok=True)
        ini = report_dir / "pytest.ini"
        ini.write_text("[pytest]\naddopts =\n", "utf-8")
        args = [
            *(str(s) for s in options.suites),
            "-c",
            str(ini),
            "--rootdir",
            str(options.suites[0].parent),
            "-p",
            "no:cacheprovider",
            "--assert=plain",  # scenarios use no assert; rewriting already-imported plugins warns
            "-q",
            "--gateprobe-target",
            str(target),
            "--gateprobe-suites",
            ",".join(str(s) for s in options.suites),
            "--gateprobe-report-dir",
            str(report_dir),
            "--junitxml",
            str(report_dir / "junit.xml"),
            "--alluredir",
            str(report_dir / "allure-results"),
        ]
        if options.strict:
            args.append("--gateprobe-strict")
        if options.keyword:
            args += ["-k", options.keyword]
        if options.workers:
            args += ["-n", options.workers]
        args += list(options.extra_pytest_args)
        code = int(pytest.main(args))
        ini.unlink(missing_ok=True)
    finally:
        if mock is not None:
            mock.stop()
        os.environ.clear()
        os.environ.update(saved_env)
    summary_path = report_dir / "summary.json"
    if code in (2, 3, 4) or not summary_path.exists():
        if code == 5:
            print("gateprobe: error: no scenario matched", file=sys.stderr)
        return 2
    summary = json.loads(summary_path.read_text("utf-8"))
    _print_summary(summary, report_dir)
    return 1 if summary["totals"]["fail"] else 0


def _print_summary(summary: dict[str, Any], report_dir: Path) -> None:
    rows = summary["areas"]
    print(f"\ngateprobe: target {summary['target']['name']} ({summary['target']['base_url']})")
    header = f"{'area':<14}{'pass':>6}{'fail':>6}{'skip':>6}{'deviation':>11}"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['area']:<14}{row['pass']:>6}{row['fail']:>6}{row['skip']:>6}"
            f"{row['deviation']:>11}"
        )
    totals = summary["totals"]
    print("-" * len(header))
    print(
        f"{totals['pass']} passed, {totals['fail']} failed, {totals['skip']} skipped, "
        f"{totals['deviation']} declared deviations"
    )
    if summary.get("warnings"):
        print(f"{summary['warnings']} warnings (SHOULD-level findings; see summary.json)")
    print(f"reports: {report_dir}  (junit.xml, summary.json, allure-results/)")
