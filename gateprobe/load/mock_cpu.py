"""Was the upstream mock saturated? Its processes' CPU over a run, read from /proc.

The mock's processes are found by the socket they listen on (the one that serves the URL:
every ``--workers`` process holds it, and only they), so this works for a mock gateprobe
started and for one the user started, as long as it runs on this machine as this user.
Each process is sampled every ``INTERVAL_S`` in a background thread: CPU time (utime +
stime of ``/proc/<pid>/stat``) and, where the kernel keeps it, the time it was runnable but
waiting for a CPU (``/proc/<pid>/schedstat``). Over a window, a worker's *busy* fraction is
its CPU time over the wall time and its *demand* is busy plus waiting: a single-threaded
event loop whose demand nears 1 could not keep up (its requests queued behind each other,
whether for its own CPU or for a CPU the machine did not have). Saturated means some worker's
demand was at or over ``SATURATED`` (0.9).

Elsewhere than Linux, or when the processes cannot be found or read, the figures say
``"available": false`` with the reason and no warning is made: nothing is guessed.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "INTERVAL_S",
    "SATURATED",
    "CpuWatch",
    "listener_pids",
    "note_mock_cpu",
    "saturation_warning",
]

INTERVAL_S = 0.5
SATURATED = 0.9
PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in (PROC / "net" / table).read_text().splitlines()[1:]:
                fields = line.split()
                listening = len(fields) > 9 and fields[3] == _LISTEN
                if listening and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    return inodes


def listener_pids(url: str) -> list[int]:
    """The processes of this machine holding the socket that listens for ``url`` (its
    loopback port): every worker of a ``gateprobe mock --workers N``. Empty when the host is
    not local or nothing readable listens there."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host != "localhost":
        try:
            if not ipaddress.ip_address(host).is_loopback:
                return []
        except ValueError:
            return []
    port = parts.port or (443 if parts.scheme == "https" else 80)
    wanted = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    if not wanted:
        return []
    pids = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):  # another user's process, or one that just ended
            if any(os.readlink(fd) in wanted for fd in (entry / "fd").iterdir()):
                pids.append(int(entry.name))
    return sorted(pids)


def _cpu_of(pid: int) -> tuple[float, float | None] | None:
    """(CPU seconds, seconds waiting for a CPU or None) of a live process, else None."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the command name may hold spaces
    if fields[0] in ("Z", "X"):
        return None
    cpu = (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime
    waiting: float | None = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        waiting = int((PROC / str(pid) / "schedstat").read_text().split()[1]) / 1e9
    return cpu, waiting


Sample = tuple[float, dict[int, tuple[float, float | None]]]


class CpuWatch:
    """Samples the CPU of the processes serving ``url`` from ``start()`` to ``stop()``."""

    def __init__(self, url: str, *, interval: float = INTERVAL_S) -> None:
        self.url = url
        self.interval = interval
        self.pids: list[int] = []
        self.samples: list[Sample] = []
        self.reason: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gateprobe-mock-cpu", daemon=True)

    def start(self) -> CpuWatch:
        if not (PROC / "self" / "stat").is_file():
            self.reason = "no /proc on this system"
            return self
        self.pids = listener_pids(self.url)
        if not self.pids:
            self.reason = f"no readable local process listens for {self.url}"
            return self
        self._sample()
        self._thread.start()
        return self

    def stop(self) -> CpuWatch:
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join(timeout=5)
            self._sample()
        return self

    def _sample(self) -> None:
        readings = {pid: r for pid in self.pids if (r := _cpu_of(pid)) is not None}
        self.samples.append((time.time(), readings))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def figures(self, start: float | None = None, end: float | None = None) -> dict[str, Any]:
        """Busy and demand per worker between ``start`` and ``end`` (epoch seconds; default
        all that was sampled), from the samples just outside the window."""
        if self.reason is not None or len(self.samples) < 2:
            return {"available": False, "reason": self.reason or "too short to sample"}
        first = self.samples[0]
        for sample in self.samples:
            if start is not None and sample[0] <= start:
                first = sample
        last = self.samples[-1]
        for sample in reversed(self.samples):
            if end is not None and sample[0] >= end:
                last = sample
        wall = last[0] - first[0]
        if wall <= 0:
            return {"available": False, "reason": "too short to sample"}
        workers: list[dict[str, Any]] = []
        for pid in self.pids:
            before, after = first[1].get(pid), last[1].get(pid)
            if before is None or after is None:
                continue
            busy = (after[0] - before[0]) / wall
            waiting = (
                (after[1] - before[1]) / wall
                if after[1] is not None and before[1] is not None
                else None
            )
            workers.append(
                {
                    "pid": pid,
                    "busy": round(busy, 4),
                    "waiting": round(waiting, 4) if waiting is not None else None,
                    "demand": round(busy + (waiting or 0.0), 4),
                }
            )
        if not workers:
            return {"available": False, "reason": "the mock's processes ended before the run"}
        worst = max(workers, key=lambda w: float(w["demand"]))
        return {
            "available": True,
            "source": "/proc/<pid>/stat and schedstat",
            "window_s": round(wall, 3),
            "workers": workers,
            "max_busy": max(float(w["busy"]) for w in workers),
            "max_demand": worst["demand"],
            "threshold": SATURATED,
            "saturated": float(worst["demand"]) >= SATURATED,
        }


def saturation_warning(cpu: Mapping[str, Any], what: str = "upstream mock") -> str | None:
    """The warning a saturated mock's figures call for, else None."""
    if not cpu.get("available") or not cpu.get("saturated"):
        return None
    worst = max(cpu["workers"], key=lambda w: float(w["demand"]))
    waiting = worst.get("waiting")
    also = f" + {waiting:.0%} waiting for a CPU" if waiting else ""
    return (
        f"{what} saturated: worker CPU {worst['busy']:.0%}{also} (pid {worst['pid']}, "
        f"{len(cpu['workers'])} worker(s); limit {cpu['threshold']:.0%}): latencies include "
        "the mock's own queueing; give it more --workers or fewer users"
    )


def note_mock_cpu(summary: dict[str, Any], watch: CpuWatch, what: str) -> None:
    """Put the mock's CPU over the summary's measured window into ``summary["mock"]["cpu"]``
    and warn when it was saturated."""
    window: Mapping[str, Any] = summary.get("window") or {}
    cpu = watch.figures(window.get("opened"), window.get("closed"))
    summary["mock"] = {**(summary.get("mock") or {}), "cpu": cpu}
    warning = saturation_warning(cpu, what)
    if warning is not None:
        warnings: Sequence[str] = summary.get("warnings") or []
        summary["warnings"] = [*warnings, warning]
