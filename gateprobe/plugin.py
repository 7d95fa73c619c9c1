"""The pytest plugin: collects suites/**/*.yaml and runs each scenario against a target.

Options (group ``gateprobe``; each is also an ini value without the leading dashes):

    --gateprobe-target FILE|mock   the target profile; ``mock`` starts the bundled mock
    --gateprobe-strict             declared deviations fail instead of being reported
    --gateprobe-report-dir DIR     write summary.json (and allure extras) there
    --gateprobe-suites DIR,...     where scenarios live (default: suites/ under rootdir)

Without a target the plugin collects nothing. Verdicts map onto pytest outcomes: pass,
fail, skip (with the reason), and a declared deviation as xfail (a failure when strict).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateprobe.errors import UsageError
from gateprobe.mock import MockServer
from gateprobe.preflight import unreachable
from gateprobe.report.failure import format_failure
from gateprobe.report.masking import outcome_redactor
from gateprobe.report.summary import RESULT_PROPERTY, SummaryWriter, result_record
from gateprobe.runner import Outcome, run_instance, skip_reason
from gateprobe.scenario import Instance, load_scenarios
from gateprobe.target import Target, load_target

__all__ = ["GatewayFailure", "ScenarioFailure", "ScenarioFile", "ScenarioItem"]

_SESSION = pytest.StashKey["_GateprobeSession"]()


class ScenarioFailure(Exception):
    """Raised by an item whose scenario failed; carries the outcome for the report."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.reason)
        self.outcome = outcome


