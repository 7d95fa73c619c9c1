"""``gateprobe load --overhead`` against a real gateway: LiteLLM proxy 1.106.2 in front of
``gateprobe mock --mode upstream --workers 2``, a short run (2 rounds), as a user runs it.

The figures of a real gateway are not known in advance; what is asserted is that the report
is complete and sane: every metric and percentile has both sides and its pairs, the added
TTFT is finite and not below what measurement noise allows (a gateway cannot answer before
its upstream), and no key appears in any output. Set up as tests/gateways/test_real_gateways.py
(GATEPROBE_GATEWAYS_HOME, from .ci/gateways).
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_real_gateways import GATEPROBE, HOME, MASTER_KEY, PROFILES, Gateway, _env

pytestmark = [
    pytest.mark.gateway,
    pytest.mark.skipif(
        not HOME, reason="real gateways not installed: .ci/gateways installs them (see .ci/run)"
    ),
]


@pytest.fixture(scope="module")
def upstream_workers() -> Iterator[str]:
    process = subprocess.Popen(
        [*GATEPROBE, "mock", "--mode", "upstream", "--workers", "2", "--host", "127.0.0.1",
         "--port", "0", "--quiet", "--ttft-ms", "50", "--itl-ms", "5"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=_env(),
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline()
    assert "listening on http://127.0.0.1:" in line, line
    yield line.rsplit(" ", 1)[1].strip()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=15)


@pytest.fixture(scope="module")
def litellm_over_workers(
    upstream_workers: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    gateway = Gateway(
        "litellm", tmp_path_factory.mktemp("litellm-overhead"), LITELLM_MASTER_KEY=MASTER_KEY
    )
    gateway.start(upstream_workers)
    yield gateway
    gateway.stop()


def test_litellm_overhead_report_is_complete_and_sane(
    upstream_workers: str, litellm_over_workers: Gateway, tmp_path: Path
) -> None:
    env = _env(
        LITELLM_URL=litellm_over_workers.info["URL"],
        LITELLM_MASTER_KEY=MASTER_KEY,
        GATEPROBE_UPSTREAM_URL=upstream_workers,
        GATEPROBE_UPSTREAM_KEY="sk-any",
    )
    done = subprocess.run(
        [*GATEPROBE, "load", "--overhead", "--target", str(PROFILES / "litellm-1.106.2.yaml"),
         "--upstream", str(PROFILES / "upstream-mock.yaml"), "--rounds", "2",
         "--duration", "6", "--warmup", "1", "--users", "4", "--report-dir", str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Traceback" not in output
    (path,) = tmp_path.glob("*/overhead.json")
    report = json.loads(path.read_text("utf-8"))
    assert report["rounds"]["pairs"] == 2
    assert report["targets"]["gateway"]["name"] == "litellm-1.106.2"
    for metric in ("ttft_ms", "itl_ms", "e2e_ms"):
        for stat in ("p50", "p90", "p95", "p99"):
            row = report["metrics"][metric][stat]
            assert row["pairs"] == 2, (metric, stat, row)
            assert all(math.isfinite(row[k]) for k in ("direct", "gateway", "added"))
    ttft = report["metrics"]["ttft_ms"]["p50"]
    assert ttft["added"] > -5, ttft  # a gateway cannot answer before its upstream
    assert ttft["direct"] >= 50 and ttft["gateway"] >= 50
    assert report["requests"]["gateway"]["failed"] == 0
    assert report["saturation"]["upstream"]["available"] is True
    assert len(report["saturation"]["upstream"]["pids"]) == 2
    assert MASTER_KEY not in output
    for file in path.parent.rglob("*"):
        if file.is_file():
            assert MASTER_KEY not in file.read_text("utf-8", "replace"), file
