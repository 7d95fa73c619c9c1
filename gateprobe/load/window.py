"""The measured window of a load run: when it opens and closes, and how it compares with
what was asked. Safe to import anywhere (no Locust, no gevent); ``locust_app.WindowControl``
drives it inside Locust.

Why the run keeps its own time instead of Locust's ``--run-time``:

* Locust starts its run-time timer before the users are spawned, so spawning ate into
  the warmup and the warmup into the measured window;
* the timer is a gevent timer, and gevent counts a new timer from the event loop's cached
  time, which is as old as the loop's last iteration: before the run starts the loop has
  not run since Locust imported the locustfile. The timer fired that much early: 0.8 s of
  an 11 s run on an idle 2-core machine, 2 s beside two busy processes, all of a 4 s run
  when the imports took that long.

So the window opens ``warmup`` seconds after every user has been started (a shape's warmup
counts on the shape's own clock, from the start of the run, since the shape's stages do),
lasts the asked duration, and the run ends when it is over. Every wait re-reads the clock
(``sleep_until``): a timer that fires early only costs another sleep.

Figures: the window's wall-clock length (``wall_s``, the rates' denominator) and the time
measured in it (``measured_s``): the wall-clock length less the time the generator's event
loop stood still (stalls over ``STALL_S``, sampled every ``STALL_INTERVAL_S``: a starved
process, a long garbage collection), when no request was sent and no byte was timed as it
arrived. When the measured time is more than ``TOLERANCE`` off what was asked, the summary
warns and says why.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "STALL_INTERVAL_S",
    "STALL_S",
    "TOLERANCE",
    "Stalls",
    "Window",
    "asked_window",
    "epoch_now",
    "sleep_until",
]

# One timeline per process: the epoch read once, then advanced by the monotonic clock, for
# the records' start times and the window's. A wall clock that steps during a run (NTP, or a
# virtual machine paused and resumed: 14 s between two log lines 1 s apart by perf_counter,
# seen on a loaded CI machine) would otherwise put a request measured inside the window
# 13 s before it opened.
_EPOCH_AT_START = time.time()
_PERF_AT_START = time.perf_counter()


def epoch_now() -> float:
    """Epoch seconds on this process's monotonic timeline (see above)."""
    return _EPOCH_AT_START + (time.perf_counter() - _PERF_AT_START)


TOLERANCE = 0.01  # a window this close to what was asked is as asked
# A healthy generator's loop answers a 50 ms timer within a few ms even at 90% CPU; one that
# answers 50 ms late or later was not running (descheduled, or one greenlet held it).
STALL_S = 0.05
STALL_INTERVAL_S = 0.05


def sleep_until(
    deadline: float,
    *,
    sleep: Callable[[float], object] = time.sleep,
    clock: Callable[[], float] = time.perf_counter,
    before_sleep: Callable[[], object] | None = None,
) -> None:
    """Sleep until ``clock()`` reaches ``deadline``, however early ``sleep`` returns.

    ``before_sleep`` runs before each sleep: gevent's ``loop.update_now``, so the timer
    counts from now rather than from the loop's cached time.
    """
    while (left := deadline - clock()) > 0:
        if before_sleep is not None:
            before_sleep()
        sleep(left)


def asked_window(
    run_time_option: float | None, profile_run_time: float, warmup: float, duration: float
) -> float | None:
    """The window a run was asked for: the profile's duration when Locust's ``--run-time``
    is the one ``gateprobe load`` derives from the profile (whole seconds: Locust's option
    takes no fractions), else what ``--run-time`` leaves after the warmup; None without a
    run time (the run lasts until it is stopped)."""
    if not run_time_option:
        return None
    if round(run_time_option) == max(1, round(profile_run_time)):
        return duration
    return max(0.0, run_time_option - warmup)


@dataclass
class Stalls:
    """Time a process's event loop stood still, from a watchdog's oversleeps."""

    threshold_s: float = STALL_S
    total_s: float = 0.0
    longest_s: float = 0.0
    count: int = 0

    def add(self, late_s: float) -> None:
        """One oversleep of the watchdog (how much later than asked it woke)."""
        if late_s > self.threshold_s:
            self.total_s += late_s
            self.longest_s = max(self.longest_s, late_s)
            self.count += 1

    def as_dict(self) -> dict[str, float | int]:
        return {
            "stalled_s": round(self.total_s, 3),
            "longest_ms": round(self.longest_s * 1000.0, 1),
            "count": self.count,
        }


