"""``gateprobe load --overhead`` end to end, driven as a user drives it (a subprocess).

The "gateway" is a second ``gateprobe mock --mode upstream`` whose TTFT is 40 ms longer than
the upstream's and which fronts nothing: what it adds is known, 40 ms to TTFT and e2e and
nothing to ITL. The upstream runs with two workers, as a load run should use it. Both mocks
are on OS-chosen loopback ports, started and stopped here.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
UPSTREAM_PROFILE = ROOT / "fixtures" / "targets" / "upstream-mock.yaml"
GATEPROBE = [sys.executable, "-m", "gateprobe.cli"]
KEY = "sk-overhead-test-0123456789abcdef"
INJECTED_MS = 40.0


def _mock(*args: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [*GATEPROBE, "mock", "--mode", "upstream", "--port", "0", "--quiet", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert "listening on http://127.0.0.1:" in line, line
    return process, line.rsplit(" ", 1)[1].strip()


@pytest.fixture(scope="module")
def mocks() -> Iterator[dict[str, str]]:
    upstream, upstream_url = _mock("--ttft-ms", "10", "--itl-ms", "2", "--workers", "2")
    gateway, gateway_url = _mock("--ttft-ms", str(10 + INJECTED_MS), "--itl-ms", "2")
    yield {"upstream": upstream_url, "gateway": gateway_url}
    for process in (upstream, gateway):
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0


def _gateway_profile(tmp_path: Path) -> Path:
    profile = yaml.safe_load(UPSTREAM_PROFILE.read_text("utf-8"))
    profile.update(name="fake-gateway", base_url="${FAKE_GATEWAY_URL}")
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(profile), "utf-8")
    return path


def overhead(
    mocks: dict[str, str], report_dir: Path, *args: str, users: int = 4
) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        GATEPROBE_UPSTREAM_URL=mocks["upstream"],
        FAKE_GATEWAY_URL=mocks["gateway"],
        GATEPROBE_UPSTREAM_KEY=KEY,
    )
    return subprocess.run(
        [*GATEPROBE, "load", "--overhead", "--upstream", str(UPSTREAM_PROFILE),
         "--report-dir", str(report_dir), "--users", str(users), "--warmup", "0.5", *args],
        capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _report(report_dir: Path) -> tuple[Path, dict[str, Any]]:
    (path,) = report_dir.glob("*/overhead.json")
    return path.parent, json.loads(path.read_text("utf-8"))


def _no_key_anywhere(out_dir: Path, result: subprocess.CompletedProcess[str]) -> None:
    assert KEY not in result.stdout + result.stderr
    for path in out_dir.rglob("*"):
        if path.is_file():
            assert KEY not in path.read_text("utf-8", "replace"), path


def test_the_added_ttft_is_the_injected_delay(mocks: dict[str, str], tmp_path: Path) -> None:
    gateway = _gateway_profile(tmp_path)
    result = overhead(mocks, tmp_path / "out", "--target", str(gateway), "--duration", "4",
                      "--rounds", "2")  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Traceback" not in output
    out_dir, report = _report(tmp_path / "out")
    assert report["kind"] == "gateprobe-overhead" and report["interrupted"] is False
    assert report["profile"]["name"] == "chat-steady"
    assert report["profile"]["duration_per_round_s"] == 2.0
    # pairs alternate their order, each side an ordinary run with its own directory
    assert report["rounds"]["order"] == [["direct", "gateway"], ["gateway", "direct"]]
    assert report["rounds"]["pairs"] == 2
    for run in report["rounds"]["runs"]:
        assert run["exit"] == 0
        summary = json.loads((out_dir / run["dir"] / "summary.json").read_text("utf-8"))
        assert summary["requests"]["ok"] > 0 and summary["requests"]["failed"] == 0
    assert report["targets"]["gateway"]["name"] == "fake-gateway"
    assert report["targets"]["direct"]["base_url"] == mocks["upstream"]
    metrics = report["metrics"]
    for name in ("ttft_ms", "itl_ms", "e2e_ms"):
        for stat in ("p50", "p90", "p95", "p99"):
            row = metrics[name][stat]
            assert len(row["per_round"]) == 2 and row["pairs"] == 2
            assert row["added_spread"]["min"] <= row["added"] <= row["added_spread"]["max"]
            for pair in row["per_round"]:
                assert pair["added"] == pytest.approx(pair["gateway"] - pair["direct"], abs=1e-3)
    ttft = metrics["ttft_ms"]["p50"]
    # the gateway's 40 ms is a floor it cannot undercut; a loaded machine may add to it
    assert INJECTED_MS - 3 <= ttft["added"] <= INJECTED_MS + 40, ttft
    assert ttft["direct"] >= 10 and ttft["gateway"] >= 10 + INJECTED_MS
    assert abs(metrics["itl_ms"]["p50"]["added"]) <= 3, metrics["itl_ms"]["p50"]
    assert INJECTED_MS - 10 <= metrics["e2e_ms"]["p50"]["added"] <= INJECTED_MS + 60
    # the upstream's two workers were found and sampled in every run
    upstream = report["saturation"]["upstream"]
    assert upstream["available"] is True and len(upstream["pids"]) == 2
    assert len(upstream["per_run"]) == 4
    assert all(r["cpu"]["available"] for r in upstream["per_run"])
    assert 0 <= upstream["max_busy"] <= 1.0 and isinstance(upstream["saturated"], bool)
    assert report["requests"]["direct"]["requests_per_s"] > 0
    # the compact table
    row = re.search(r"^ttft\s+p50\s+([\d.]+)\s+([\d.]+)\s+([+-][\d.]+)\s", result.stdout, re.M)
    assert row and float(row.group(3)) == pytest.approx(ttft["added"], abs=0.01)
    assert re.search(r"^e2e\s+p99\s", result.stdout, re.M)
    _no_key_anywhere(out_dir, result)


def test_direct_against_itself_adds_about_nothing(mocks: dict[str, str], tmp_path: Path) -> None:
    result = overhead(mocks, tmp_path, "--target", str(UPSTREAM_PROFILE), "--duration", "3",
                      "--rounds", "2", users=2)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    _, report = _report(tmp_path)
    assert abs(report["metrics"]["ttft_ms"]["p50"]["added"]) <= 5, report["metrics"]["ttft_ms"]
    assert abs(report["metrics"]["itl_ms"]["p50"]["added"]) <= 2
    assert abs(report["metrics"]["e2e_ms"]["p50"]["added"]) <= 10


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--overhead", "--target", "T"], "--overhead needs --upstream FILE"),
        (["--overhead", "--upstream", "U"], "--overhead needs --target FILE"),
        (["--upstream", "U", "--target", "T"], "--upstream applies to --overhead runs"),
        (["--rounds", "3"], "--rounds applies to --overhead runs"),
        (
            ["--overhead", "--target", "T", "--upstream", "U", "--rounds", "1"],
            "--rounds must be >= 2",
        ),
        (
            ["--overhead", "--target", "T", "--upstream", "U", "--duration", "3", "--rounds", "4"],
            "would measure 0.75 s",
        ),
        (["--overhead", "--target", "T", "--upstream", "missing.yaml"], "target file not found"),
        (
            ["--overhead", "--target", "T", "--upstream", "U", "--profile", "spike"],
            "needs a steady profile",
        ),
        (["--overhead", "--target", "T", "--upstream", "U", "--master"], "not with --master"),
        (["--overhead", "--target", "T", "--upstream", "U", "--rounds", "0"], "must be >= 1"),
    ],
)
def test_bad_overhead_input_is_a_usage_error(args: list[str], message: str, tmp_path: Path) -> None:
    files = {"T": str(UPSTREAM_PROFILE), "U": str(UPSTREAM_PROFILE)}
    argv = [files.get(a, a) for a in args]
    env = dict(os.environ, GATEPROBE_UPSTREAM_KEY=KEY)
    done = subprocess.run(
        [*GATEPROBE, "load", *argv, "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not list(tmp_path.glob("*/overhead.json"))
