"""The measured window: a run measures the window it was asked for, counted from when its
users are up and the warmup is over, or its summary and the terminal say by how much it fell
short and why (``gateprobe/load/window.py``).

The end-to-end runs assert what holds on any machine, loaded or not: the window never
closes early, every request the summary measured was recorded inside the window it reports
and every excluded one before it, Locust's table counts the same requests, and the length
is within 1% of what was asked or a warning names the figure. How close the windows come on
a quiet and a busy machine is ``benchmarks/load_window.py``'s to measure.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from gateprobe.load.mock_process import MockProcess
from gateprobe.load.summary import build_summary
from gateprobe.load.window import (
    STALL_S,
    TOLERANCE,
    Stalls,
    Window,
    asked_window,
    sleep_until,
)
from gateprobe.provision import MOCK_TARGET

LOCUSTFILE = Path(__file__).resolve().parents[2] / "gateprobe" / "load" / "locustfile.py"
SLACK_S = 0.005  # the records' start (µs) and e2e (µs) roundings, and time.time()'s steps


# -- the window's arithmetic ------------------------------------------------------------------
class FakeClock:
    """A clock whose sleeps end early, like a gevent timer started from a stale loop time."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []
        self.updates = 0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.001, seconds / 2)

    def update(self) -> None:
        self.updates += 1


def test_sleep_until_sleeps_again_when_a_timer_fires_early() -> None:
    clock = FakeClock()
    sleep_until(110.0, sleep=clock.sleep, clock=clock, before_sleep=clock.update)
    assert clock.now >= 110.0
    assert len(clock.sleeps) > 1 and clock.sleeps[0] == pytest.approx(10.0)
    assert clock.updates == len(clock.sleeps)  # the loop's clock brought up to date each time
    clock.sleeps.clear()
    sleep_until(50.0, sleep=clock.sleep, clock=clock)  # past: no sleep at all
    assert clock.sleeps == []


def test_the_asked_window_is_the_profiles_when_the_run_time_is_derived_from_it() -> None:
    # gateprobe load passes -t as whole seconds of warmup + duration
    assert asked_window(4, 3.6, 1.0, 2.6) == 2.6
    assert asked_window(1, 0.3, 0.0, 0.3) == 0.3  # -t is at least 1 s
    # Locust run by hand with a run time of its own: what it leaves after the warmup
    assert asked_window(60, 35.0, 5.0, 30.0) == 55.0
    assert asked_window(None, 35.0, 5.0, 30.0) is None


def test_only_oversleeps_over_the_threshold_are_stalls() -> None:
    stalls = Stalls()
    for late in (0.001, STALL_S - 0.001, -0.02, STALL_S + 0.01, 1.5):
        stalls.add(late)
    assert stalls.count == 2
    assert stalls.total_s == pytest.approx(STALL_S + 0.01 + 1.5)
    assert stalls.longest_s == 1.5
    assert stalls.as_dict() == {"stalled_s": round(STALL_S + 1.51, 3), "longest_ms": 1500.0,
                                "count": 2}  # fmt: skip


def window(asked: float, wall: float, *, ends_after: float | None = None) -> Window:
    """A window of ``asked`` s that stayed open ``wall`` s (perf_counter from 0)."""
    win = Window(asked_s=asked, warmup_s=1.0)
    win.start(1000.0, 0.0)
    win.open(1001.0, 1.0)
    if ends_after is not None:
        win.ends_at = 1.0 + ends_after
    win.close(1001.0 + wall, 1.0 + wall)
    return win


def test_a_window_as_long_as_asked_warns_of_nothing() -> None:
    win = window(20.0, 20.05)
    assert win.warnings() == []
    figures = win.as_dict()
    assert figures["asked_s"] == 20.0 and figures["wall_s"] == figures["measured_s"] == 20.05
    assert figures["opened_after_s"] == 1.0 and figures["stopped_early"] is False
    assert (figures["opened"], figures["closed"]) == (1001.0, 1021.05)


def test_a_starved_generator_is_named_with_the_shortfall() -> None:
    win = window(20.0, 20.0)
    for _ in range(53):
        win.stalls.add(0.2)  # 10.6 s of stalls over the threshold
    assert win.measured_s == pytest.approx(9.4)
    (warning,) = win.warnings()
    assert warning.startswith(
        "measured 9.40 s of the 20 s asked (47%): the load generator was starved: its event "
        "loop stood still for 10.6 s of the 20.0 s window (stalls over 50 ms, the longest 200 ms:"
        " the machine's CPU went to other work, or one task held the loop)"
    )
    assert win.as_dict()["measured_share"] == 0.47


