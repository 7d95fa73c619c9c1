"""Everything a locustfile needs for a gateprobe load run, built from the environment.

    from gateprobe.load.locust_app import build
    globals().update(build())

``build()`` reads the settings (``settings.py``), wires the ``Runtime`` and the measured
window's ``WindowControl`` to Locust's events and returns the user classes of the profile's
request mix, plus ``ProfileShape`` when the profile has a shape (a step, a spike or stages).
Imported only inside Locust processes.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from typing import Any

import gevent
from locust import LoadTestShape, events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner
from locust.stats import StatsEntry

from gateprobe.load.collector import install_stats_csv
from gateprobe.load.profile import LoadProfile, Shape
from gateprobe.load.runtime import Runtime
from gateprobe.load.settings import settings_from_env
from gateprobe.load.users import user_class_for
from gateprobe.load.window import STALL_INTERVAL_S, Window, asked_window, epoch_now, sleep_until

__all__ = ["WindowControl", "build", "shape_class_for"]

logger = logging.getLogger("gateprobe.load")
WINDOW_MESSAGE = "gateprobe_window"
REPORT_KEY = "gateprobe_window"
# what Locust logs when it has no run time of its own; untrue when the window ends the run
_NO_RUN_TIME = "No run time limit set, use CTRL+C to interrupt"


def shape_class_for(profile: LoadProfile) -> type[LoadTestShape] | None:
    if profile.shape is None:
        return None
    shape: Shape = profile.shape
    run_time = profile.run_time

    class ProfileShape(LoadTestShape):
        """The profile's user count over time; stops after warmup + duration."""

        abstract = False

        def tick(self) -> tuple[int, float] | None:
            elapsed = self.get_run_time()
            if elapsed >= run_time:
                return None
            return shape.at(elapsed)

    return ProfileShape


class _DropLine(logging.Filter):
    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != self.message


def _sleep_until(deadline: float) -> None:
    """gevent's sleep until ``perf_counter()`` reaches ``deadline``: a timer counts from the
    loop's cached time (stale by however long the process ran without yielding), so the
    clock is brought up to date first and read again after every wake."""
    loop = gevent.get_hub().loop
    sleep_until(deadline, sleep=gevent.sleep, before_sleep=getattr(loop, "update_now", None))


