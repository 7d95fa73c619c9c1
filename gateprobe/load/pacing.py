"""Open-loop arrivals: a schedule of send times that does not wait for answers.

Every user of a process claims the next slot of one shared schedule (constant spacing or
Poisson: exponential gaps), sleeps until it and sends. When every user is busy the slot is
claimed late: the request goes out behind schedule and the lag is recorded with it, so a
saturated generator (coordinated omission) is reported, never hidden. ``users`` caps the
requests in flight; raise it if the summary says the run fell behind.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

__all__ = ["BEHIND_MS", "Pacer"]

BEHIND_MS = 10.0  # a send more than this late counts as behind schedule


class Pacer:
    def __init__(
        self,
        rate: float,
        arrival: str = "constant",
        *,
        seed: int | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        if arrival not in ("constant", "poisson"):
            raise ValueError(f"unknown arrival {arrival!r}")
        self.rate = rate
        self.arrival = arrival
        self.clock = clock
        self._random = random.Random(seed)
        self._next: float | None = None
        self.claimed = 0
        self.behind = 0
        self.max_lag_ms = 0.0

    def set_rate(self, rate: float) -> None:
        if rate > 0:
            self.rate = rate

    def _gap(self) -> float:
        if self.arrival == "poisson":
            return self._random.expovariate(self.rate)
        return 1.0 / self.rate

    def claim(self) -> float:
        """The next send time (this clock); the first slot is now."""
        now = self.clock()
        if self._next is None:
            self._next = now + (self._gap() if self.arrival == "poisson" else 0.0)
        slot = self._next
        self._next = slot + self._gap()
        self.claimed += 1
        return slot

    def lag_ms(self, slot: float, sent: float) -> float:
        """How late a send at ``sent`` was for ``slot``; counts it as behind past BEHIND_MS."""
        lag = max(0.0, (sent - slot) * 1000.0)
        if lag > BEHIND_MS:
            self.behind += 1
        self.max_lag_ms = max(self.max_lag_ms, lag)
        return lag