def test_the_worst_process_decides_what_was_measured() -> None:
    win = window(10.0, 10.0)
    win.note_process("worker-a", {"total_s": 0.01, "longest_s": 0.01, "count": 0})
    win.note_process("worker-b", {"total_s": 2.0, "longest_s": 0.5, "count": 4})
    assert win.measured_s == pytest.approx(8.0)
    by_process = win.as_dict()["stalls"]["by_process"]
    assert set(by_process) == {"local", "worker-a", "worker-b"}
    assert "measured 8.00 s of the 10 s asked (80%)" in win.warnings()[0]


def test_a_run_stopped_before_its_end_says_so() -> None:
    assert window(20.0, 12.0, ends_after=20.0).warnings() == [
        "measured 12.0 s of the 20 s asked (60%): the run was stopped before its window was over"
    ]
    never = Window(asked_s=20.0, warmup_s=5.0)
    never.start(1000.0, 0.0)
    never.close(1002.0, 2.0)
    assert never.warnings() == [
        "measured 0 s of the 20 s asked (0%): the run was stopped before its window opened "
        "(it opens 5 s after every user has started)"
    ]


def test_a_window_that_ended_late_says_by_how_much() -> None:
    (warning,) = window(10.0, 10.5, ends_after=10.0).warnings()
    assert warning == (
        "measured 10.5 s of the 10 s asked (105%): the load generator was starved: it ended "
        "the run 0.50 s late"
    )
    # a shape's window closes on the shape's clock: one that opened late is short by that
    (warning,) = window(10.0, 9.5, ends_after=9.5).warnings()
    assert warning.endswith(
        "(95%): the load generator was starved: it opened the window 0.50 s late"
    )
    # near 100% the share keeps a decimal: 98.6% is outside the tolerance, 99% would not be
    slight = window(10.0, 10.0)
    slight.stalls.add(0.14)
    assert TOLERANCE == 0.01 and "(98.6%)" in slight.warnings()[0]


def test_the_summary_rates_use_the_runs_window() -> None:
    records = [
        {"name": "a", "ok": True, "start": 1000.0 + i, "e2e_ms": 500.0, "output_tokens": 10}
        for i in range(5)
    ]
    summary = build_summary(records, context={"window": {"wall_s": 10.0}})
    assert summary["throughput"]["window_s"] == 10.0
    assert summary["throughput"]["requests_per_s"] == 0.5
    assert summary["throughput"]["output_tokens_per_s"] == 5.0
    # without a window of the run's (records alone), their span
    assert build_summary(records)["throughput"]["window_s"] == 4.5


# -- runs ---------------------------------------------------------------------------------------
@contextmanager
def cpu_hogs(count: int = 2) -> Iterator[None]:
    """``count`` busy processes beside the run (a machine shared with other work)."""
    hogs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL)
        for _ in range(count)
    ]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def gateprobe_load(report_dir: Path, *args: str) -> tuple[int, str, dict[str, Any], Path]:
    result = subprocess.run(
        [sys.executable, "-m", "gateprobe.cli", "load", "--no-plots",
         "--report-dir", str(report_dir), *args],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    (run,) = [p for p in report_dir.iterdir() if p.is_dir()]
    summary = json.loads((run / "summary.json").read_text())
    return result.returncode, result.stdout + result.stderr, summary, run


def records_of(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "requests.jsonl").read_text().splitlines()]


def assert_measured_as_asked(
    summary: dict[str, Any], run: Path, out: str, asked: float, *, shape_warmup: float = -1.0
) -> None:
    """What a run's window must be on any machine."""
    win = summary["window"]
    assert win["asked_s"] == asked
    assert win["stopped_early"] is False, win
    if shape_warmup < 0:
        assert win["wall_s"] >= asked, win  # never closes early
    else:  # it closes on the shape's clock (warmup + duration), however late it opened
        assert win["opened_after_s"] + win["wall_s"] >= shape_warmup + asked - 0.002, win
    assert summary["throughput"]["window_s"] == win["wall_s"]  # the rates' denominator
    if abs(win["measured_s"] / asked - 1) > TOLERANCE:
        # the machine starved the generator: the summary and the terminal name the figure
        shortfall = [w for w in summary["warnings"] if w.startswith("measured ")]
        assert shortfall, (win, summary["warnings"])
        seconds = (
            f"{win['measured_s']:.2f}" if win["measured_s"] < 10 else f"{win['measured_s']:.1f}"
        )
        assert shortfall[0].startswith(f"measured {seconds} s of the {asked:g} s asked ("), win
        assert f"warning: {shortfall[0]}" in out
    else:
        assert not [w for w in summary["warnings"] if w.startswith("measured ")]
    # what was measured is what was recorded in the window the summary reports
    records = records_of(run)
    measured = [r for r in records if not r["warmup"] and not r.get("unfinished")]
    before = [r for r in records if r["warmup"] and not r.get("unfinished")]
    assert summary["requests"]["measured"] == len(measured) > 0
    assert summary["requests"]["warmup_excluded"] == len(before)
    for record in measured:
        end = record["start"] + record["e2e_ms"] / 1000
        assert win["opened"] - SLACK_S <= end <= win["closed"] + SLACK_S, (record, win)
    for record in before:
        end = record["start"] + record["e2e_ms"] / 1000
        assert end <= win["opened"] + SLACK_S, (record, win)
    # and what was in flight when it closed is unfinished, ended while the run stopped or cut
    for record in (r for r in records if r.get("unfinished")):
        end = record["start"] + record["e2e_ms"] / 1000
        assert end >= win["closed"] - SLACK_S, (record, win)
        assert record["error"].startswith(
            ("in flight when the measured window closed", "still in flight after")
        ), record
    assert summary["locust"]["requests"] == len(measured)  # Locust's table: the same requests


