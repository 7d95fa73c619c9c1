"""``gateprobe run``: the suites against a target (or the bundled mock), with reports.

Writes ``reports/<run-id>/``: junit.xml, summary.json, allure-results/ (``--lf`` reads the
latest earlier summary.json there: gateprobe.last_failed). Exit codes (gateprobe.exit_codes):
0 every scenario passed (or was skipped or a declared deviation), 1 some failed, 2 usage
error (a bad file, a bad expression, nothing selected), 4 internal error (gateprobe broke,
running a scenario or around them), 130 interrupted.

The terminal shows pytest's progress, the table per area and then each failed scenario on
one line, grouped by cause (gateprobe/report/terminal.py); ``-v`` (``verbose``) prints
pytest's whole failure text per scenario too, as junit.xml always has it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gateprobe._resources import resource_dir
from gateprobe.errors import UsageError
from gateprobe.exit_codes import ExitCode
from gateprobe.mock import MockConfig
from gateprobe.runner import INTERNAL

__all__ = ["DEFAULT_SUITES", "RunOptions", "run"]

DEFAULT_SUITES = resource_dir("suites")


@dataclass
class RunOptions:
    target: Path | None = None
    strict: bool = False
    keyword: str | None = None
    markexpr: str | None = None
    maxfail: int | None = None
    last_failed: bool = False
    hang_after: int | None = None  # consecutive timeouts before the target counts as stopped
    workers: str | None = None
    report_root: Path = Path("reports")
    suites: list[Path] = field(default_factory=lambda: [DEFAULT_SUITES])
    mock_config: MockConfig | None = None
    extra_pytest_args: Sequence[str] = ()
    # pytest's whole failure text per scenario on the terminal (else gateprobe's one line
    # per failed scenario, grouped by cause, after the table; junit.xml has it either way)
    verbose: bool = False


def _run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


def validate_inputs(target: Path, suites: list[Path]) -> int:
    """Load the target and every scenario file; UsageError on the first problem. Returns the
    number of scenarios."""
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


class _Watch:
    """A pytest plugin noting what pytest's exit status alone does not say."""

    def __init__(self) -> None:
        self.collect_errors = 0
        self.deselected = 0
        self.failed: set[str] = set()  # node ids with a failed report
        self.stopped = False

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collect_errors += 1

    def pytest_deselected(self, items: Sequence[pytest.Item]) -> None:
        self.deselected += len(items)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            self.failed.add(report.nodeid)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.stopped = bool(session.shouldfail)  # -x or --maxfail ended it


def run(options: RunOptions) -> ExitCode:
    from gateprobe.provision import MOCK_TARGET, start_bundled_mock

    run_id = _run_id()
    report_root = options.report_root.resolve()
    report_dir = report_root / run_id
    mock = None
    target = options.target
    saved_env = dict(os.environ)
    watch = _Watch()
    try:
        if target is None:
            mock, env = start_bundled_mock(MOCK_TARGET, options.mock_config)
            os.environ.update(env)
            target = MOCK_TARGET
            print(f"gateprobe: bundled mock gateway on {mock.url}")
        if not validate_inputs(target, options.suites):
            where = ", ".join(str(s) for s in options.suites)
            raise UsageError(f"no scenario selected (no scenario in {where})")
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
            "no:cacheprovider",  # --lf reads gateprobe's reports instead (gateprobe.last_failed)
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
        if options.markexpr:
            args += ["-m", options.markexpr]
        if options.maxfail is not None:
            args += ["--maxfail", str(options.maxfail)]
        if options.last_failed:
            args += _last_failed(report_root, report_dir)
        if options.hang_after is not None:
            args += ["--gateprobe-hang-after", str(options.hang_after)]
        if options.workers:
            args += ["-n", options.workers]
        args += list(options.extra_pytest_args)
        plugins: list[object] = [watch]
        if not options.verbose:
            from gateprobe.report.terminal import QuietFailures

            plugins.append(QuietFailures())
        code = int(pytest.main(args, plugins=plugins))
        ini.unlink(missing_ok=True)
    finally:
        if mock is not None:
            mock.stop()
        os.environ.clear()
        os.environ.update(saved_env)
    return _exit_code(code, watch, report_dir, options)