class GatewayFailure(ScenarioFailure, AssertionError):
    """The gateway failed a check: an assertion, so allure reports it *failed* (a product
    defect); a plain ScenarioFailure is gateprobe's or the scenario's error, *broken*."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gateprobe", "gateprobe conformance scenarios")
    options = [
        ("target", "FILE", "target profile YAML, or 'mock' to start the bundled mock gateway"),
        ("report-dir", "DIR", "directory for summary.json and the allure extras"),
        ("suites", "DIRS", "comma-separated scenario directories (default: suites/ under rootdir)"),
    ]
    for name, metavar, text in options:
        group.addoption(f"--gateprobe-{name}", metavar=metavar, default=None, help=text)
        parser.addini(f"gateprobe_{name.replace('-', '_')}", text, default=None)
    group.addoption(
        "--gateprobe-strict",
        action="store_true",
        default=None,
        help="report declared deviations as failures",
    )
    parser.addini(
        "gateprobe_strict", "report declared deviations as failures", type="bool", default=False
    )


def _option(config: pytest.Config, name: str) -> Any:
    value = config.getoption(f"--gateprobe-{name}")
    if value is None:
        value = config.getini(f"gateprobe_{name.replace('-', '_')}")
    return value


class _GateprobeSession:
    def __init__(self, config: pytest.Config, target_option: str) -> None:
        self.config = config
        self.strict = bool(_option(config, "strict"))
        report_dir = _option(config, "report-dir")
        self.report_dir = Path(report_dir) if report_dir else None
        suites = _option(config, "suites")
        root = Path(config.rootpath)
        self.suites = (
            [(root / s.strip()).resolve() for s in suites.split(",")]
            if suites
            else [(root / "suites").resolve()]
        )
        self.mock: MockServer | None = None
        self.target = self._load_target(target_option)
        self.client = httpx.Client(follow_redirects=False)
        self.summary = SummaryWriter(self.target) if self.report_dir else None
        # Checked once: against a target that is not there, every scenario fails at once
        # with this one line instead of a transport error each.
        self.unreachable = unreachable(self.target)
        self.records: list[dict[str, Any]] = []

    # Hooks of this object (registered as a plugin while a target is configured).

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        for name, value in report.user_properties:
            if name == RESULT_PROPERTY:
                self.records.append(json.loads(str(value)))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.unreachable is not None:
            terminalreporter.write_line(f"gateprobe: {self.unreachable}", red=True, bold=True)
        # SHOULD-level findings: listed, never failing (suites/streaming/README.md)
        for record in self.records:
            for step in record["steps"]:
                for warning in step.get("warnings", ()):
                    terminalreporter.write_line(
                        f"gateprobe warning: {record['name']}: {warning['check']}: "
                        f"{warning['message']}",
                        yellow=True,
                    )

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if hasattr(session.config, "workerinput"):
            return  # xdist workers report to the controller, which writes the files
        if self.summary is not None and self.report_dir is not None:
            self.summary.write(self.report_dir, self.records, session.config)
        allure_dir = session.config.getoption("allure_report_dir", None)
        if allure_dir:
            from gateprobe.report.allure import write_extras

            write_extras(Path(allure_dir), self.target)

    def _load_target(self, option: str) -> Target:
        from gateprobe.provision import MOCK_TARGET, start_bundled_mock

        path = MOCK_TARGET if option == "mock" else Path(option)
        if option == "mock" or (
            path.resolve() == MOCK_TARGET.resolve() and not os.environ.get("GATEPROBE_MOCK_URL")
        ):
            self.mock, env = start_bundled_mock(path)
            # Only this target sees the provisioned keys; the process environment stays as it was.
            return load_target(path, env={**os.environ, **env})
        return load_target(path)

    def close(self) -> None:
        self.client.close()
        if self.mock is not None:
            self.mock.stop()

    def is_suite_file(self, path: Path) -> bool:
        resolved = path.resolve()
        return any(resolved.is_relative_to(s) for s in self.suites)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gateprobe: a gateprobe conformance scenario")
    target = _option(config, "target")
    if not target:
        return
    try:
        state = _GateprobeSession(config, str(target))
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[_SESSION] = state
    config.pluginmanager.register(state, "gateprobe-session")


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(_SESSION, None)
    if session is not None:
        session.close()


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    session = parent.config.stash.get(_SESSION, None)
    if session is None or file_path.suffix not in (".yaml", ".yml"):
        return None
    if not session.is_suite_file(file_path):
        return None
    file: ScenarioFile = ScenarioFile.from_parent(parent, path=file_path)
    return file


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        session: _GateprobeSession = self.config.stash[_SESSION]
        root = next((s for s in session.suites if self.path.resolve().is_relative_to(s)), None)
        try:
            scenarios = load_scenarios(self.path, root)
        except UsageError as exc:
            raise self.CollectError(str(exc)) from None
        for scenario in scenarios:
            for instance in scenario.instances():
                item: ScenarioItem = ScenarioItem.from_parent(
                    self, name=instance.name, instance=instance
                )
                item.add_marker("gateprobe")
                for mark in scenario.marks:
                    self.config.addinivalue_line("markers", f"{mark}: scenario mark")
                    item.add_marker(mark)
                yield item


class ScenarioItem(pytest.Item):
    def __init__(self, *, instance: Instance, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.instance = instance
        self.outcome: Outcome | None = None

    def runtest(self) -> None:
        session: _GateprobeSession = self.config.stash[_SESSION]
        if session.unreachable is not None and skip_reason(self.instance, session.target) is None:
            outcome = Outcome("fail", session.unreachable)
        else:
            outcome = run_instance(self.instance, session.target, session.client)
        self.outcome = outcome
        # the reason becomes pytest's, junit's and allure's message: masked like the reports
        outcome.reason = outcome_redactor(session.target, outcome).text(outcome.reason)
        record = result_record(self.instance, outcome, session.target, session.strict)
        self.user_properties.append((RESULT_PROPERTY, json.dumps(record)))
        _allure(self, outcome, session)
        if outcome.verdict == "skip":
            pytest.skip(outcome.reason)
        if outcome.verdict == "deviation":
            if session.strict:
                raise _failure(outcome)
            pytest.xfail(outcome.reason)
        if outcome.verdict == "fail":
            raise _failure(outcome)

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | Any:
        if isinstance(excinfo.value, ScenarioFailure):
            session: _GateprobeSession = self.config.stash[_SESSION]
            if not excinfo.value.outcome.steps:  # nothing was sent: the reason says it all
                return f"{self.instance.name}: {excinfo.value.outcome.reason}"
            return format_failure(self.instance, excinfo.value.outcome, session.target)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.instance.scenario.line - 1, self.instance.name


def _allure(item: ScenarioItem, outcome: Outcome, session: _GateprobeSession) -> None:
    if not item.config.pluginmanager.hasplugin("allure_pytest"):
        return
    from gateprobe.report.allure import label_and_attach

    label_and_attach(item.instance, outcome, session.target)


# Checks that blame gateprobe or the scenario, never the gateway (a request that could not be
# built, a check refusing its argument says ``where="scenario"``).
_SCENARIO_ERROR_CHECKS = frozenset({"scenario", "internal"})


def _failure(outcome: Outcome) -> ScenarioFailure:
    """What a failed scenario raises: a GatewayFailure (allure: failed) unless one of its
    failures is gateprobe's or the scenario's own (allure: broken)."""
    if any(f.check in _SCENARIO_ERROR_CHECKS or f.where == "scenario" for f in outcome.failures):
        return ScenarioFailure(outcome)
    return GatewayFailure(outcome)
