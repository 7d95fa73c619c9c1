"""A Locust master and two workers on loopback: the master's records and totals are the sum
of what each worker made and sent."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

from gateprobe.load.mock_process import MockProcess
from gateprobe.provision import MOCK_TARGET


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_master_and_two_workers_aggregate_exactly(tmp_path: Path) -> None:
    port = str(free_port())
    common = ["--target", str(MOCK_TARGET), "--master-port", port]
    with MockProcess(ttft_ms=50, itl_ms=5) as mock:
        env = {**os.environ, **mock.env}
        command = [sys.executable, "-m", "gateprobe.cli", "load"]
        master = subprocess.Popen(
            [*command, "--master", "--expect-workers", "2", "--users", "6", "--duration", "3",
             "--warmup", "0", "--no-plots", "--report-dir", str(tmp_path), *common],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        workers = [
            subprocess.Popen(
                [*command, "--worker", *common],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(2)
        ]
        try:
            master_out, _ = master.communicate(timeout=90)
            worker_outs = [w.communicate(timeout=30)[0] for w in workers]
        finally:
            for process in (master, *workers):
                if process.poll() is None:
                    process.kill()
                    process.wait()
    assert master.returncode == 0, master_out
    made, sent = [], []
    for out in worker_outs:
        match = re.search(r"gateprobe worker (\S+): (\d+) requests recorded, (\d+) sent", out)
        assert match, out
        made.append(int(match.group(2)))
        sent.append(int(match.group(3)))
    assert made == sent and all(n > 0 for n in made)
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    summary = json.loads((run / "summary.json").read_text())
    lines = (run / "requests.jsonl").read_text().splitlines()
    assert len(lines) == sum(made)
    # what each worker made: requests measured in the window, those that ended before it
    # opened (the users were being spawned) and those its users were in when it closed
    requests = summary["requests"]
    measured, unfinished = requests["measured"], requests["unfinished"]
    assert measured + unfinished + requests["warmup_excluded"] == sum(made) and unfinished <= 6
    # Locust's own aggregated total: the workers' reports made before their window opened
    # are left out of it, as their records are
    assert summary["locust"]["requests"] == measured > 0
    # the master kept the window: as long as asked, with each worker's stalls
    window = summary["window"]
    assert window["asked_s"] == 3.0 and window["wall_s"] >= 3.0 and not window["stopped_early"]
    assert summary["throughput"]["window_s"] == window["wall_s"]
    assert set(window["stalls"]["by_process"]) == {"master", *summary["workers"]}
    assert sum(summary["workers"].values()) == measured and len(summary["workers"]) == 2
    assert sorted(summary["locust"]["workers_reported"].values()) == sorted(made)
    assert summary["requests"]["failed"] == 0
