"""``gateprobe load`` interrupted: Ctrl-C (SIGINT to the process group) or SIGTERM (to the pid)
stops Locust, its workers and the bundled mock within seconds, in that order (no request
fails because the mock went first), writes the reports of what ran marked interrupted, with
no SLO verdict, prints them and exits 130.

Each run is a subprocess in a session of its own, interrupted once its progress line shows
requests done. The summary and the format of an interrupted run are also checked on their own.
"""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path
from typing import Any

import pytest
from interrupt_support import Command, run_dir

from gateprobe.load.launch import EXIT_INTERRUPTED, format_summary
from gateprobe.load.summary import build_summary

STOP_LIMIT_S = 15.0  # "within seconds"; measured 1.6-3 s on the 2-core VM, plots included


def _requests_done(output: str) -> int:
    """The request count of the last progress line (``... | req 36 (6.0/s) | ...``)."""
    counts = re.findall(r"\| req (\d+) \(", output)
    return int(counts[-1]) if counts else 0


def _records(out: Path) -> list[dict[str, Any]]:
    text = (out / "requests.jsonl").read_text("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("sig", "group", "processes", "plots"),
    [(signal.SIGINT, True, None, True), (signal.SIGTERM, False, "2", False)],
    ids=["ctrl-c", "sigterm-processes"],
)
def test_an_interrupted_load_run_stops_everything_and_reports_what_ran(
    tmp_path: Path, sig: signal.Signals, group: bool, processes: str | None, plots: bool
) -> None:
    args = ["load", "--duration", "60", "--warmup", "0", "--users", "4"]
    args += ["--report-dir", str(tmp_path)]
    args += ["--processes", processes] if processes else []
    args += [] if plots else ["--no-plots"]
    command = Command(args)
    try:
        # a progress line with requests done: the mock, Locust (and its workers) all run
        command.wait_until(lambda: _requests_done(command.output) > 0, 90, "requests done")
        expected = 2 + (int(processes) if processes else 0)  # mock, Locust (+ its workers)
        command.wait_until(
            lambda: len(command.snapshot_descendants()) >= expected, 10, "every child started"
        )
        stop = command.interrupt(sig, group=group)
        print(f"stop time ({sig.name}, processes {processes}, plots {plots}): {stop:.2f} s")
        assert command.process.returncode == EXIT_INTERRUPTED, command.output
        assert stop < STOP_LIMIT_S, command.output
        assert command.left_behind() == []
    finally:
        command.kill_all()
    output = command.output
    assert f"interrupted ({sig.name}): stopping Locust" in output
    assert "result: interrupted after " in output and "no SLO verdict (exit 130)" in output
    assert "SLO partial " in output and "BREACH" not in output
    out = run_dir(tmp_path)
    assert f"reports: {out}/" in output
    assert "Traceback" not in output
    summary = json.loads((out / "summary.json").read_text("utf-8"))
    assert summary["interrupted"] is True
    assert 0 < summary["interruption"]["after_s"] < 60
    assert summary["slo"]["passed"] is None and summary["slo"]["partial"] is True
    requests = summary["requests"]
    records = _records(out)
    # the mock stopped after Locust: not one request failed for want of it
    failed = [r for r in records if not r.get("ok") and not r.get("unfinished")]
    assert requests["measured"] > 0 and requests["failed"] == 0, (requests, failed[:5])
    cut = [r for r in records if r.get("unfinished")]
    assert len(cut) == requests["unfinished"] <= 4  # the users' requests in flight
    assert all(r["interrupted"] and "when the run was interrupted" in r["error"] for r in cut)
    if processes:
        assert len(summary["workers"]) == int(processes)
    assert (out / "locust.html").is_file()  # Locust writes none itself on SIGTERM
    assert (out / "locust_stats.csv").is_file()
    assert (out / "ttft.png").is_file() is plots


def _record(ok: bool, ttft: float) -> dict[str, Any]:
    return {"name": "chat", "ok": ok, "start": 1000.0, "e2e_ms": 600.0, "ttft_ms": ttft,
            "status": 200 if ok else 503, "error_class": None if ok else "http_503"}  # fmt: skip


def test_an_interrupted_summary_gives_no_slo_verdict_but_shows_the_figures() -> None:
    records = [_record(True, 900.0), _record(False, 10.0)]
    slo = {"ttft_p99_ms": 500.0, "error_ratio": 0.01}
    complete = build_summary(records, slo=slo)
    assert complete["interrupted"] is False and complete["slo"]["passed"] is False
    partial = build_summary(records, slo=slo, interrupted=True)
    assert partial["interrupted"] is True
    assert partial["slo"]["passed"] is None and partial["slo"]["partial"] is True
    assert [r["passed"] for r in partial["slo"]["results"]] == [
        r["passed"] for r in complete["slo"]["results"]
    ]  # the figures are still there, for information
    partial["interruption"] = {"after_s": 7.5, "run_time_s": 30.0}
    partial["warnings"] = []
    text = format_summary(partial, EXIT_INTERRUPTED)
    assert "BREACH" not in text
    assert "SLO partial TTFT p99 900 ms > 500 ms" in text
    assert text.endswith("result: interrupted after 7.5 s, no SLO verdict (exit 130)")
    assert "SLO BREACH TTFT p99 900 ms > 500 ms" in format_summary(complete, 3)
