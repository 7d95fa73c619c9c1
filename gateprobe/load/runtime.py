"""The load run inside Locust: warmup, arrivals, records, progress, summary and SLO gate.

One ``Runtime`` per Locust process, wired to Locust's events by ``install()`` (the
locustfile calls it). Roles:

    local / master   writes requests.jsonl, progress.json and, when Locust quits,
                     summary.json; sets the exit code (3 on an SLO breach)
    worker           makes records and ships them to the master (see collector.py)

Warmup and the measured window (``window.py``, kept by ``locust_app.WindowControl``): the
window opens ``warmup`` seconds after every user has started, and ``open_window`` resets
Locust's statistics then; records of requests that ended before are marked ``warmup`` and
left out of the summary, so Locust's tables and the summary count the same requests.

Interrupts: Locust fires ``quitting`` on SIGTERM (``gateprobe load`` stops it so on Ctrl-C)
or Ctrl-C while its users still run. Then the users are stopped first (the master tells its
workers the run was interrupted, then stops them), so the requests in flight are recorded as
cut by the interrupt, and the summary of what ran says ``"interrupted": true`` with no SLO
verdict; the exit code is 130. Locust writes no HTML report on that path: this writes it.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import urllib.request
from collections.abc import Mapping
from typing import Any

import gevent
from gevent.event import Event
from locust import events
from locust.env import Environment
from locust.runners import STATE_INIT, STATE_RUNNING, STATE_SPAWNING, MasterRunner, WorkerRunner

from gateprobe.load.collector import Collector, adopt_llm_rows
from gateprobe.load.pacing import BEHIND_MS, Pacer
from gateprobe.load.progress import format_progress
from gateprobe.load.record import RequestRecord
from gateprobe.load.settings import RunSettings
from gateprobe.load.slo import is_slo_key
from gateprobe.load.summary import build_summary, percentile, read_records
from gateprobe.load.window import Window, epoch_now

__all__ = ["EXIT_INTERRUPTED", "EXIT_SLO", "MOCK_LAG_FLOOR_MS", "Runtime"]

EXIT_SLO = 3
EXIT_INTERRUPTED = 130
# an interrupted master waits this long for its workers to stop their users (and send the
# records of what was in flight) before it summarizes what it has
STOP_WORKERS_S = 5.0
QUIT_WAIT_S = 30.0  # a second ``quitting`` waits this long for the first one's summary
MOCK_LAG_FLOOR_MS = 2.0  # below this the mock's loop lag never explains a latency
# an unfinished request in flight longer than this many times the completed requests' e2e
# p99 (and at least the floor) points at a hang
HANG_FACTOR = 3.0
HANG_FLOOR_MS = 1000.0
PROGRESS_SAMPLE = 1000  # requests the progress line's rolling percentiles are taken over
logger = logging.getLogger("gateprobe.load")


class Runtime:
    def __init__(self, settings: RunSettings) -> None:
        self.settings = settings
        self.environment: Environment | None = None
        self.collector = Collector(settings.report_dir, is_worker=False)
        self.pacer: Pacer | None = None
        self.worker_id = "local"
        self.test_start = 0.0
        self.warmup_end = float("inf")  # when the measured window opened (open_window)
        self.warmup = settings.profile.warmup  # a worker takes its master's (see _on_share)
        self.window = Window(asked_s=None, warmup_s=self.warmup)  # WindowControl keeps it
        self.mock_lag: dict[str, Any] = {}
        self._greenlets: list[gevent.Greenlet] = []
        self._last_behind_warning = 0.0
        self.interrupted = False
        self._quit_started = False
        self._quit_done = Event()
        load = settings.profile.load
        if load.mode == "open" and load.rate:
            self.pacer = Pacer(load.rate, load.arrival)

    # -- wiring -----------------------------------------------------------------------------
    def install(self) -> None:
        events.init.add_listener(self._on_init)
        events.test_start.add_listener(self._on_test_start)
        events.test_stop.add_listener(self._on_test_stop)
        events.report_to_master.add_listener(self._on_report_to_master)
        events.worker_report.add_listener(self._on_worker_report)
        events.quitting.add_listener(self._on_quitting)

    @property
    def is_worker(self) -> bool:
        return isinstance(getattr(self.environment, "runner", None), WorkerRunner)

    @property
    def is_master(self) -> bool:
        return isinstance(getattr(self.environment, "runner", None), MasterRunner)

    def _on_init(self, environment: Environment, **_: Any) -> None:
        self.environment = environment
        # Locust fires ``quitting`` in reverse order of registration, and its runners listen
        # to it too (a master quits its workers there): registered after them, this sees the
        # run before they stop it
        environment.events.quitting.add_listener(self._on_quitting_first)
        runner = environment.runner
        if isinstance(runner, WorkerRunner):
            self.collector.is_worker = True
            self.worker_id = runner.client_id
            runner.register_message("gateprobe_share", self._on_share)
            runner.register_message("gateprobe_interrupted", self._on_interrupted_message)
        elif isinstance(runner, MasterRunner):
            runner.register_message("gateprobe_records", self._on_records_message)

    # -- test lifecycle ---------------------------------------------------------------------
    def _on_test_start(self, environment: Environment, **_: Any) -> None:
        self.test_start = epoch_now()
        runner = environment.runner
        if isinstance(runner, MasterRunner):
            # sent before the spawn messages: each worker paces its share of the rate and
            # uses the master's warmup, whatever its own command line said
            load = self.settings.profile.load
            runner.send_message(
                "gateprobe_share",
                {
                    "workers": max(1, runner.worker_count),
                    "warmup": self.warmup,
                    "rate": load.rate if load.mode == "open" else None,
                    "arrival": load.arrival,
                },
            )
        if not self.is_worker:
            self.collector.open()
            self._greenlets.append(gevent.spawn(self._progress_loop))
            if self._mock_health_url():
                self._greenlets.append(gevent.spawn(self._mock_health_loop))

    def _on_share(self, environment: Environment, msg: Any, **_: Any) -> None:
        data = msg.data or {}
        workers = max(1, int(data.get("workers", 1)))
        self.warmup = float(data.get("warmup", self.warmup))
        rate = data.get("rate")
        if rate:
            if self.pacer is None:
                self.pacer = Pacer(float(rate) / workers, str(data.get("arrival", "constant")))
            else:
                self.pacer.set_rate(float(rate) / workers)
        else:
            self.pacer = None

    def _on_interrupted_message(self, environment: Environment, msg: Any, **_: Any) -> None:
        # from an interrupted master, just before it stops this worker's users
        self.interrupted = self.collector.interrupted = True

    def open_window(self, now: float) -> None:
        """The measured window opened (``WindowControl``): Locust's statistics restart, in
        the same step as the records start counting, so both cover the same requests."""
        self.warmup_end = now
        if self.environment is not None and self.environment.runner is not None:
            self.environment.runner.stats.reset_all()
            logger.info("warmup over: statistics reset")

    def _on_test_stop(self, environment: Environment, **_: Any) -> None:
        runner = environment.runner
        if isinstance(runner, WorkerRunner):
            records = self.collector.drain()
            runner.send_message("gateprobe_records", {"records": records, "final": True})

    # -- records ------------------------------------------------------------------------------
    def add(self, record: RequestRecord) -> None:
        """A finished request from one of this process's users (its ``warmup`` and ``worker``
        are set here)."""
        # whether the window was open when the request was recorded, not when it ended:
        # its request event fired just before, in this greenlet, so Locust's table agrees
        record["warmup"] = self.window.opened is None
        record["worker"] = self.worker_id
        if record.get("error"):
            record["error"] = self.settings.target.redactor().text(str(record["error"]))
        lag = record.get("schedule_lag_ms")
        if lag is not None and lag > 100.0 and epoch_now() - self._last_behind_warning > 10.0:
            self._last_behind_warning = epoch_now()
            logger.warning(
                "open loop behind schedule by %.0f ms: every user was busy; raise --users "
                "(the cap on requests in flight) or lower --rate",
                lag,
            )
        assert self.environment is not None
        self.collector.add(record, self.environment.stats)

    def _on_report_to_master(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        data["gateprobe_records"] = self.collector.drain()

    def _on_worker_report(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        if self.environment is not None:  # before or after Locust adds the report's rows
            adopt_llm_rows(self.environment.stats, data)
        self.collector.store(data.get("gateprobe_records") or [], source=client_id)

    def _on_records_message(self, environment: Environment, msg: Any, **_: Any) -> None:
        self.collector.store((msg.data or {}).get("records") or [], source=str(msg.node_id))

    # -- progress -----------------------------------------------------------------------------
    def _progress_loop(self) -> None:
        while True:
            gevent.sleep(1.0)
            try:
                self.write_progress()
            except Exception:  # progress is best effort; never end the run for it
                logger.debug("progress update failed", exc_info=True)

    def progress(self) -> dict[str, Any]:
        assert self.environment is not None and self.environment.runner is not None
        runner = self.environment.runner
        now = epoch_now()
        window = []  # the last 10 s, newest first (records are stored about in end order)
        for recent in reversed(self.collector.recent):
            if recent[0] < now - 10.0:
                break
            window.append(recent)
        # the rolling p50s of the progress line come from the newest requests: sorting every
        # gap of 10 s each second would cost the generator a few percent of its CPU
        sample = window[:PROGRESS_SAMPLE]
        ttfts = sorted(r[2] for r in sample if r[1] and r[2] is not None)
        gaps = sorted(g for r in sample if r[1] for g in r[3])
        total = runner.stats.total
        span = max(1.0, min(10.0, now - self.test_start))
        return {
            "elapsed_s": round(now - self.test_start, 1),
            "run_time_s": self.settings.profile.run_time,
            "warmup": now < self.warmup_end,
            "users": runner.user_count,
            "requests": total.num_requests,
            "failures": total.num_failures,
            # over the last 10 s of records (Locust's current_rps leaves out the last 2 s)
            "requests_per_s": round(len(window) / span, 1),
            "records": self.collector.received,
            "ttft_p50_ms": round(percentile(ttfts, 50), 1) if ttfts else None,
            "itl_p50_ms": round(percentile(gaps, 50), 2) if gaps else None,
            "output_tokens_per_s": round(sum(r[4] for r in window if r[1]) / span, 1),
            "behind": self.pacer.behind if self.pacer is not None else 0,
        }

    def write_progress(self) -> None:
        self.collector.flush()  # first: the records still batched count in the progress
        data = self.progress()
        path = self.settings.report_dir / "progress.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(path)
        if self.settings.progress_to_stderr:
            print(format_progress(data), file=sys.stderr, flush=True)

    # -- the mock's own saturation ---------------------------------------------------------------
    def _mock_health_url(self) -> str | None:
        target = self.settings.target
        if target.provision != "gateprobe-mock" or not target.key("admin"):
            return None
        return target.base_url + "/_gateprobe/health"

    def _read_mock_lag(self, since: float) -> dict[str, Any] | None:
        url = self._mock_health_url()
        admin = self.settings.target.key("admin")
        if url is None or admin is None:
            return None
        request = urllib.request.Request(
            f"{url}?since={since:.3f}", headers={"x-gateprobe-admin": admin}
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                lag = json.loads(answer.read()).get("loop_lag_ms")
        except (OSError, ValueError):
            return None
        return lag if isinstance(lag, dict) else None

    def _mock_health_loop(self) -> None:
        # the mock keeps its last minute of samples: read each 30 s window once
        while True:
            gevent.sleep(30.0)
            self._poll_mock_lag()

    def _poll_mock_lag(self) -> None:
        since = max(self.warmup_end, float(self.mock_lag.get("_read_until", 0.0)))
        now = epoch_now()
        if now <= since:
            return
        lag = self._read_mock_lag(since)
        if not lag or not lag.get("samples"):
            return
        seen = self.mock_lag
        seen["_read_until"] = now
        seen["windows"] = seen.get("windows", 0) + 1
        seen["samples"] = seen.get("samples", 0) + int(lag["samples"])
        seen["p50"] = lag.get("p50")
        seen["p99_max"] = max(float(seen.get("p99_max", 0.0)), float(lag.get("p99", 0.0)))

    # -- the end -------------------------------------------------------------------------
    def _on_quitting_first(self, environment: Environment, **_: Any) -> None:
        # a run that ends by itself has stopped its users before Locust quits; one that is
        # still starting or running was interrupted (SIGTERM, Ctrl-C)
        if getattr(environment.runner, "state", None) in (
            STATE_INIT,
            STATE_SPAWNING,
            STATE_RUNNING,
        ):
            self._stop_interrupted(environment)

    def _on_quitting(self, environment: Environment, **_: Any) -> None:
        if self._quit_started:
            # an interrupted master quits twice: from Locust's SIGTERM handler, and from its
            # main greenlet once its runner is killed; the summary is written once, and the
            # second waits for it, lest it ends the process first
            self._quit_done.wait(QUIT_WAIT_S)
            return
        self._quit_started = True
        try:
            self._quit(environment)
        finally:
            self._quit_done.set()

    def _quit(self, environment: Environment) -> None:
        for greenlet in self._greenlets:
            greenlet.kill(block=False)
        if self.is_worker:
            logger.info(
                "gateprobe worker %s: %d requests recorded, %d sent to the master",
                self.worker_id,
                self.collector.made,
                self.collector.sent,
            )
            return
        self._poll_mock_lag()
        self.mock_lag.pop("_read_until", None)
        self.collector.close()
        summary = self.summarize(environment)
        path = self.settings.report_dir / "summary.json"
        path.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", "utf-8")
        for warning in summary["warnings"]:
            logger.warning("%s", warning)
        if self.interrupted:
            self._write_html_report(environment)
            environment.process_exit_code = EXIT_INTERRUPTED  # no SLO verdict either way
        elif not summary["slo"]["passed"]:
            for result in summary["slo"]["results"]:
                if not result["passed"]:
                    logger.error("SLO breached: %s", result["message"])
            environment.process_exit_code = EXIT_SLO
        elif (
            "error_ratio" in summary["slo"]["thresholds"] and environment.process_exit_code is None
        ):
            # the error budget decides, not Locust's "any failure is exit 1"
            from locust import log

            if not log.unhandled_greenlet_exception:
                environment.process_exit_code = 0

    def _stop_interrupted(self, environment: Environment) -> None:
        """Stop the users of an interrupted run before it is summarized: what they had in
        flight is recorded (as cut by the interrupt) and nothing more is sent."""
        self.interrupted = self.collector.interrupted = True
        environment.process_exit_code = EXIT_INTERRUPTED  # whichever shutdown ends the process
        logger.warning("interrupted: stopping the users and writing the summary of what ran")
        runner = environment.runner
        if runner is None:
            return
        if isinstance(runner, MasterRunner):
            runner.send_message("gateprobe_interrupted", None)  # before "stop": ordered
        # a worker that does not answer must not hold the partial summary back
        with gevent.Timeout(STOP_WORKERS_S, False):
            runner.stop()

    def _write_html_report(self, environment: Environment) -> None:
        html = getattr(environment.parsed_options, "html_file", None)
        if not html or environment.runner is None:
            return
        try:
            from locust.html import get_html_report

            report = get_html_report(environment, show_download_link=False)
            with open(html, "w", encoding="utf-8") as handle:
                handle.write(report)
        except Exception:  # Locust's report is a bonus of a partial run, never its end
            logger.warning("interrupted: Locust's HTML report could not be written", exc_info=True)

    def summarize(self, environment: Environment) -> dict[str, Any]:
        settings = self.settings
        profile = settings.profile
        runner = environment.runner
        total = runner.stats.total if runner is not None else None
        slo = {k: v for k, v in settings.slo.items() if is_slo_key(k)}
        context = {
            "run_id": settings.run_id,
            "profile": profile.metadata(),
            "target": settings.target.metadata(),
            "started_at": (
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.test_start))
                if self.test_start
                else None  # interrupted before the test started
            ),
            "locust": {
                "requests": total.num_requests if total else None,
                "failures": total.num_failures if total else None,
                "workers_reported": dict(sorted(self.collector.by_worker.items())),
            },
            "window": self.window.as_dict(),
        }
        if self.interrupted:
            context["interruption"] = {
                "after_s": round(epoch_now() - self.test_start, 1) if self.test_start else 0.0,
                "run_time_s": profile.run_time,
            }
        records = read_records(settings.report_dir / "requests.jsonl")
        summary = build_summary(records, slo=slo, context=context, interrupted=self.interrupted)
        summary["mock"] = {"loop_lag_ms": self.mock_lag} if self.mock_lag else None
        summary["warnings"] = self._warnings(summary, runner)
        return summary

    def _unfinished_warning(self, summary: Mapping[str, Any]) -> list[str]:
        """Requests cut by the end of the run are normal (about one per user, younger than
        a request takes); one in flight far longer than the completed ones is a hang."""
        requests = summary["requests"]
        longest = requests.get("unfinished_max_in_flight_ms")
        if not requests.get("unfinished") or longest is None:
            return []
        e2e_p99 = (summary["metrics"].get("e2e_ms") or {}).get("p99")
        if e2e_p99 is not None and longest <= max(HANG_FLOOR_MS, HANG_FACTOR * e2e_p99):
            return []
        completed = f"e2e p99 {e2e_p99:.0f} ms" if e2e_p99 is not None else "none completed"
        total = self.settings.target.limits.total
        return [
            f"{requests['unfinished']} requests were still unanswered when the run ended, "
            f"in flight up to {longest / 1000:.1f} s ({completed}): the target may hang; "
            f"they count as neither ok nor failed (a request fails as a timeout after the "
            f"target's timeouts.total, {total:g} s)"
        ]

    def _warnings(self, summary: dict[str, Any], runner: Any) -> list[str]:
        warnings: list[str] = []
        if self.interrupted:
            after = summary.get("interruption", {}).get("after_s", 0.0)
            warnings.append(
                f"the run was interrupted after {after:g} s of {self.settings.profile.run_time:g}"
                " s: the figures cover what ran, and the SLOs give no verdict"
            )
        lag = summary["metrics"].get("schedule_lag_ms") or {}
        if lag.get("count"):
            behind = sum(
                1
                for r in read_records(self.settings.report_dir / "requests.jsonl")
                if not r.get("warmup") and (r.get("schedule_lag_ms") or 0) > BEHIND_MS
            )
            fraction = behind / int(lag["count"])
            summary["throughput"]["behind_schedule_fraction"] = round(fraction, 6)
            if fraction > 0.01:
                warnings.append(
                    f"the generator fell behind its arrival schedule for {fraction:.1%} of "
                    f"requests (lag p99 {lag.get('p99')} ms): latencies understate what an "
                    "open-loop client would see; raise --users or lower --rate"
                )
        if runner is not None and (
            getattr(runner, "cpu_warning_emitted", False)
            or getattr(runner, "worker_cpu_warning_emitted", False)
        ):
            warnings.append(
                "the load generator's CPU went over 90%: measured latencies include "
                "client-side delay; use --processes N or more workers"
            )
        mock_lag = self.mock_lag.get("p99_max")
        itl = (summary["metrics"].get("itl_ms") or {}).get("p50")
        if mock_lag is not None:
            limit = max(MOCK_LAG_FLOOR_MS, min(10.0, 0.25 * itl) if itl else 10.0)
            saturated = mock_lag > limit
            summary["mock"]["bottleneck"] = saturated
            summary["mock"]["lag_limit_ms"] = round(limit, 3)
            if saturated:
                warnings.append(
                    f"the bundled mock was the bottleneck: its event loop lagged up to "
                    f"{mock_lag:.1f} ms (p99; limit {limit:.1f} ms), so these latencies "
                    "measure the mock's saturation, not the target"
                )
        warnings.extend(self.window.warnings())
        warnings.extend(self._unfinished_warning(summary))
        if summary["requests"]["measured"] == 0 and not self.interrupted:
            warnings.append("no request was measured (run longer than the warmup)")
        return warnings
