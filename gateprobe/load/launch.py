"""``gateprobe load``: a Locust run of a load profile, from this (gevent-free) process.

Locust runs as a child process (``python -m locust -f gateprobe/load/locustfile.py
--headless ...``); this process validates the inputs (a bad profile is a usage error, exit
2, before anything starts), starts the bundled mock in its own process when there is no
target, prints a progress line from the run's progress.json, draws the plots and prints the
summary when Locust is done. The exit code is Locust's: 0 passed, 1 some requests failed
(unless an ``error_ratio`` SLO judges the errors), 2 usage error or Locust crashed, 3 an SLO
was breached; 130 interrupted.

Interrupts: Ctrl-C, SIGTERM or SIGHUP stop the run in order: Locust first (SIGTERM: it stops
its users and workers and writes the summary of what ran, marked interrupted), then the
mock; whatever has not stopped within ``STOP_GRACE_S`` is killed, and so is everything at a
second signal. The children run in process groups of their own (``child_process_options``),
so the terminal's Ctrl-C reaches this process only and the mock cannot stop before Locust.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from gateprobe.errors import UsageError
from gateprobe.load.mock_cpu import CpuWatch, note_mock_cpu
from gateprobe.load.mock_process import MockProcess, child_process_options
from gateprobe.load.profile import load_profile
from gateprobe.load.progress import format_progress
from gateprobe.load.record import METRICS
from gateprobe.load.settings import ENV, new_run_id, profile_keys
from gateprobe.provision import MOCK_TARGET

__all__ = ["LOCUSTFILE", "LoadOptions", "format_summary", "run_load"]

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
STOP_GRACE_S = 10.0  # for Locust to stop its users and write the partial summary
MOCK_STOP_S = 5.0  # the mock closes its connections within 2 s


class _Interrupts:
    """SIGINT, SIGTERM and SIGHUP raise KeyboardInterrupt in this (main) thread, once: the
    first starts the orderly stop; a later one only asks it to hurry (``hurry``), so the
    stop itself is never cut in the middle. An ignored SIGINT (a shell's background job)
    stays ignored."""

    def __init__(self) -> None:
        self.by: str | None = None
        self.hurry = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Interrupts:
        if threading.current_thread() is not threading.main_thread():
            return self  # only the main thread gets signals (a caller embedding us)
        signals = [signal.SIGTERM]
        if hasattr(signal, "SIGHUP"):
            signals.append(signal.SIGHUP)  # the terminal closed: stop the children too
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signals.append(signal.SIGINT)
        for signum in signals:
            self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.by is not None:
            self.hurry = True
            return
        self.by = signal.Signals(signum).name
        raise KeyboardInterrupt

    def note(self) -> str:
        """What interrupted the run (a KeyboardInterrupt not from our handler: Ctrl-C)."""
        if self.by is None:
            self.by = "SIGINT"
        return self.by


@dataclass
class LoadOptions:
    profile: str = "chat-steady"
    target: Path | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    report_root: Path = Path("reports") / "load"
    processes: int | None = None
    role: str = "local"  # local | master | worker
    master_host: str = "127.0.0.1"
    master_port: int = 5557
    expect_workers: int = 1
    locust_args: Sequence[str] = ()
    mock_workers: int = 1  # > 1: the bundled mock in upstream mode, in that many processes
    run_id: str | None = None  # the run's directory under report_root (default: a new id)
    plots: bool = True
    progress: bool = True
    out: TextIO = field(default_factory=lambda: sys.stdout)


def _locust_command(options: LoadOptions, report_dir: Path, shape: bool) -> list[str]:
    profile = load_profile(options.profile).with_overrides(options.overrides)
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless"]
    if options.role == "worker":
        command += ["--worker", "--master-host", options.master_host]
        command += ["--master-port", str(options.master_port)]
        return [*command, *options.locust_args]
    command += ["--csv", str(report_dir / "locust"), "--html", str(report_dir / "locust.html")]
    command += ["--only-summary"]
    if not shape:
        load = profile.load
        # open loop: the users are only a cap on requests in flight; all of them from the start
        spawn_rate = max(load.spawn_rate, load.users) if load.mode == "open" else load.spawn_rate
        command += ["-u", str(load.users), "-r", str(spawn_rate)]
        command += ["-t", f"{max(1, round(profile.run_time))}s"]
    if options.role == "master":
        command += ["--master", "--expect-workers", str(options.expect_workers)]
        command += ["--master-bind-port", str(options.master_port)]
    elif options.processes:
        command += ["--processes", str(options.processes)]
    return [*command, *options.locust_args]


def run_load(options: LoadOptions) -> int:
    profile = load_profile(options.profile).with_overrides(options.overrides)
    if options.target is not None:
        from gateprobe.target import load_target

        # a bad target is a usage error before anything starts
        load_target(options.target, needed_keys=profile_keys(profile))
    elif options.role == "worker":
        raise UsageError("a worker needs --target (the gateway the master's run targets)")
    run_id = options.run_id or new_run_id()
    report_dir = options.report_root / run_id
    report_dir.mkdir(parents=True, exist_ok=True)
    with _Interrupts() as interrupts:
        return _run(options, profile, run_id, report_dir, interrupts)


def _run(
    options: LoadOptions, profile: Any, run_id: str, report_dir: Path, interrupts: _Interrupts
) -> int:
    env = dict(os.environ)
    mock: MockProcess | None = None
    watch: CpuWatch | None = None  # the bundled mock's CPU: was it saturated?
    out = options.out
    code: int | None = None
    try:
        if options.target is None:
            mock = MockProcess(
                ttft_ms=profile.mock_ttft_ms,
                itl_ms=profile.mock_itl_ms,
                workers=options.mock_workers,
            )
            mock.start()
            env.update(mock.env)
            watch = CpuWatch(mock.url).start()
            workers = f", {mock.workers} workers" if mock.workers > 1 else ""
            print(
                f"bundled mock at {mock.url} (TTFT {profile.mock_ttft_ms:g} ms, "
                f"ITL {profile.mock_itl_ms:g} ms{workers})",
                file=out,
            )
        env[ENV["profile"]] = str(options.profile)
        env[ENV["overrides"]] = json.dumps(options.overrides)
        env[ENV["target"]] = str(options.target or MOCK_TARGET)
        env[ENV["report_dir"]] = str(report_dir)
        env[ENV["run_id"]] = run_id
        command = _locust_command(options, report_dir, profile.shape is not None)
        print(f"load run {run_id}: profile {profile.name}, reports in {report_dir}/", file=out)
        code = _run_locust(command, env, report_dir, options, interrupts)
    except KeyboardInterrupt:  # before Locust ran (or while it started)
        interrupts.note()
    finally:
        if watch is not None:
            watch.stop()
        if mock is not None:
            mock.stop(timeout=MOCK_STOP_S)
    if watch is not None and options.role != "worker":
        _note_mock_cpu(report_dir / "summary.json", watch)
    if interrupts.by is not None:
        return _report_interrupted(report_dir, options, interrupts)
    assert code is not None
    if options.role == "worker":
        return code
    summary_path = report_dir / "summary.json"
    if not summary_path.is_file():
        log = report_dir / "locust.log"
        tail = log.read_text("utf-8", "replace").splitlines()[-15:] if log.is_file() else []
        print("\n".join(["Locust ended without a summary; the end of its log:", *tail]), file=out)
        return code or EXIT_USAGE
    summary = json.loads(summary_path.read_text("utf-8"))
    if options.plots:
        from gateprobe.load.plots import plot_run

        plot_run(report_dir)
    from gateprobe.report.html import write_load_report, write_or_warn

    html = write_or_warn(write_load_report, report_dir, out)  # never changes the exit code
    print(format_summary(summary, code), file=out)
    print(f"reports: {report_dir}/" + (f"  (HTML: {html})" if html else ""), file=out)
    return code


def _note_mock_cpu(summary_path: Path, watch: CpuWatch) -> None:
    """The bundled mock's CPU over the measured window, added to Locust's summary.json."""
    if not summary_path.is_file():
        return
    summary = json.loads(summary_path.read_text("utf-8"))
    note_mock_cpu(summary, watch, "the bundled mock")
    text = json.dumps(summary, indent=2, ensure_ascii=False) + "\n"
    summary_path.write_text(text, "utf-8")


def _report_interrupted(report_dir: Path, options: LoadOptions, interrupts: _Interrupts) -> int:
    """What an interrupted run prints: the summary of what ran, if Locust wrote one."""
    out = options.out
    summary_path = report_dir / "summary.json"
    if options.role == "worker" or not summary_path.is_file():
        print(f"load run interrupted ({interrupts.by}) before any summary was written", file=out)
        return EXIT_INTERRUPTED
    summary = json.loads(summary_path.read_text("utf-8"))
    if options.plots and not interrupts.hurry:
        from gateprobe.load.plots import plot_run

        plot_run(report_dir)  # a further signal only sets ``hurry``: no KeyboardInterrupt here
    html = None
    if not interrupts.hurry:
        from gateprobe.report.html import write_load_report, write_or_warn

        html = write_or_warn(write_load_report, report_dir, out)
    print(format_summary(summary, EXIT_INTERRUPTED), file=out)
    print(f"reports: {report_dir}/" + (f"  (HTML: {html})" if html else ""), file=out)
    return EXIT_INTERRUPTED


def _run_locust(
    command: list[str],
    env: Mapping[str, str],
    report_dir: Path,
    options: LoadOptions,
    interrupts: _Interrupts,
) -> int:
    if options.role == "worker":  # its output is the user's to see
        process = subprocess.Popen(command, env=dict(env), **child_process_options())
        try:
            return process.wait()
        except KeyboardInterrupt:
            interrupts.note()
            return _stop_locust(process, options.out, interrupts)
    log_path = report_dir / "locust.log"
    with log_path.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(
            command, env=dict(env), stdout=log, stderr=subprocess.STDOUT, **child_process_options()
        )
        tty = options.out.isatty()
        try:
            _follow_progress(process, report_dir / "progress.json", options, tty)
        except KeyboardInterrupt:
            interrupts.note()
            if tty and options.progress:
                print(file=options.out)
            return _stop_locust(process, options.out, interrupts)
        if tty and options.progress:
            print(file=options.out)
        return process.wait()


def _follow_progress(
    process: subprocess.Popen[bytes], progress: Path, options: LoadOptions, tty: bool
) -> None:
    last_printed = 0.0
    while process.poll() is None:
        time.sleep(0.5)
        if not options.progress or not progress.is_file():
            continue
        now = time.monotonic()
        if not tty and now - last_printed < 5.0:
            continue
        try:
            data = json.loads(progress.read_text("utf-8"))
        except (OSError, ValueError):
            continue
        line = format_progress(data)
        print(("\r" + line + "\x1b[K") if tty else line, end="" if tty else "\n",
              file=options.out, flush=True)  # fmt: skip
        last_printed = now


def _stop_locust(process: subprocess.Popen[bytes], out: TextIO, interrupts: _Interrupts) -> int:
    """Stop an interrupted Locust: SIGTERM (its own shutdown: users stopped, the summary of
    what ran written), then SIGKILL to its process group (the master and the workers it
    forked) if it is not done within STOP_GRACE_S or a second signal came."""
    with contextlib.suppress(OSError):  # a closed terminal (SIGHUP) cannot be written to
        print(
            f"interrupted ({interrupts.by}): stopping Locust and writing the summary of what "
            "ran (again to stop at once)",
            file=out,
            flush=True,
        )
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    while process.poll() is None and time.monotonic() < deadline and not interrupts.hurry:
        time.sleep(0.05)
    # whatever is left of the group (a worker Locust forked, a master that did not stop)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    return process.wait()


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:.2f}{unit}" if isinstance(value, float) else f"{value}{unit}"


_TABLE = tuple(metric.name for metric in METRICS if metric.table)


def format_summary(summary: Mapping[str, Any], code: int) -> str:
    requests = summary["requests"]
    throughput = summary["throughput"]
    metrics = summary["metrics"]
    lines = [
        f"requests: {requests['measured']} measured ({requests['ok']} ok, "
        f"{requests['failed']} failed, error ratio {_fmt(requests['error_ratio'])}); "
        f"{requests['warmup_excluded']} in the warmup, excluded"
        + (
            f"; {requests['unfinished']} unfinished when the run "
            + ("was interrupted" if summary.get("interrupted") else "ended")
            if requests.get("unfinished")
            else ""
        ),
        f"throughput: {_fmt(throughput['requests_per_s'])} req/s, "
        f"{_fmt(throughput['output_tokens_per_s'])} output tok/s "
        f"(peak {throughput['peak_output_tokens_per_s']}/s), "
        f"{_fmt(throughput.get('input_tokens_per_s'))} input tok/s, "
        f"concurrency {_fmt(throughput['observed_concurrency'])}, "
        f"goodput {_fmt(summary['goodput']['fraction'])}",
        f"{'metric':<18}{'count':>8}{'p50':>10}{'p90':>10}{'p95':>10}{'p99':>10}{'p99.9':>10}"
        f"{'mean':>10}",
    ]
    for name in _TABLE:
        stats = metrics.get(name) or {}
        if not stats.get("count"):
            continue
        cells = "".join(
            f"{stats.get(k, 0):>10.2f}" for k in ("p50", "p90", "p95", "p99", "p99.9", "mean")
        )
        lines.append(f"{name:<18}{stats['count']:>8}{cells}")
    partial = bool(summary.get("interrupted"))
    for result in summary["slo"]["results"]:
        # an interrupted run's figures, for information: no verdict
        mark = "partial " if partial else "ok     " if result["passed"] else "BREACH "
        lines.append(f"SLO {mark}{result['message']}")
    for warning in summary.get("warnings", []):
        lines.append(f"warning: {warning}")
    verdict = {0: "passed", 1: "some requests failed", 2: "error", 3: "SLO breached"}
    if code == EXIT_INTERRUPTED:
        after = (summary.get("interruption") or {}).get("after_s")
        when = f" after {after:g} s" if isinstance(after, int | float) else ""
        lines.append(f"result: interrupted{when}, no SLO verdict (exit {code})")
    else:
        lines.append(f"result: {verdict.get(code, f'exit {code}')} (exit {code})")
    return "\n".join(lines)