class WindowControl:
    """Opens the measured window when every user has started and the warmup is over, and
    ends the run when the window is over (``window.py`` says why not Locust's run time).

    local / master   keeps the window: opens it (the master tells its workers), ends the
                     run, and keeps the processes' stalls
    worker           opens its window when the master says so: its records and Locust's
                     statistics count from then on; reports its stalls and whether its
                     window was open with each stats report, and the master leaves the
                     statistics of a report made before out of Locust's table
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.window: Window = runtime.window
        self.profile = runtime.settings.profile
        self.environment: Environment | None = None
        self.ends_run = False  # the run ends when the window is over (else when stopped)
        self._open_pending = False
        self._watch_last: float | None = None
        self._greenlets: list[gevent.Greenlet] = []

    def install(self) -> None:
        events.init.add_listener(self._on_init)
        events.test_start.add_listener(self._on_test_start)
        events.spawning_complete.add_listener(self._on_spawning_complete)
        events.test_stopping.add_listener(self._on_test_stopping)
        events.report_to_master.add_listener(self._on_report_to_master)
        # before Locust's own listener (added when the runner is made, after the locustfile
        # was imported): a report's statistics can be left out before Locust adds them
        events.worker_report.add_listener(self._on_worker_report)
        events.quitting.add_listener(self._on_quitting)

    @property
    def _is_worker(self) -> bool:
        return isinstance(getattr(self.environment, "runner", None), WorkerRunner)

    # -- set-up -------------------------------------------------------------------------------
    def _on_init(self, environment: Environment, **_: Any) -> None:
        self.environment = environment
        runner = environment.runner
        if isinstance(runner, WorkerRunner):
            self.window.process = str(runner.client_id)
            runner.register_message(WINDOW_MESSAGE, self._on_window_message)
            return
        if isinstance(runner, MasterRunner):
            self.window.process = "master"
        options = environment.parsed_options
        if options is None or not getattr(options, "headless", False):
            return  # the web UI starts and stops the runs
        profile = self.profile
        if environment.shape_class is not None:
            # the shape ends it; the window closes on the shape's clock (see _on_test_start)
            self.window.asked_s = profile.duration
            self.ends_run = True
            options.run_time = None
        elif options.run_time:
            self.window.asked_s = asked_window(
                options.run_time, profile.run_time, profile.warmup, profile.duration
            )
            self.ends_run = True
            options.run_time = None  # Locust's timer would end the run early (window.py)
            logging.getLogger("locust.main").addFilter(_DropLine(_NO_RUN_TIME))
        if environment.shape_class is not None:
            self.window.opens = "into the shape"
        if self.ends_run:
            logger.info(
                "Run time: the measured window opens %gs %s and lasts %gs; the run ends "
                "then (gateprobe keeps the time, not Locust's --run-time)",
                profile.warmup,
                self.window.opens,
                self.window.asked_s,
            )

    # -- the test -----------------------------------------------------------------------------
    def _on_test_start(self, environment: Environment, **_: Any) -> None:
        if self._is_worker:
            # a new test, unless the master's message opening it came first (a shape
            # without warmup opens at the start, before the workers are told to spawn)
            if self.window.closed is not None:
                self.window.start(epoch_now(), time.perf_counter())
            return
        self._stop_greenlets()
        self.window.start(epoch_now(), time.perf_counter())
        self.runtime.warmup_end = float("inf")
        self._open_pending = False
        shape = environment.shape_class
        if shape is None:
            return  # opens when the users are spawned
        # the stages count from the shape's start (its first tick started the test), warmup
        # included: so does the window
        began = float(getattr(shape, "start_time", time.perf_counter()))
        self.window.start(epoch_now() - (time.perf_counter() - began), began)
        if self.ends_run:
            self.window.ends_at = began + self.profile.run_time
        self._open_at(began + self.profile.warmup)

    def _on_spawning_complete(self, **_: Any) -> None:
        if self._is_worker or self.environment is None:
            return
        if self.environment.shape_class is not None or self._open_pending:
            return  # a shape's window keeps its clock; a later ramp (web UI) changes nothing
        if self.window.opened is None:
            self._open_at(time.perf_counter() + self.profile.warmup)

    def _open_at(self, deadline: float) -> None:
        self._open_pending = True
        if deadline <= time.perf_counter():
            self._open()
        else:
            self._greenlets.append(gevent.spawn(self._open_later, deadline))

    def _open_later(self, deadline: float) -> None:
        _sleep_until(deadline)
        self._open()

    def _open(self) -> None:
        now, now_pc = epoch_now(), time.perf_counter()
        self.window.open(now, now_pc)
        self.runtime.open_window(now)
        runner = self.environment.runner if self.environment is not None else None
        if isinstance(runner, MasterRunner):
            runner.send_message(WINDOW_MESSAGE, {"open": True})
        self._watch()
        if self.ends_run and self.window.ends_at is not None:
            self._greenlets.append(gevent.spawn(self._end_run, self.window.ends_at))

    def _end_run(self, deadline: float) -> None:
        _sleep_until(deadline)
        runner = self.environment.runner if self.environment is not None else None
        if runner is None:
            return
        # closed now, not when stop() fires test_stopping (its caller lookup alone takes
        # ~0.1 s): no user runs in between, so nothing is recorded after this but the
        # requests stop() cuts, as unfinished
        self._close()
        logger.info("the %gs measured window is over, shutting down", self.window.asked_s)
        # as Locust's own run-time limit does in a headless run; from a greenlet of our own,
        # since quit() kills the runner's
        runner.quit()

    def _on_window_message(self, environment: Environment, msg: Any, **_: Any) -> None:
        """A worker: the master opened the window, or closed it."""
        if (msg.data or {}).get("open"):
            self._stop_greenlets()
            self.window.start(epoch_now(), time.perf_counter())
            self.window.open(epoch_now(), time.perf_counter())
            self.runtime.open_window(self.window.opened or epoch_now())
            self._watch()
        else:
            self._close()

    def _on_test_stopping(self, **_: Any) -> None:
        self._close()

    def _on_quitting(self, **_: Any) -> None:
        # fired before test_stopping when Locust shuts down on a signal; before the
        # Runtime's listener (quitting fires its listeners in reverse), so the summary has it
        self._close()

    def _close(self) -> None:
        if self.window.opened is not None and self.window.closed is None:
            now_pc = time.perf_counter()
            if not self._is_worker:
                # a stall since the last tick delayed this close: it is inside the window. A
                # worker closes after the master's window did (told to stop, then Locust's
                # stop() looked its caller up first), so its last gap is not
                self._watch_tick(now_pc)
            self.window.close(epoch_now(), now_pc)
            runner = self.environment.runner if self.environment is not None else None
            if isinstance(runner, MasterRunner):
                # before the stop messages (one connection, in order): the workers' users
                # record nothing more as measured while the master stops them
                runner.send_message(WINDOW_MESSAGE, {"open": False})
        elif self.window.started is not None and self.window.opened is None:
            self.window.close(epoch_now(), time.perf_counter())
        self._stop_greenlets()

    def _stop_greenlets(self) -> None:
        current = gevent.getcurrent()
        for greenlet in self._greenlets:
            if greenlet is not current:
                greenlet.kill(block=False)
        self._greenlets = [g for g in self._greenlets if g is current]
        self._watch_last = None

    # -- stalls -------------------------------------------------------------------------------
    def _watch(self) -> None:
        self._watch_last = time.perf_counter()
        self._greenlets.append(gevent.spawn(self._watchdog))

    def _watchdog(self) -> None:
        while self._watch_last is not None:
            gevent.sleep(STALL_INTERVAL_S)
            self._watch_tick(time.perf_counter())

    def _watch_tick(self, now_pc: float) -> None:
        last = self._watch_last
        if last is None:
            return
        self.window.stalls.add(now_pc - last - STALL_INTERVAL_S)
        self._watch_last = now_pc

    # -- a master and its workers -----------------------------------------------------------------
    def _on_report_to_master(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        # read in the same step as Locust's listener takes the statistics (no switch
        # between), so "open" says when they were all made
        data[REPORT_KEY] = {"open": self.window.opened is not None, **asdict(self.window.stalls)}

    def _on_worker_report(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        report = data.get(REPORT_KEY)
        if not isinstance(report, dict):
            return
        self.window.note_process(str(client_id), report)
        if report.get("open") or self.environment is None or self.environment.runner is None:
            return
        # made before the worker's window opened: Locust's table leaves them out, as the
        # records do (their warmup mark)
        stats = self.environment.runner.stats
        total = data.get("stats_total") or {}
        data["stats"] = []
        data["errors"] = {}
        # an empty total of the same row (Locust's is "Aggregated" with no method)
        data["stats_total"] = StatsEntry(
            stats, str(total.get("name", "Aggregated")), total.get("method") or ""
        ).serialize()


def build() -> dict[str, Any]:
    install_stats_csv()  # locust_stats.csv: the LLM rows' percentiles in ms, not cut to ints
    settings = settings_from_env()
    runtime = Runtime(settings)
    runtime.install()
    WindowControl(runtime).install()
    host = settings.target.base_url
    exported: dict[str, Any] = {}
    for spec in settings.profile.requests:
        cls = user_class_for(spec, host, runtime)
        exported[cls.__name__] = cls
    shape = shape_class_for(settings.profile)
    if shape is not None:
        exported["ProfileShape"] = shape
    exported["gateprobe_runtime"] = runtime
    return exported
