"""Per-request records in a Locust process, their LLM rows in Locust's table, and their way
to the master.

Locust's own request rows stay the real requests: each call fires one request event (its
response time is the end-to-end time of the whole body, not Locust's time-to-headers for
streams). The LLM figures go to rows of request type ``LLM`` named ``TTFT <name>``,
``ITL <name>``, ``TPOT <name>``, ``TTST <name>`` (the metrics of ``record.METRICS`` with a
``row``): they are logged into those rows' entries directly, never through
``RequestStats.log_request``, so they are not added to Locust's "Aggregated" row and
neither its request count nor its failure ratio is inflated. A row's "average size" is its
metric's ``row_size`` per request (the TTFT row's: output tokens); the ITL row's requests/s
is the rate of token gaps (about the output tokens per second).

Units: milliseconds, as every column of Locust's table says ("Median (ms)", ...), with the
precision an inter-token gap needs. Locust rounds a response time below 100 ms to a whole
millisecond for its histogram (and to 2 significant digits above), prints min and max as
whole numbers and writes the CSV's percentiles through ``int()``: an ITL of 0.4 ms would
show as 0, one of 20.34 ms as 20. ``FineStatsEntry`` (the class of the LLM rows only; the
real request rows keep Locust's own) keys its histogram by 1 µs below 10 ms and 4
significant digits above (20.34 ms, 123.5 ms) and reports min and max unrounded, and
``install_stats_csv`` makes Locust's CSV writer leave its percentiles as they are; so
locust.html and locust_stats.csv show 20.34 under "(ms)". On a master (``--processes``,
distributed) Locust makes plain ``StatsEntry`` rows of what its workers report:
``adopt_llm_rows`` turns the LLM ones into ``FineStatsEntry`` (same fields) first.

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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import locust.stats
from locust.stats import RequestStats, StatsCSVFileWriter, StatsEntry

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
    "adopt_llm_rows",
    "install_stats_csv",
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
    return f"{metric} {request_name}"


def _bucket(value: int) -> int:
    """4 significant digits (Locust keeps 2); comparisons, not ``str``, for the usual sizes."""
    if value < 10_000:
        return value
    if value < 100_000:
        return round(value, -1)
    if value < 1_000_000:
        return round(value, -2)
    return int(round(value, 4 - len(str(value))))


def _key(ms: float) -> float:
    """A histogram key in ms: 1 µs below 10 ms, 4 significant digits above."""
    us = round(ms * 1000)
    return (us if us < 10_000 else _bucket(us)) / 1000


def _ms(value: float | None) -> float:
    return 0.0 if value is None else round(float(value), 3)


class FineStatsEntry(StatsEntry):
    """A Locust stats row of an LLM metric: milliseconds to 1 µs (4 significant digits
    above 10 ms) in its histogram, min and max unrounded."""

    def _log_response_time(self, response_time: float) -> None:
        if response_time is None:
            self.num_none_requests += 1
            return
        row: Any = self  # Locust annotates its times as int: here they are ms floats
        row.total_response_time += response_time
        if row.min_response_time is None:
            row.min_response_time = response_time
        else:
            row.min_response_time = min(row.min_response_time, response_time)
        row.max_response_time = max(row.max_response_time, response_time)
        row.response_times[_key(response_time)] += 1

    def log_many(self, response_times: list[float], content_length: int = 0) -> None:
        """``log`` for a batch of samples of one moment (the gaps of one request)."""
        now = epoch_now()
        _log_values(self, now, int(now), response_times, content_length)

    def to_dict(self, escape_string_values: bool = False) -> dict[str, int | float | str]:
        # locust.html's table: Locust rounds min and max to whole milliseconds
        data = super().to_dict(escape_string_values)
        data["min_response_time"] = _ms(self.min_response_time)
        data["max_response_time"] = _ms(self.max_response_time)
        return data

    def to_string(self, current: bool = True) -> str:
        # Locust's console table prints its times with %7d: the same columns, to 0.01 ms
        text = super().to_string(current)
        head, _, tail = text.partition("|")
        rate = tail.partition("|")[2]
        figures = (self.avg_response_time, self.min_response_time or 0, self.max_response_time)
        times = " ".join(f"{value:7.2f}" for value in figures)
        return f"{head}|{times}{self.median_response_time:7.2f} |{rate}"

    def percentile(self) -> str:
        # the console's percentile table prints them with %6d (its first column %8d)
        values = [self.get_response_time_percentile(p) for p in locust.stats.PERCENTILES_TO_REPORT]
        shown = " ".join(
            [
                f"{values[0]:8.4g}",
                *(f"{value:6.4g}" for value in values[1:]),
                f"{self.num_requests:6d}",
            ]
        )
        type_width, name_width = locust.stats.STATS_TYPE_WIDTH, locust.stats.STATS_NAME_WIDTH
        return f"{self.method or '':<{type_width}} {self.name:<{name_width}} {shown}"


class _StatsCSVFileWriter(StatsCSVFileWriter):
    """Locust's CSV writer, its percentiles of the LLM rows not cut by ``int()``."""

    def _percentile_fields(
        self, stats_entry: StatsEntry, use_current: bool = False
    ) -> list[str] | list[int]:
        if not isinstance(stats_entry, FineStatsEntry) or not stats_entry.num_requests:
            return super()._percentile_fields(stats_entry, use_current)
        if use_current and stats_entry.use_response_times_cache:
            read = stats_entry.get_current_response_time_percentile
        else:
            read = stats_entry.get_response_time_percentile
        # ms floats (Locust's annotations say int), written as they are
        return [read(p) or 0 for p in self.percentiles_to_report]


