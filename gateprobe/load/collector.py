"""Per-request records in a Locust process, their LLM rows in Locust's table, and their way
to the master.

Locust's own request rows stay the real requests: each call fires one request event (its
response time is the end-to-end time of the whole body, not Locust's time-to-headers for
streams). The LLM figures go to rows of request type ``LLM`` named ``TTFT [µs] <name>``,
``ITL [µs] ...``, ``TPOT [µs] ...``, ``TTST [µs] ...``: they are logged into those rows'
entries directly, never through ``RequestStats.log_request``, so they are not added to
Locust's "Aggregated" row and neither its request count nor its failure ratio is inflated.
Values are microseconds (Locust prints whole numbers) bucketed to 4 significant digits
instead of Locust's 2, so an ITL of 20.34 ms shows as 20340, not 20000. The TTFT row's
"average size" is the mean output tokens per request; the ITL row's requests/s is the rate
of token gaps (about the output tokens per second).

Distributed runs: a worker queues its records and ships them with every stats report
(``report_to_master``) and, when its users stop, the rest in one ``gateprobe_records``
message, which reaches the master before the worker's ``client_stopped``; the master (or a
single local process) appends them to ``requests.jsonl``. Each worker counts what it made
and sent and logs it when it quits.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from locust.stats import RequestStats, StatsEntry

__all__ = ["LLM_METRICS", "LLM_TYPE", "Collector", "FineStatsEntry", "llm_row_name"]

try:  # per-request records are written at the request rate
    from orjson import dumps as _orjson_dumps

    def _dumps(record: Mapping[str, Any]) -> str:
        return _orjson_dumps(record).decode()

except ImportError:  # pragma: no cover - orjson is a dependency

    def _dumps(record: Mapping[str, Any]) -> str:
        return json.dumps(record, separators=(",", ":"))


LLM_TYPE = "LLM"
LLM_METRICS = (("ttft_ms", "TTFT"), ("ttst_ms", "TTST"), ("tpot_ms", "TPOT"))
logger = logging.getLogger("gateprobe.load")


def llm_row_name(metric: str, request_name: str) -> str:
    return f"{metric} [µs] {request_name}"


def _bucket(value: int) -> int:
    """4 significant digits (Locust keeps 2)."""
    if value < 10_000:
        return value
    digits = len(str(value)) - 4
    return int(round(value, -digits))


class FineStatsEntry(StatsEntry):
    """A Locust stats row whose histogram keeps 4 significant digits."""

    def _log_response_time(self, response_time: int) -> None:
        if response_time is None:
            self.num_none_requests += 1
            return
        self.total_response_time += response_time
        if self.min_response_time is None:
            self.min_response_time = response_time
        else:
            self.min_response_time = min(self.min_response_time, response_time)
        self.max_response_time = max(self.max_response_time, response_time)
        self.response_times[_bucket(response_time)] += 1

    def log_many(self, response_times: list[int], content_length: int = 0) -> None:
        """``log`` for a batch of samples of one moment (the gaps of one request)."""
        current_time = time.time()
        t = int(current_time)
        if (
            self.use_response_times_cache
            and self.last_request_timestamp
            and t > int(self.last_request_timestamp)
        ):
            self._cache_response_times(t - 1)
        count = len(response_times)
        self.num_requests += count
        self.num_reqs_per_sec[t] += count
        self.last_request_timestamp = current_time
        self.total_content_length += content_length
        self.total_response_time += sum(response_times)
        low, high = min(response_times), max(response_times)
        self.min_response_time = (
            low if self.min_response_time is None else min(self.min_response_time, low)
        )
        self.max_response_time = max(self.max_response_time, high)
        histogram = self.response_times
        for value in response_times:
            histogram[value if value < 10_000 else _bucket(value)] += 1


class Collector:
    """Records of this process: LLM rows, the live window, and the sink or the queue."""

    def __init__(self, report_dir: Path, *, is_worker: bool) -> None:
        self.report_dir = report_dir
        self.is_worker = is_worker
        self.made = 0  # records made by this process's users
        self.sent = 0  # records shipped to the master (workers)
        self.received = 0  # records written to requests.jsonl (master or local)
        self.by_worker: dict[str, int] = {}
        self._queue: list[dict[str, Any]] = []
        self._file: IO[str] | None = None
        self._lock = threading.Lock()
        # (end time, ok, ttft_ms, first itl gaps, output tokens) of recent records: progress
        self.recent: deque[tuple[float, bool, float | None, list[float], int]] = deque(maxlen=20000)

    # -- in the process whose users made the request ------------------------------------
    def add(self, record: dict[str, Any], stats: RequestStats) -> None:
        self.made += 1
        if record.get("ok") and not record.get("warmup"):
            self._log_llm_rows(record, stats)
        if self.is_worker:
            self._queue.append(record)
        else:
            self.store([record], source=str(record.get("worker", "local")))

    def _log_llm_rows(self, record: Mapping[str, Any], stats: RequestStats) -> None:
        name = str(record["name"])
        tokens = int(record.get("output_tokens") or 0)
        for field, metric in LLM_METRICS:
            value = record.get(field)
            if value is not None:
                self._entry(stats, llm_row_name(metric, name)).log(
                    round(value * 1000), tokens if field == "ttft_ms" else 0
                )
        gaps = record.get("itl_ms")
        if gaps:
            entry = self._entry(stats, llm_row_name("ITL", name))
            entry.log_many([round(gap * 1000) for gap in gaps])

    @staticmethod
    def _entry(stats: RequestStats, name: str) -> FineStatsEntry:
        key = (name, LLM_TYPE)
        entry = stats.entries.get(key)
        if not isinstance(entry, FineStatsEntry):
            entry = FineStatsEntry(
                stats, name, LLM_TYPE, use_response_times_cache=stats.use_response_times_cache
            )
            stats.entries[key] = entry
        return entry

    def drain(self) -> list[dict[str, Any]]:
        """The queued records, for a worker's next message to the master."""
        out, self._queue = self._queue, []
        self.sent += len(out)
        return out

    # -- in the master (or the only process) -----------------------------------------------
    def open(self) -> None:
        with self._lock:
            self.report_dir.mkdir(parents=True, exist_ok=True)
            if self._file is None:
                self._file = (self.report_dir / "requests.jsonl").open("w", encoding="utf-8")

    def store(self, records: list[dict[str, Any]], *, source: str) -> None:
        if not records:
            return
        with self._lock:
            if self._file is None:
                self.report_dir.mkdir(parents=True, exist_ok=True)
                self._file = (self.report_dir / "requests.jsonl").open("w", encoding="utf-8")
            for record in records:
                self._file.write(_dumps(record) + "\n")
                worker = str(record.get("worker", source))
                self.by_worker[worker] = self.by_worker.get(worker, 0) + 1
                gaps = record.get("itl_ms") or []
                self.recent.append(
                    (
                        float(record["start"]) + float(record["e2e_ms"]) / 1000.0,
                        bool(record.get("ok")),
                        record.get("ttft_ms"),
                        gaps[:8],
                        int(record.get("output_tokens") or 0),
                    )
                )
            self.received += len(records)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def flush(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.flush()
