"""``gateprobe mock --workers N``: N processes really serve one socket, and stop together.

The mock runs as a user starts it (a subprocess of ``gateprobe mock``) on an OS-chosen
loopback port; ``GET /_gateprobe/health`` says which process answered.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from support import ADMIN

GATEPROBE = [sys.executable, "-m", "gateprobe.cli"]


def _children(pid: int) -> set[int]:
    """The live processes whose parent is ``pid`` (Linux /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def two_workers() -> Iterator[tuple[subprocess.Popen[str], str]]:
    process = subprocess.Popen(
        [*GATEPROBE, "mock", "--mode", "upstream", "--workers", "2", "--port", "0", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("gateprobe mock listening on http://127.0.0.1:"), line
    yield process, line.rsplit(" ", 1)[1].strip()
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)


def _health_pid(url: str) -> int:
    # a fresh connection each time: the kernel gives each to whichever worker accepts it
    answer = httpx.get(url + "/_gateprobe/health", headers=ADMIN, timeout=10)
    assert answer.status_code == 200
    pid: int = answer.json()["pid"]
    return pid


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_two_workers_serve_and_stop_together(
    two_workers: tuple[subprocess.Popen[str], str],
) -> None:
    process, url = two_workers
    workers = _children(process.pid)
    assert len(workers) == 2
    with ThreadPoolExecutor(16) as pool:
        pids = set(pool.map(lambda _: _health_pid(url), range(200)))
    assert pids == workers  # both workers answered, and only they (not the parent)
    # any key, no quota: a real model call is answered by a worker too
    chat = httpx.post(
        url + "/v1/chat/completions",
        headers={"Authorization": "Bearer sk-anything"},
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        timeout=10,
    )
    assert chat.status_code == 200 and chat.json()["choices"][0]["message"]["content"]
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in workers)
    assert process.stdout is not None and process.stdout.read() == ""  # the URL line once
    assert process.stderr is not None and "Traceback" not in process.stderr.read()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_die_with_a_killed_parent(two_workers: tuple[subprocess.Popen[str], str]) -> None:
    process, _ = two_workers
    workers = _children(process.pid)
    assert len(workers) == 2
    process.kill()  # no chance to stop them: the kernel's parent-death signal does
    process.wait(timeout=10)
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in workers)


def test_ctrl_c_stops_every_worker_with_exit_0() -> None:
    # the terminal's Ctrl-C reaches the whole process group: the parent and the workers
    process = subprocess.Popen(
        [*GATEPROBE, "mock", "--mode", "upstream", "--workers", "2", "--port", "0", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        process_group=0,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().rsplit(" ", 1)[1].strip()
        assert _health_pid(url) != process.pid
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=15) == 0
        assert process.stderr is not None and "Traceback" not in process.stderr.read()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_more_than_one_worker_in_gateway_mode_is_a_usage_error() -> None:
    done = subprocess.run(
        [*GATEPROBE, "mock", "--workers", "2", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "--workers 2 needs --mode upstream" in done.stderr
    assert "Traceback" not in done.stderr
    assert "listening" not in done.stdout
    bad = subprocess.run(
        [*GATEPROBE, "mock", "--mode", "upstream", "--workers", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