def _seconds(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def _share(value: float) -> str:
    # near 100% the first decimal is what tells 98.6% from 99.4%
    return f"{value:.1%}" if abs(value - 1.0) < 0.05 else f"{value:.0%}"


@dataclass
class Window:
    """One run's measured window. Times are pairs: epoch seconds (``epoch_now()``, what the
    records carry) for the report, ``perf_counter`` seconds for lengths and deadlines."""

    asked_s: float | None
    warmup_s: float = 0.0
    process: str = "local"  # this process's name in the stall figures (local, master)
    opens: str = "after every user has started"  # or "into the shape"
    started: float | None = None  # epoch: the test started (its users about to be spawned)
    opened: float | None = None
    closed: float | None = None
    ends_at: float | None = None  # perf_counter: when the window is due to close
    stalls: Stalls = field(default_factory=Stalls)
    # the other processes' stalls (a master's workers), by worker id
    process_stalls: dict[str, Stalls] = field(default_factory=dict)
    _started_pc: float | None = None
    _opened_pc: float | None = None
    _closed_pc: float | None = None

    def start(self, now: float, now_pc: float) -> None:
        """A new test: nothing measured yet."""
        self.started, self._started_pc = now, now_pc
        self.opened = self.closed = self.ends_at = None
        self._opened_pc = self._closed_pc = None
        self.stalls = Stalls(self.stalls.threshold_s)
        self.process_stalls = {}

    def open(self, now: float, now_pc: float) -> None:
        self.opened, self._opened_pc = now, now_pc
        self.closed = self._closed_pc = None
        if self.asked_s is not None and self.ends_at is None:
            self.ends_at = now_pc + self.asked_s

    def close(self, now: float, now_pc: float) -> None:
        if self.closed is None:
            self.closed, self._closed_pc = now, now_pc

    @property
    def is_open(self) -> bool:
        return self.opened is not None and self.closed is None

    @property
    def wall_s(self) -> float | None:
        """Opened to closed, by the wall clock; None before it closed."""
        if self._opened_pc is None or self._closed_pc is None:
            return None
        return max(0.0, self._closed_pc - self._opened_pc)

    @property
    def stalled_s(self) -> float:
        """The most starved process's stalls (each one's users lost that time)."""
        return max([self.stalls.total_s, *(s.total_s for s in self.process_stalls.values())])

    @property
    def longest_stall_s(self) -> float:
        return max([self.stalls.longest_s, *(s.longest_s for s in self.process_stalls.values())])

    @property
    def measured_s(self) -> float | None:
        wall = self.wall_s
        return None if wall is None else max(0.0, wall - self.stalled_s)

    @property
    def stopped_early(self) -> bool:
        """Closed before its time was up (interrupted, or Locust stopped on its own)."""
        if self.ends_at is None or self._closed_pc is None:
            return False
        return self._closed_pc < self.ends_at

    def as_dict(self) -> dict[str, Any]:
        measured, wall = self.measured_s, self.wall_s
        start_up = (
            self._opened_pc - self._started_pc
            if self._opened_pc is not None and self._started_pc is not None
            else None
        )
        return {
            "asked_s": self.asked_s,
            "measured_s": round(measured, 3) if measured is not None else None,
            "wall_s": round(wall, 3) if wall is not None else None,
            "measured_share": (
                round(measured / self.asked_s, 4) if measured is not None and self.asked_s else None
            ),
            "warmup_s": self.warmup_s,
            # test start to window open: spawning the users, then the warmup
            "opened_after_s": round(start_up, 3) if start_up is not None else None,
            # epoch seconds, as the records' "start": a request is measured when it was
            # recorded between the two
            "opened": round(self.opened, 6) if self.opened is not None else None,
            "closed": round(self.closed, 6) if self.closed is not None else None,
            "stopped_early": self.stopped_early,
            "stalls": {
                "stalled_s": round(self.stalled_s, 3),
                "longest_ms": round(self.longest_stall_s * 1000.0, 1),
                "threshold_ms": round(self.stalls.threshold_s * 1000.0, 1),
                "by_process": {
                    self.process: self.stalls.as_dict(),
                    **{k: v.as_dict() for k, v in sorted(self.process_stalls.items())},
                },
            },
        }

    def warnings(self) -> list[str]:
        """What the summary says when the window is not what was asked."""
        asked = self.asked_s
        wall, measured = self.wall_s, self.measured_s
        stalled = self.stalled_s
        stood_still = (
            f"its event loop stood still for {_seconds(stalled)} s of the "
            f"{_seconds(wall or 0.0)} s window (stalls over {self.stalls.threshold_s * 1000:.0f}"
            f" ms, the longest {self.longest_stall_s * 1000:.0f} ms: the machine's CPU went to "
            "other work, or one task held the loop), when it sent nothing and timed nothing as "
            "it arrived; latencies include that client-side delay"
        )
        if not asked:
            if wall and stalled > TOLERANCE * wall:
                return [f"The load generator was starved: {stood_still}"]
            return []
        if self.opened is None or wall is None or measured is None:
            return [
                f"measured 0 s of the {asked:g} s asked (0%): the run was stopped before its "
                f"window opened (it opens {self.warmup_s:g} s {self.opens})"
            ]
        share = measured / asked
        if abs(share - 1.0) <= TOLERANCE:
            return []
        head = f"measured {_seconds(measured)} s of the {asked:g} s asked ({_share(share)})"
        if self.stopped_early and wall < (1.0 - TOLERANCE) * asked:
            return [f"{head}: the run was stopped before its window was over"]
        reasons = []
        if stalled > 0:
            reasons.append(stood_still)
        if wall < asked:  # a shape's window closes on the shape's clock, however late it opened
            reasons.append(f"it opened the window {_seconds(asked - wall)} s late")
        elif share > 1.0:  # longer than asked, and not for stalls: ended late, in small delays
            reasons.append(f"it ended the run {_seconds(wall - asked)} s late")
        return [f"{head}: the load generator was starved: " + "; ".join(reasons)]

    def note_process(self, process: str, figures: Mapping[str, Any]) -> None:
        """Another process's stalls, as its reports carry them (``Stalls`` fields)."""
        self.process_stalls[process] = Stalls(
            self.stalls.threshold_s,
            float(figures.get("total_s", 0.0)),
            float(figures.get("longest_s", 0.0)),
            int(figures.get("count", 0)),
        )