def _last_failed(report_root: Path, report_dir: Path) -> list[str]:
    """pytest arguments selecting what failed in the latest earlier run (and saying so)."""
    from gateprobe import last_failed

    summary = last_failed.latest_summary(report_root, besides=report_dir)
    if summary is None:
        print(f"gateprobe: --lf: no earlier run under {report_root}: running every scenario")
        return []
    failed = last_failed.failed_in(summary)
    if not failed:
        print(f"gateprobe: --lf: nothing failed in {summary.parent}: running every scenario")
        return []
    print(f"gateprobe: --lf: the {len(failed)} scenario(s) that failed in {summary.parent}")
    # the environment travels to xdist's workers, which collect (run() restores it after)
    os.environ[last_failed.ENV] = str(summary)
    return ["-p", "gateprobe.last_failed"]


def _exit_code(code: int, watch: _Watch, report_dir: Path, options: RunOptions) -> ExitCode:
    """What the run says, from pytest's exit status and the summary the plugin wrote."""
    if code in (pytest.ExitCode.NO_TESTS_COLLECTED, pytest.ExitCode.USAGE_ERROR):
        shutil.rmtree(report_dir, ignore_errors=True)  # a report of nothing
    if code == pytest.ExitCode.NO_TESTS_COLLECTED:
        raise UsageError(f"no scenario selected ({_selection(options, watch)})")
    if code == pytest.ExitCode.USAGE_ERROR:
        return ExitCode.USAGE  # a bad -k or -m expression, say: pytest said which above
    summary_path = report_dir / "summary.json"
    summary = json.loads(summary_path.read_text("utf-8")) if summary_path.is_file() else None
    # pytest ends a run whose collection failed as INTERRUPTED too: that is no Ctrl-C
    interrupted = (
        code == ExitCode.INTERRUPTED
        or (code == pytest.ExitCode.INTERRUPTED and not watch.collect_errors)
        or bool(summary and summary.get("interrupted"))
    )
    if summary is not None:
        from gateprobe.report.html import write_or_warn, write_run_report

        write_or_warn(write_run_report, report_dir)  # never changes the run's exit code
        _print_summary(summary, report_dir)
    if interrupted:  # the plugin said so, and what ran
        return ExitCode.INTERRUPTED
    if summary is None or code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        if watch.collect_errors:
            cause = f"{watch.collect_errors} error(s) collecting the scenarios"
        else:
            cause = f"pytest ended with exit status {code}" + ("" if summary else ", no summary")
        _internal(f"{cause} (pytest's output above says why)")
        return ExitCode.INTERNAL
    records: list[dict[str, Any]] = summary["scenarios"]
    broken = [r for r in records if _is_broken(r)]
    if broken:
        names = ", ".join(r["name"] for r in broken[:5]) + (", ..." if len(broken) > 5 else "")
        print(
            f"gateprobe: {len(broken)} scenario(s) broken by an error of gateprobe, reported as "
            f"failed with the check 'internal': {names}",
            file=sys.stderr,
        )
        _internal(_first_internal_message(broken[0]))
        return ExitCode.INTERNAL
    failed = sum(1 for r in records if r["verdict"] == "fail")
    if len(watch.failed) > failed:  # failed in the plugin, around the scenario's own run
        _internal(
            f"{len(watch.failed) - failed} scenario(s) failed outside their run "
            "(pytest's output above says why)"
        )
        return ExitCode.INTERNAL
    if watch.stopped and options.maxfail is not None:
        print(f"gateprobe: stopped after {options.maxfail} failed scenario(s) (-x/--maxfail)")
    return ExitCode.FAILED if failed else ExitCode.OK


def _internal(cause: str) -> None:
    print(f"gateprobe: internal error: {cause}", file=sys.stderr)


def _is_broken(record: dict[str, Any]) -> bool:
    return any(f["check"] == INTERNAL for step in record["steps"] for f in step["failures"])


def _first_internal_message(record: dict[str, Any]) -> str:
    for step in record["steps"]:
        for failure in step["failures"]:
            if failure["check"] == INTERNAL:
                return str(failure["message"]).splitlines()[0]
    return "?"


def _selection(options: RunOptions, watch: _Watch) -> str:
    flags = (("-k", options.keyword), ("-m", options.markexpr))
    given = [f"{flag} {value!r}" for flag, value in flags if value]
    what = " and ".join(given) or "the selection"
    if options.suites != [DEFAULT_SUITES]:
        what += f" in {', '.join(str(s) for s in options.suites)}"
    if watch.deselected:
        return f"{what} matched none of the {watch.deselected} scenarios"
    return f"{what} matched no scenario"


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
    from gateprobe.report.terminal import failure_report

    for line in failure_report(summary):
        print(line)
    html = report_dir / "report.html"
    page = f"; HTML: {html}" if html.is_file() else ""
    print(f"reports: {report_dir}  (junit.xml, summary.json, allure-results/){page}")
