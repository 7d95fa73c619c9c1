"""The usage log (one record per request, bounded) and its per-day aggregates."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Any

__all__ = ["RateLimiter", "UsageLog"]


class _Day:
    """Exact totals of one UTC day's requests."""

    __slots__ = (
        "completion_tokens",
        "errors",
        "latency_ms_total",
        "prompt_tokens",
        "quota",
        "requests",
    )

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.quota = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.latency_ms_total = 0.0

    def row(self) -> dict[str, float]:
        requests = self.requests
        return {
            "requests": requests,
            "errors": self.errors,
            "quota": self.quota,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "latency_ms_total": self.latency_ms_total,
            "latency_ms_mean": round(self.latency_ms_total / requests, 3) if requests else 0.0,
        }


class UsageLog:
    """Keeps the last ``size`` request records and exact per-day totals of all of them.

    A record is kept as given, not copied: the caller hands it over and changes it no more.
    """

    def __init__(self, size: int) -> None:
        self._records: deque[dict[str, Any]] = deque(maxlen=size)
        self._days: dict[str, _Day] = {}
        self._lock = threading.Lock()
        self._day_number = -1
        self._day = ""

    def add(self, record: dict[str, Any]) -> None:
        get = record.get
        stamp = get("time") or time.time()
        day_number = int(stamp // 86400)
        if day_number != self._day_number:
            self._day_number = day_number
            self._day = time.strftime("%Y-%m-%d", time.gmtime(stamp))
        day = self._day
        with self._lock:
            self._records.append(record)
            agg = self._days.get(day)
            if agg is None:
                agg = self._days[day] = _Day()
            agg.requests += 1
            if get("status", 200) >= 400:
                agg.errors += 1
            agg.quota += get("cost", 0)
            agg.prompt_tokens += get("prompt_tokens", 0)
            agg.completion_tokens += get("completion_tokens", 0)
            agg.latency_ms_total += get("latency_ms", 0.0)

    def recent(self, limit: int = 0) -> list[dict[str, Any]]:
        with self._lock:
            items = list(self._records)
        return items[-limit:] if limit else items

    def daily(self) -> dict[str, dict[str, float]]:
        with self._lock:
            return {day: agg.row() for day, agg in self._days.items()}

    def clear(self, size: int | None = None) -> None:
        with self._lock:
            self._records = deque(maxlen=size or self._records.maxlen)
            self._days.clear()


class RateLimiter:
    """A sliding-window request limit per key; answers how long to wait when exceeded."""

    def __init__(self, window_seconds: float) -> None:
        self.window = window_seconds
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def admit(self, key: str, limit: int, now: float | None = None) -> int:
        """Record a hit and return 0, or return whole seconds to wait (>= 1), recording nothing."""
        now = time.monotonic() if now is None else now
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                hits = self._hits[key] = deque()
            while hits and now - hits[0] >= self.window:
                hits.popleft()
            if len(hits) >= limit:
                return max(1, math.ceil(self.window - (now - hits[0])))
            hits.append(now)
            return 0

    def clear(self) -> None:
        with self._lock:
            self._hits.clear()
