"""The pytest plugin: collects suites/**/*.yaml and runs each scenario against a target.

Options (group ``gateprobe``; each is also an ini value without the leading dashes):

    --gateprobe-target FILE|mock   the target profile; ``mock`` starts the bundled mock
    --gateprobe-strict             declared deviations fail instead of being reported
    --gateprobe-report-dir DIR     write summary.json (and allure extras) there
    --gateprobe-suites DIR,...     where scenarios live (default: suites/ under rootdir)
    --gateprobe-hang-after N       after N consecutive timeouts the target counts as stopped
                                   answering: the remaining scenarios fail unsent (default 3;
                                   0 never; gateprobe/breaker.py)

Without a target the plugin collects nothing. Verdicts map onto pytest outcomes: pass,
fail, skip (with the reason), and a declared deviation as xfail (a failure when strict).

Interrupts: SIGTERM is turned into the KeyboardInterrupt pytest already handles for Ctrl-C,
in the controller and in each xdist worker, and an interrupted controller signals its
workers, so a run stops within seconds. The reports cover what ran and say it was
interrupted: ``"interrupted": true`` in summary.json, the ``gateprobe_interrupted`` property
of junit's testsuite, ``interrupted=true`` in allure's environment.properties.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateprobe.breaker import DEFAULT_THRESHOLD, REASON_PREFIX, HangBreaker
from gateprobe.breaker import install as install_breaker
from gateprobe.breaker import uninstall as uninstall_breaker
from gateprobe.errors import UsageError
from gateprobe.mock import MockServer
from gateprobe.preflight import unreachable
from gateprobe.report.failure import format_failure
from gateprobe.report.masking import outcome_redactor
from gateprobe.report.summary import RESULT_PROPERTY, SummaryWriter, result_record
from gateprobe.report.terminal import FAILED_PROPERTY
from gateprobe.runner import Outcome, run_instance, skip_reason
from gateprobe.scenario import Instance, load_scenarios
from gateprobe.target import Target, load_target

__all__ = ["GatewayFailure", "ScenarioFailure", "ScenarioFile", "ScenarioItem"]

_SESSION = pytest.StashKey["_GateprobeSession"]()
# user property of a scenario the interrupt stopped midway (its value: what interrupted it)
INTERRUPTED_PROPERTY = "gateprobe_cut_short"


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
    hang = (
        "after N consecutive timeouts the target counts as stopped answering and the "
        f"remaining scenarios fail without being sent (default {DEFAULT_THRESHOLD}; 0: never)"
    )
    group.addoption("--gateprobe-hang-after", metavar="N", default=None, help=hang)
    parser.addini("gateprobe_hang_after", hang, default=str(DEFAULT_THRESHOLD))


def _option(config: pytest.Config, name: str) -> Any:
    value = config.getoption(f"--gateprobe-{name}")
    if value is None:
        value = config.getini(f"gateprobe_{name.replace('-', '_')}")
    return value


def _hang_after(config: pytest.Config) -> int:
    text = str(_option(config, "hang-after")).strip()
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise UsageError(
            f"--gateprobe-hang-after (ini gateprobe_hang_after) must be a whole number >= 0, "
            f"not {text!r}"
        )
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
        threshold = _hang_after(config)
        self.breaker = HangBreaker(threshold) if threshold else None
        if self.breaker is not None:
            install_breaker(self.target, self.breaker)
        self.is_worker = hasattr(config, "workerinput")
        # set by the first SIGINT/SIGTERM or KeyboardInterrupt: {"by": ..., "at": epoch s}
        self.interrupted: dict[str, Any] | None = None
        self.selected: int | None = None  # scenarios selected to run, once known
        self.cut_short: list[str] = []  # scenarios the interrupt stopped midway
        self.worker_pids: dict[str, int] = {}  # xdist worker id -> pid (controller)
        self._previous_handlers: dict[int, Any] = {}

    # Hooks of this object (registered as a plugin while a target is configured).

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call":
            for name, value in report.user_properties:
                if name == RESULT_PROPERTY:
                    self.records.append(json.loads(str(value)))
                elif name == INTERRUPTED_PROPERTY:
                    self.cut_short.append(report.nodeid.rsplit("::", 1)[-1])
        if not self.is_worker:
            # The record is how an xdist worker hands it to the controller; once here it is
            # in summary.json, and junit.xml (which writes the user properties of the teardown
            # report) need not carry the whole exchange a second time. A worker must still
            # send it on.
            report.user_properties = [
                (name, value) for name, value in report.user_properties if name != RESULT_PROPERTY
            ]

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.selected = len(session.items)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self.selected = len(ids)  # every worker collects the same selection

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodeready(self, node: Any) -> None:
        # execnet keeps the worker's Popen on the gateway's IO (a popen gateway on this
        # machine). xdist's teardown leaves a worker busy in a request 5 s or more (execnet
        # waits that long before it interrupts it), so on an interrupt the controller signals
        # its workers itself (best effort: measured 6.2 s to stop without, 1.2 s with)
        popen = getattr(getattr(getattr(node, "gateway", None), "_io", None), "popen", None)
        pid = getattr(popen, "pid", None)
        if isinstance(pid, int):
            self.worker_pids[str(getattr(node, "workerinput", {}).get("workerid", pid))] = pid

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        # pytest also ends a run whose collection failed through its Session.Interrupted, a
        # KeyboardInterrupt: that is no interrupt of the run, unless a scenario was (runtest)
        if type(excinfo.value) is pytest.Session.Interrupted and self.interrupted is None:
            return
        self.note_interrupt(excinfo.typename)
        if not self.is_worker:
            self.stop_workers()
            self.mark_junit()

    def note_interrupt(self, by: str) -> str:
        """Note the first interrupt; returns what it was (a signal's name)."""
        if self.interrupted is None:
            self.interrupted = {"by": by, "at": time.time()}
        return str(self.interrupted["by"])

    def install_signal_handlers(self) -> None:
        """SIGTERM (and SIGINT, unless ignored) raise KeyboardInterrupt, noting which came.

        A worker raises only on the first: the terminal's SIGINT and its controller's SIGTERM
        both reach it, and a second KeyboardInterrupt in its teardown would only add noise.
        """
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread may set handlers (and receives the signals)

        def interrupt(signum: int, frame: Any) -> None:
            __tracebackhide__ = True  # pytest shows where the run was, not this handler
            first = self.interrupted is None
            self.note_interrupt(signal.Signals(signum).name)
            if first or not self.is_worker:
                raise KeyboardInterrupt

        signals = [signal.SIGTERM]
        # an ignored SIGINT (a background job of a shell) stays ignored
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signals.append(signal.SIGINT)
        for signum in signals:
            self._previous_handlers[signum] = signal.signal(signum, interrupt)

    def restore_signal_handlers(self) -> None:
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers.clear()

    def stop_workers(self) -> None:
        for pid in self.worker_pids.values():
            with contextlib.suppress(OSError):  # gone already, or not ours to signal
                os.kill(pid, signal.SIGTERM)

    def mark_junit(self) -> None:
        try:
            from _pytest.junitxml import xml_key
        except ImportError:  # pragma: no cover - pytest moved it
            return
        xml = self.config.stash.get(xml_key, None)
        if xml is not None and self.interrupted is not None:
            xml.add_global_property("gateprobe_interrupted", "true")
            xml.add_global_property("gateprobe_interrupted_by", str(self.interrupted["by"]))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.unreachable is not None:
            terminalreporter.write_line(f"gateprobe: {self.unreachable}", red=True, bold=True)
        # from the records: under xdist each worker has its breaker, the controller none
        unsent = sum(1 for r in self.records if REASON_PREFIX in r.get("reason", ""))
        if unsent:
            terminalreporter.write_line(
                f"gateprobe: {REASON_PREFIX} after {_hang_after(self.config)} consecutive "
                f"timeouts: {unsent} scenario(s) failed without being sent "
                "(--gateprobe-hang-after N sets how many)",
                red=True,
                bold=True,
            )
        if self.interrupted is not None and not self.is_worker:
            of = f" of {self.selected}" if self.selected is not None else ""
            midway = (
                f" ({len(self.cut_short)} stopped midway, reported as skipped)"
                if self.cut_short
                else ""
            )
            terminalreporter.write_line(
                f"gateprobe: interrupted ({self.interrupted['by']}) after {len(self.records)}"
                f"{of} scenarios{midway}: the reports cover those",
                yellow=True,
                bold=True,
            )
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
            interruption = None
            if self.interrupted is not None:
                interruption = {
                    **self.interrupted,
                    "selected": self.selected,
                    "cut_short": sorted(self.cut_short),
                }
            self.summary.write(
                self.report_dir, self.records, session.config, interrupted=interruption
            )
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
        self.restore_signal_handlers()
        uninstall_breaker(self.target)
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
    state.install_signal_handlers()


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
        try:
            self._runtest()
        except KeyboardInterrupt:
            # Reported (skipped, "interrupted") instead of vanishing: allure would otherwise
            # keep the scenario it had started as passed. pytest stops before the next one.
            session: _GateprobeSession = self.config.stash[_SESSION]
            by = session.note_interrupt("KeyboardInterrupt")
            self.session.shouldstop = f"interrupted ({by})"
            self.user_properties.append((INTERRUPTED_PROPERTY, by))
            pytest.skip(f"interrupted ({by}) before the scenario finished")

    def _runtest(self) -> None:
        session: _GateprobeSession = self.config.stash[_SESSION]
        breaker = session.breaker
        if session.unreachable is not None and skip_reason(self.instance, session.target) is None:
            outcome = Outcome("fail", session.unreachable)
        elif (
            breaker is not None
            and breaker.tripped
            and skip_reason(self.instance, session.target) is None
        ):
            # what a refused step would say (a transport failure), without a step
            outcome = Outcome("fail", f"transport: {breaker.reason}")
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
                self.user_properties.append((FAILED_PROPERTY, "1"))
                raise _failure(outcome)
            pytest.xfail(outcome.reason)
        if outcome.verdict == "fail":
            # the report says so: gateprobe run lists these failures itself (report/terminal.py)
            self.user_properties.append((FAILED_PROPERTY, "1"))
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


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """An interrupted run's allure results say so, after the allure extras are written."""
    state = session.config.stash.get(_SESSION, None)
    if state is None or state.interrupted is None or state.is_worker:
        return
    allure_dir = session.config.getoption("allure_report_dir", None)
    if not allure_dir:
        return
    path = Path(allure_dir) / "environment.properties"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as properties:
        properties.write(
            f"interrupted=true\ninterrupted_by={state.interrupted['by']}\n"
            f"scenarios_run={len(state.records)}\n"
        )


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