RUN = ("--users", "4", "--duration", "3", "--warmup", "1", "--mock-ttft-ms", "50",
       "--mock-itl-ms", "10")  # fmt: skip


def test_an_unloaded_run_measures_the_window_it_was_asked_for(tmp_path: Path) -> None:
    code, out, summary, run = gateprobe_load(tmp_path, *RUN)
    assert code == 0, out
    assert_measured_as_asked(summary, run, out, 3.0)
    # opened once the users were up and the warmup was over
    assert summary["window"]["opened_after_s"] >= 1.0
    log = (run / "locust.log").read_text()
    assert "the measured window opens 1s after every user has started and lasts 3s" in log
    assert "No run time limit set" not in log  # the run does end by itself


def test_a_run_beside_busy_processes_measures_its_window_or_names_the_shortfall(
    tmp_path: Path,
) -> None:
    with cpu_hogs(2):
        code, out, summary, run = gateprobe_load(tmp_path, *RUN)
    assert code == 0, out
    assert_measured_as_asked(summary, run, out, 3.0)
    assert summary["window"]["opened_after_s"] >= 1.0


def test_a_shapes_window_keeps_the_shapes_clock(tmp_path: Path) -> None:
    profile = tmp_path / "stages.yaml"
    profile.write_text(
        "name: stages\n"
        "requests:\n  - {protocol: openai, operation: chat, stream: true}\n"
        "load: {users: 4}\n"
        "warmup: 1s\nduration: 2s\n"
        "shape: {kind: stages, stages: [{duration: 1.5s, users: 2}, {duration: 1.5s, users: 4}]}\n"
        "mock: {ttft_ms: 50, itl_ms: 10}\n"
    )
    code, out, summary, run = gateprobe_load(tmp_path / "out", "--profile", str(profile))
    assert code == 0, out
    assert_measured_as_asked(summary, run, out, 2.0, shape_warmup=1.0)
    assert summary["window"]["opened_after_s"] >= 1.0 - SLACK_S  # the warmup, from the start
    assert "Shape test updating to 4 users" in (run / "locust.log").read_text()


def test_a_run_stopped_before_its_window_is_over_says_so(tmp_path: Path) -> None:
    profile = tmp_path / "long.yaml"
    profile.write_text(
        "name: long\nrequests:\n  - {protocol: openai, operation: chat, stream: true}\n"
        "load: {users: 2}\nwarmup: 0s\nduration: 60s\n"
    )
    report = tmp_path / "run"
    with MockProcess(ttft_ms=20, itl_ms=5) as mock:
        env = {
            **os.environ,
            **mock.env,
            "GATEPROBE_LOAD_PROFILE": str(profile),
            "GATEPROBE_LOAD_TARGET": str(MOCK_TARGET),
            "GATEPROBE_LOAD_REPORT_DIR": str(report),
        }
        # Locust itself, as the README's "Locust directly" runs it: -t 60s is the profile's
        locust = subprocess.Popen(
            [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", "2",
             "-r", "2", "-t", "60s", "--only-summary"],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            progress = report / "progress.json"
            while time.monotonic() < deadline:  # until the window is open and has requests
                data = json.loads(progress.read_text()) if progress.is_file() else {}
                if data.get("warmup") is False and data.get("requests", 0) > 0:
                    break
                time.sleep(0.2)
            locust.send_signal(signal.SIGTERM)
            _, log = locust.communicate(timeout=60)
        finally:
            if locust.poll() is None:
                locust.kill()
                locust.wait()
    summary = json.loads((report / "summary.json").read_text())
    win = summary["window"]
    assert win["asked_s"] == 60.0 and win["stopped_early"] is True
    assert 0 < win["wall_s"] < 60.0
    shortfall = [w for w in summary["warnings"] if w.startswith("measured ")]
    assert shortfall, (summary["warnings"], log)
    assert re.fullmatch(
        r"measured \d+\.\d+ s of the 60 s asked \(\d+%\): the run was stopped before its "
        r"window was over",
        shortfall[0],
    ), shortfall
    assert summary["throughput"]["window_s"] == win["wall_s"]