def install_stats_csv() -> None:
    """Make ``locust --csv`` write with ``_StatsCSVFileWriter``: Locust's main builds its
    writer from ``locust.stats.StatsCSVFileWriter`` after the locustfile is imported, so
    the locustfile calls this."""
    locust.stats.StatsCSVFileWriter = _StatsCSVFileWriter  # type: ignore[misc]


def adopt_llm_rows(stats: RequestStats, report: Mapping[str, object]) -> None:
    """On a master, before Locust adds a worker's ``report``: its LLM rows are
    ``FineStatsEntry`` rows (made, or a plain one Locust made turned into one)."""
    rows = report.get("stats")
    if not isinstance(rows, list):
        return
    for row in rows:
        if isinstance(row, Mapping) and row.get("method") == LLM_TYPE:
            _entry(stats, str(row.get("name")), use_response_times_cache=True)


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
                _log_values(entry, now, second, (value,), length)
        for many, entry in self.many:
            gaps = many(record)
            if gaps:
                # the gaps of events that came in one read are 0: counted apart
                zeros = gaps.count(0.0)
                values = [gap for gap in gaps if gap] if zeros < len(gaps) else []
                _log_values(entry, now, second, values, 0, zeros)


def _entry(
    stats: RequestStats, name: str, *, use_response_times_cache: bool | None = None
) -> FineStatsEntry:
    key = (name, LLM_TYPE)
    entry = stats.entries.get(key)
    if isinstance(entry, FineStatsEntry):
        return entry
    if entry is not None:  # a plain row Locust made on a master: the same fields, our class
        entry.__class__ = FineStatsEntry
        return entry  # type: ignore[return-value]
    cache = stats.use_response_times_cache if use_response_times_cache is None else True
    fine = FineStatsEntry(stats, name, LLM_TYPE, use_response_times_cache=cache)
    stats.entries[key] = fine
    return fine


def _log_values(
    entry: StatsEntry,
    now: float,
    second: int,
    values: Sequence[float],
    content_length: int,
    zeros: int = 0,
) -> None:
    """What ``StatsEntry.log`` does for each value (ms; and for ``zeros`` more values of 0),
    for a batch logged at one moment, with the histogram keys of ``FineStatsEntry``."""
    row: Any = entry  # Locust annotates its times as int: here they are ms floats
    last = row.last_request_timestamp
    if row.use_response_times_cache and last and second > int(last):
        row._cache_response_times(second - 1)
    count = len(values) + zeros
    if not count:
        return
    row.num_requests += count
    row.num_reqs_per_sec[second] += count
    row.last_request_timestamp = now
    row.total_content_length += content_length
    histogram = row.response_times
    if zeros:
        histogram[0] += zeros
    low: float
    high: float
    total: float
    if len(values) == 1:
        low = high = total = values[0]
        histogram[_key(low)] += 1
    elif values:
        low, high, total = min(values), max(values), sum(values)
        for value in values:
            histogram[_key(value)] += 1
    else:
        low = high = total = 0
    if zeros:
        low = 0
    row.total_response_time += total
    if row.min_response_time is None or low < row.min_response_time:
        row.min_response_time = low
    if high > row.max_response_time:
        row.max_response_time = high


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
