"""Per-request records in a Locust process, their LLM rows in Locust's table, and their way
to the master.

Locust's own request rows stay the real requests: each call fires one request event (its
response time is the end-to-end time of the whole body, not Locust's time-to-headers for
streams). The LLM figures go to rows of request type ``LLM`` named ``TTFT [µs] <name>``,
``ITL [µs] ...``, ``TPOT [µs] ...``, ``TTST [µs] ...`` (the metrics of ``record.METRICS``
with a ``row``): they are logged into those rows' entries directly, never through
``RequestStats.log_request``, so they are not added to Locust's "Aggregated" row and
neither its request count nor its failure ratio is inflated. Values are microseconds
(Locust prints whole numbers) bucketed to 4 significant digits instead of Locust's 2, so an
ITL of 20.34 ms shows as 20340, not 20000. A row's "average size" is its metric's
``row_size`` per request (the TTFT row's: output tokens); the ITL row's requests/s is the
rate of token gaps (about the output tokens per second).

Distributed runs: a worker queues its records and ships them with every stats report
(``report_to_master``) and, when its users stop, the rest in one ``gateprobe_records``
message, which reaches the master before the worker's ``client_stopped``; the master (or a
single local process) appends them to ``requests.jsonl``. Each worker counts what it made
and sent and logs it when it quits.

An interrupted run (``interrupted``, set by the runtime) marks the records of the requests
its interrupt cut in flight (``"interrupted": true``), so they do not read as cut by the
run's planned end.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from locust.stats import RequestStats, StatsEntry

from gateprobe.load.record import METRICS, METRICS_BY_NAME, Metric, RequestRecord
from gateprobe.load.window import epoch_now

__all__ = [
    "LLM_METRICS",
    "LLM_TYPE",
    "PENDING_BATCH",
    "ROW_METRICS",
    "Collector",
    "FineStatsEntry",
    "LLMRows",
    "llm_row_name",
]

try:  # per-request records are written at the request rate
    from orjson import dumps as _orjson_dumps

    def _dumps(record: RequestRecord) -> str:
        return _orjson_dumps(record).decode()

except ImportError:  # pragma: no cover - orjson is a dependency

    def _dumps(record: RequestRecord) -> str:
        return json.dumps(record, separators=(",", ":"))


LLM_TYPE = "LLM"
# the metrics with a row in Locust's table, and their labels: (record key, label)
ROW_METRICS: tuple[Metric, ...] = tuple(metric for metric in METRICS if metric.row)
LLM_METRICS = tuple((metric.name, metric.label) for metric in ROW_METRICS)
PENDING_BATCH = 256  # records of this process buffered before one write to requests.jsonl
logger = logging.getLogger("gateprobe.load")


def llm_row_name(metric: str, request_name: str) -> str:
    return f"{metric} [µs] {request_name}"


def _bucket(value: int) -> int:
    """4 significant digits (Locust keeps 2); comparisons, not ``str``, for the usual sizes."""
    if value < 10_000:
        return value
    if value < 100_000:
        return round(value, -1)
    if value < 1_000_000:
        return round(value, -2)
    return int(round(value, 4 - len(str(value))))


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
        current_time = epoch_now()
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


_Size = Callable[[RequestRecord], float | None] | None


class LLMRows:
    """The LLM rows of one request name (``ROW_METRICS``), logged together: one clock read
    and no per-row method calls per request (Locust's ``StatsEntry.log`` bookkeeping,
    inlined)."""

    def __init__(self, stats: RequestStats, name: str) -> None:
        self.entries = stats.entries  # replaced by RequestStats.clear_all(): look up again
        self.one: list[tuple[Callable[[RequestRecord], float | None], _Size, FineStatsEntry]] = []
        self.many: list[tuple[Callable[[RequestRecord], Sequence[float]], FineStatsEntry]] = []
        for metric in ROW_METRICS:
            entry = _entry(stats, llm_row_name(metric.label, name))
            size = METRICS_BY_NAME[metric.row_size].read if metric.row_size else None
            if metric.many is not None:
                self.many.append((metric.many, entry))
            elif metric.read is not None:
                self.one.append((metric.read, size, entry))

    def log(self, record: RequestRecord) -> None:
        now = epoch_now()
        second = int(now)
        for read, size, entry in self.one:
            value = read(record)
            if value is not None:
                length = int(size(record) or 0) if size is not None else 0
                _log_values(entry, now, second, (round(value * 1000),), length)
        for many, entry in self.many:
            gaps = many(record)
            if gaps:
                # the gaps of events that came in one read are 0: counted, not converted
                zeros = gaps.count(0.0)
                values = [round(gap * 1000) for gap in gaps if gap] if zeros < len(gaps) else []
                _log_values(entry, now, second, values, 0, zeros)


def _entry(stats: RequestStats, name: str) -> FineStatsEntry:
    key = (name, LLM_TYPE)
    entry = stats.entries.get(key)
    if not isinstance(entry, FineStatsEntry):
        entry = FineStatsEntry(
            stats, name, LLM_TYPE, use_response_times_cache=stats.use_response_times_cache
        )
        stats.entries[key] = entry
    return entry


def _log_values(
    entry: StatsEntry,
    now: float,
    second: int,
    values: Sequence[int],
    content_length: int,
    zeros: int = 0,
) -> None:
    """What ``StatsEntry.log`` does for each value (and for ``zeros`` more values of 0), for a
    batch logged at one moment, with the 4-digit buckets of ``FineStatsEntry``."""
    last = entry.last_request_timestamp
    if entry.use_response_times_cache and last and second > int(last):
        entry._cache_response_times(second - 1)
    count = len(values) + zeros
    if not count:
        return
    entry.num_requests += count
    entry.num_reqs_per_sec[second] += count
    entry.last_request_timestamp = now
    entry.total_content_length += content_length
    histogram = entry.response_times
    if zeros:
        histogram[0] += zeros
    if len(values) == 1:
        low = high = total = values[0]
        histogram[low if low < 10_000 else _bucket(low)] += 1
    elif values:
        low, high, total = min(values), max(values), sum(values)
        for value in values:
            histogram[value if value < 10_000 else _bucket(value)] += 1
    else:
        low = high = total = 0
    if zeros:
        low = 0
    entry.total_response_time += total
    if entry.min_response_time is None or low < entry.min_response_time:
        entry.min_response_time = low
    if high > entry.max_response_time:
        entry.max_response_time = high


class Collector:
    """Records of this process: LLM rows, the live window, and the sink or the queue."""

    def __init__(self, report_dir: Path, *, is_worker: bool) -> None:
        self.report_dir = report_dir
        self.is_worker = is_worker
        self.made = 0  # records made by this process's users
        self.sent = 0  # records shipped to the master (workers)
        self.received = 0  # records written to requests.jsonl (master or local)
        self.by_worker: dict[str, int] = {}
        self.interrupted = False  # the run was interrupted: in-flight records say so
        self._queue: list[RequestRecord] = []
        self._pending: list[RequestRecord] = []  # this process's own, not yet written
        self._rows: dict[str, LLMRows] = {}
        self._file: IO[str] | None = None
        self._lock = threading.Lock()
        # (end time, ok, ttft_ms, first itl gaps, output tokens) of recent records: progress
        self.recent: deque[tuple[float, bool, float | None, list[float], int]] = deque(maxlen=20000)

    # -- in the process whose users made the request ------------------------------------
    def add(self, record: RequestRecord, stats: RequestStats) -> None:
        self.made += 1
        if self.interrupted and record.get("unfinished"):
            record["interrupted"] = True
            record["error"] = (
                f"still in flight after {float(record['e2e_ms']) / 1000:.1f} s when the run "
                "was interrupted"
            )
        if record.get("ok") and not record.get("warmup"):
            self._rows_for(stats, record["name"]).log(record)
        if self.is_worker:
            self._queue.append(record)
        else:
            # written in batches (the progress loop and close() write the rest): one
            # write and one lock per batch instead of per request
            self._pending.append(record)
            if len(self._pending) >= PENDING_BATCH:
                self._store_pending()

    def _rows_for(self, stats: RequestStats, name: str) -> LLMRows:
        rows = self._rows.get(name)
        if rows is None or rows.entries is not stats.entries:  # new name, or clear_all()
            rows = self._rows[name] = LLMRows(stats, name)
        return rows

    def drain(self) -> list[RequestRecord]:
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

    def store(self, records: list[RequestRecord], *, source: str) -> None:
        if not records:
            return
        with self._lock:
            if self._file is None:
                self.report_dir.mkdir(parents=True, exist_ok=True)
                self._file = (self.report_dir / "requests.jsonl").open("w", encoding="utf-8")
            self._file.write("".join([_dumps(record) + "\n" for record in records]))
            by_worker = self.by_worker
            recent = self.recent
            for record in records:
                worker = str(record.get("worker", source))
                by_worker[worker] = by_worker.get(worker, 0) + 1
                gaps = record.get("itl_ms") or []
                recent.append(
                    (
                        float(record["start"]) + float(record["e2e_ms"]) / 1000.0,
                        bool(record.get("ok")),
                        record.get("ttft_ms"),
                        gaps[:8],
                        int(record.get("output_tokens") or 0),
                    )
                )
            self.received += len(records)

    def _store_pending(self) -> None:
        pending, self._pending = self._pending, []
        if pending:
            self.store(pending, source="local")

    def close(self) -> None:
        self._store_pending()
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def flush(self) -> None:
        self._store_pending()
        with self._lock:
            if self._file is not None:
                self._file.flush()
