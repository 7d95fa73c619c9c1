"""``gateprobe load`` end to end: Locust in a child process against the bundled mock.

The mock is started with the profile's delays (TTFT 200 ms, ITL 20 ms), so the summary's
figures can be checked against that truth, and the counts against each other: the records,
Locust's own totals (not inflated by the LLM rows) and the closed loop's arithmetic.
"""

from __future__ import annotations

import csv
import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SECRET = re.compile(r"sk-gp-[0-9a-f]{16,}")


def gateprobe_load(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateprobe.cli", "load", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def run_dir(root: Path) -> Path:
    (found,) = [p for p in root.iterdir() if p.is_dir()]
    return found


def starved(summary: dict[str, Any]) -> bool:
    """The run says why its latencies are long: the generator's loop stood still, or the
    bundled mock (the target here) was saturated. On a machine busier than two cores can
    carry, the figures grow and these warnings are the product's promise."""
    return any(
        w.startswith(("measured ", "the bundled mock was the bottleneck"))
        for w in summary["warnings"]
    )


def behind_warning(summary: dict[str, Any]) -> bool:
    return any(w.startswith("the generator fell behind") for w in summary["warnings"])


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (path / "requests.jsonl").read_text().splitlines()]


def test_a_short_run_matches_the_mocks_delays_and_counts(tmp_path: Path) -> None:
    result = gateprobe_load(
        "--profile", "chat-steady", "--users", "4", "--duration", "3", "--warmup", "1",
        "--report-dir", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "result: passed (exit 0)" in result.stdout
    # the progress line: rolling figures while it runs
    progress = re.findall(
        r"\[\s*\d+s/4s(?: warmup)?\] users 4 \| req \d+ \(([\d.]+)/s\) \| fail 0 \| "
        r"TTFT p50 ([\d.]+) ms \| ITL p50 ([\d.]+) ms",
        result.stdout + result.stderr,
    )
    assert progress, result.stdout + result.stderr
    rate, ttft, itl = (float(v) for v in progress[-1])
    out = run_dir(tmp_path)
    summary = json.loads((out / "summary.json").read_text())
    metrics = summary["metrics"]
    # the mock waits 200 ms before the first token and 20 ms before each next one; a starved
    # machine can only make them longer, and then the run must say so
    assert rate > 0 and ttft >= 195 and itl >= 19
    assert (ttft <= 260 and itl <= 26) or starved(summary), (ttft, itl, summary["warnings"])
    assert metrics["ttft_ms"]["p50"] >= 199.0 and metrics["itl_ms"]["p50"] >= 19.0
    assert metrics["tpot_ms"]["p50"] >= 19.0
    within = (
        metrics["ttft_ms"]["p50"] <= 230.0
        and metrics["itl_ms"]["p50"] <= 25.0
        and metrics["tpot_ms"]["p50"] <= 25.0
    )
    assert within or starved(summary), (metrics, summary["warnings"])
    tokens = metrics["output_tokens"]["p50"]
    assert metrics["e2e_ms"]["p50"] >= 200 + 20 * (tokens - 1)
    assert metrics["ttst_ms"]["p50"] - metrics["ttft_ms"]["p50"] >= 19.0
    assert summary["requests"]["output_tokens_source"] == {"usage": summary["requests"]["ok"]}
    # counts: records, Locust's totals after the warmup, the closed loop's arithmetic
    all_records = records(out)
    measured = [r for r in all_records if not r["warmup"] and not r.get("unfinished")]
    unfinished = [r for r in all_records if r.get("unfinished")]
    assert summary["requests"]["measured"] == len(measured) > 0
    assert summary["requests"]["unfinished"] == len(unfinished) <= 4  # one per user at most
    warmup = len(all_records) - len(measured) - len(unfinished)
    assert summary["requests"]["warmup_excluded"] == warmup > 0
    assert summary["locust"]["requests"] == len(measured)
    assert summary["locust"]["failures"] == summary["requests"]["failed"] == 0
    expected = 4 * summary["throughput"]["window_s"] * 1000 / metrics["e2e_ms"]["mean"]
    assert 0.7 * expected <= len(measured) <= 1.2 * expected + 4
    # Locust's table: LLM rows in ms (its columns' unit), the Aggregated row counts only
    # real requests
    with (out / "locust_stats.csv").open(encoding="utf-8") as handle:
        rows = {(r["Type"], r["Name"]): r for r in csv.DictReader(handle)}
    real = sum(int(r["Request Count"]) for (kind, _), r in rows.items() if kind not in ("LLM", ""))
    assert int(rows[("", "Aggregated")]["Request Count"]) == real > 0
    itl_row = rows[("LLM", "ITL openai chat stream")]
    # the mock's 20 ms gaps, to the hundredth of a ms and as summary.json has them
    median = float(itl_row["Median Response Time"])
    assert 19 <= median <= 25 and median == pytest.approx(metrics["itl_ms"]["p50"], rel=0.005)
    # Locust's percentiles are nearest-rank (the sample at index int(n * q) of the sorted
    # gaps), summary.json's interpolate: in a sparse tail they differ, so each is held to its
    # own definition over the same gaps
    gaps = sorted(g for r in measured if r.get("ok") for g in r.get("itl_ms") or ())
    assert int(itl_row["Request Count"]) == len(gaps) == metrics["itl_ms"]["count"]
    nearest = gaps[int(len(gaps) * 0.99)]
    assert float(itl_row["99%"]) == pytest.approx(nearest, rel=0.002)
    assert int(itl_row["Request Count"]) > int(
        rows[("POST", "openai chat stream")]["Request Count"]
    )
    ttft_row = rows[("LLM", "TTFT openai chat stream")]
    assert float(ttft_row["Min Response Time"]) == pytest.approx(
        metrics["ttft_ms"]["min"], abs=0.001
    )
    # outputs, and no key in any of them
    for name in ("locust.html", "locust_stats_history.csv", "ttft.png", "itl.png", "over_time.png"):
        assert (out / name).is_file(), name
    assert (out / "ttft.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for path in out.iterdir():
        assert not SECRET.search(path.read_text("utf-8", "replace")), path
    assert not SECRET.search(result.stdout + result.stderr)


def test_an_slo_breach_exits_3(tmp_path: Path) -> None:
    result = gateprobe_load(
        "--profile", "chat-steady", "--users", "2", "--duration", "2", "--warmup", "0",
        "--slo", "ttft_p50_ms=50", "--no-plots", "--report-dir", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 3, result.stdout + result.stderr
    assert re.search(r"SLO BREACH TTFT p50 2\d\d\.\d+ ms > 50 ms", result.stdout)
    assert "result: SLO breached (exit 3)" in result.stdout
    summary = json.loads((run_dir(tmp_path) / "summary.json").read_text())
    assert summary["slo"]["passed"] is False
    assert summary["slo"]["thresholds"]["ttft_p50_ms"] == 50


def test_open_loop_poisson_arrivals_hold_the_rate(tmp_path: Path) -> None:
    result = gateprobe_load(
        "--profile", "chat-steady", "--rate", "20", "--arrival", "poisson", "--users", "20",
        "--duration", "3", "--warmup", "1", "--no-plots", "--report-dir", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((run_dir(tmp_path) / "summary.json").read_text())
    assert summary["profile"]["mode"] == "open" and summary["profile"]["arrival"] == "poisson"
    # 20/s: the requests that ended in the 3 s after the 1 s warmup (which leaves the start-up
    # out) are those sent in a 3 s window, 60 on average. A Poisson count's standard
    # deviation is its square root.
    expected = 20 * 3
    measured = summary["requests"]["measured"]
    assert abs(measured - expected) <= 4 * math.sqrt(expected) + 2, (measured, expected)
    lag = summary["metrics"]["schedule_lag_ms"]
    assert lag["count"] == summary["requests"]["measured"]
    # the share sent more than 10 ms late is what the records say; a starved machine (CI
    # beside other jobs) can put a few requests behind, a working pacer not most of them
    measured_records = [
        r for r in records(run_dir(tmp_path)) if not r["warmup"] and not r.get("unfinished")
    ]
    late = sum(1 for r in measured_records if r["schedule_lag_ms"] > 10.0)
    fraction = summary["throughput"]["behind_schedule_fraction"]
    assert fraction == round(late / len(measured_records), 6)
    assert fraction < 0.3 or (behind_warning(summary) and starved(summary)), summary["warnings"]


def test_a_bad_profile_is_a_usage_error_before_anything_starts(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\nrequests:\n  - {protocol: openai, operation: chat}\nload:\n  users: 0\n"
    )
    result = gateprobe_load("--profile", str(bad), "--report-dir", str(tmp_path / "out"))
    assert result.returncode == 2
    assert f"{bad}:5: load.users: " in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
    result = gateprobe_load("--slo", "ttft=3", "--report-dir", str(tmp_path / "out"))
    assert result.returncode == 2 and "unknown key 'ttft'" in result.stderr


def test_failures_are_classified_and_counted_once(tmp_path: Path) -> None:
    profile = tmp_path / "faults.yaml"
    profile.write_text(
        "name: faults\n"
        "requests:\n"
        "  - {name: ok, protocol: openai, operation: chat, stream: true}\n"
        "  - {name: refused, protocol: openai, operation: chat, stream: true,\n"
        "     model: gpt-4o-mini--error-503}\n"
        "  - {name: cut, protocol: anthropic, operation: chat, stream: true,\n"
        "     model: claude-sonnet-4-5--cut-after-3}\n"
        "  - {name: failing, protocol: gemini, operation: chat, stream: true,\n"
        "     model: gemini-2.5-flash--fail-after-2}\n"
        "load: {users: 4}\n"
        "mock: {ttft_ms: 20, itl_ms: 5}\n"
    )
    result = gateprobe_load(
        "--profile", str(profile), "--duration", "2", "--warmup", "0", "--no-plots",
        "--report-dir", str(tmp_path / "out"),
    )  # fmt: skip
    # the mock's target profile sets error_ratio 0.01: the SLO judges the errors (exit 3)
    assert result.returncode == 3, result.stdout + result.stderr
    summary = json.loads((run_dir(tmp_path / "out") / "summary.json").read_text())
    requests = summary["requests"]
    assert set(requests["by_error_class"]) == {"http_503", "truncated", "in_band_error"}
    assert requests["failed"] == sum(requests["by_error_class"].values())
    assert summary["locust"]["failures"] == requests["failed"]  # once each, in Locust too
    assert summary["locust"]["requests"] == requests["measured"]
    by_name = summary["by_request"]
    assert by_name["ok"]["failed"] == 0 and by_name["ok"]["ttft_ms"]["count"] > 0
    for name in ("refused", "cut", "failing"):
        assert by_name[name]["failed"] == by_name[name]["measured"] > 0
        assert by_name[name]["ttft_ms"] == {"count": 0}  # failures stay out of latencies
    bad = [r for r in records(run_dir(tmp_path / "out")) if r["name"] == "refused"]
    assert bad[0]["status"] == 503 and '"error"' in bad[0]["error"]  # the body, for the record
