"""The upstream mock's CPU: found by its listening socket, read from /proc, judged saturated
at a demand of 90% of a core; recorded in a plain load run's summary when gateprobe started
the mock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateprobe.load.mock_cpu import CpuWatch, listener_pids, note_mock_cpu, saturation_warning
from gateprobe.mock.server import MockServer

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


@linux
def test_the_process_listening_for_a_url_is_found_and_sampled() -> None:
    with MockServer() as mock:  # in this process: its listening socket is ours
        assert listener_pids(mock.url) == [os.getpid()]
        watch = CpuWatch(mock.url, interval=0.05).start()
        sum(i * i for i in range(300_000))  # some CPU to see
        figures = watch.stop().figures()
    assert figures["available"] is True and figures["workers"][0]["pid"] == os.getpid()
    # CPU time over wall time of this whole process: its threads may use every core
    assert 0 < figures["max_busy"] <= (os.cpu_count() or 1) + 0.05
    assert listener_pids("http://10.1.2.3:80") == []  # not this machine's to read


def _watch(samples: list[tuple[float, dict[int, tuple[float, float | None]]]]) -> CpuWatch:
    watch = CpuWatch("http://127.0.0.1:1")
    watch.pids = sorted(samples[0][1])
    watch.samples = samples
    return watch


def test_busy_and_waiting_over_the_window_make_the_demand() -> None:
    # pid 1: 0.8 s of CPU and 0.15 s waiting for one in the 1 s window; pid 2: 0.1 s
    watch = _watch([
        (100.0, {1: (5.0, 1.0), 2: (1.0, 0.0)}),
        (101.0, {1: (5.8, 1.15), 2: (1.1, 0.0)}),
        (102.0, {1: (5.8, 1.15), 2: (1.1, 0.0)}),  # after the window: not counted
    ])  # fmt: skip
    figures = watch.figures(100.2, 100.9)
    assert figures["window_s"] == 1.0
    one, two = figures["workers"]
    assert (one["busy"], one["waiting"], one["demand"]) == (0.8, 0.15, 0.95)
    assert two["demand"] == pytest.approx(0.1)
    assert figures["saturated"] is True and figures["max_demand"] == 0.95
    warning = saturation_warning(figures)
    assert warning is not None
    assert warning.startswith("upstream mock saturated: worker CPU 80% + 15% waiting for a CPU")
    assert "pid 1, 2 worker(s); limit 90%" in warning
    summary: dict[str, object] = {"window": {"opened": 100.2, "closed": 100.9}, "warnings": []}
    note_mock_cpu(summary, watch, "the bundled mock")
    assert summary["mock"] == {"cpu": figures}
    assert summary["warnings"] == [warning.replace("upstream mock", "the bundled mock")]


def test_an_idle_mock_is_not_saturated_and_no_proc_says_why() -> None:
    idle = _watch([(0.0, {7: (1.0, None)}), (2.0, {7: (1.2, None)})]).figures()
    assert idle["workers"] == [{"pid": 7, "busy": 0.1, "waiting": None, "demand": 0.1}]
    assert idle["saturated"] is False and saturation_warning(idle) is None
    missing = CpuWatch("http://127.0.0.1:1")
    missing.reason = "no /proc on this system"
    assert missing.figures() == {"available": False, "reason": "no /proc on this system"}
    assert saturation_warning(missing.figures()) is None


@linux
def test_a_plain_run_records_the_bundled_mocks_cpu(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gateprobe.cli", "load", "--users", "2", "--duration", "2",
         "--warmup", "0.5", "--mock-workers", "2", "--no-plots", "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 workers)" in done.stdout
    (summary_path,) = tmp_path.glob("*/summary.json")
    cpu = json.loads(summary_path.read_text("utf-8"))["mock"]["cpu"]
    assert cpu["available"] is True and len(cpu["workers"]) == 2
    assert cpu["threshold"] == 0.9 and cpu["saturated"] is False  # 2 users at 200/20 ms
