"""The mock's event-loop lag over a window: what a load run reads to blame the mock, not
the target (``GET /_gateprobe/health?since=<epoch seconds>``)."""

from __future__ import annotations

import time

import httpx
from support import ADMIN

from gateprobe.mock.state import LoopLag


def test_snapshot_since_keeps_only_the_later_samples() -> None:
    lag = LoopLag()
    now = time.time()
    for age, value in ((30, 50.0), (20, 40.0), (5, 1.0), (4, 2.0), (3, 3.0)):
        lag.samples.append(value)
        lag.times.append(now - age)
        lag.worst = max(lag.worst, value)
    everything = lag.snapshot()
    assert everything["samples"] == 5 and everything["p99"] == 50.0
    recent = lag.snapshot(since=now - 10)
    assert recent["samples"] == 3 and recent["p99"] == 3.0 and recent["p50"] == 2.0
    assert recent["max"] == 50.0  # all-time, as before
    assert lag.snapshot(since=now + 1)["samples"] == 0


def test_health_takes_a_since_parameter(client: httpx.Client) -> None:
    time.sleep(0.2)  # a few samples of the 50 ms lag probe
    whole = client.get("/_gateprobe/health", headers=ADMIN).json()["loop_lag_ms"]
    assert whole["samples"] >= 1
    future = client.get(f"/_gateprobe/health?since={time.time() + 60}", headers=ADMIN)
    assert future.status_code == 200 and future.json()["loop_lag_ms"]["samples"] == 0
    bad = client.get("/_gateprobe/health?since=soon", headers=ADMIN)
    assert bad.status_code == 400 and "since" in bad.text
