"""The load run's per-request record, and the one table of the metrics read from it.

A record is a plain dict typed as a ``TypedDict``: that is what travels from a Locust
worker to its master (in Locust's msgpack messages, see collector.py), what orjson writes
to requests.jsonl and what the summary reads back, so it costs nothing on the hot path
(no conversion, no copy) and needs no serialiser of its own. Its keys, by who sets them:

    TimedRecord      the meter (``metrics.RequestTimer.finish``): outcome, timings, tokens
    RequestRecord    + the user (users.py): which request, when, its id and schedule lag;
                     + the runtime (runtime.py): the warmup mark and the worker;
                     + ``unfinished`` / ``interrupted`` on the requests a run's end cut

Records written by older versions lack the newer keys (``input_tokens``): readers use
``.get``.

``METRICS`` is the table every consumer is built from: the summary's ``metrics``,
``throughput`` and ``by_request`` sections (summary.py), the SLO keys and their judgement
(slo.py), the LLM rows in Locust's table (collector.py), the plots (plots.py) and the
terminal table (launch.py). A metric is read from the records that succeeded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import NotRequired, TypedDict

__all__ = [
    "METRICS",
    "METRICS_BY_NAME",
    "SLO_STATS",
    "Metric",
    "RequestRecord",
    "TimedRecord",
]


class TimedRecord(TypedDict):
    """What the meter measured of one request (times in milliseconds from its send)."""

    ok: bool
    status: int  # 0: no answer
    error_class: str | None  # http_<status>, connection, timeout, in_band_error, truncated,
    # bad_stream, unfinished
    error: str | None
    e2e_ms: float
    ttft_ms: float | None
    ttst_ms: float | None
    reasoning_ttft_ms: float | None
    itl_ms: list[float]
    tpot_ms: float | None
    output_tokens: int | None
    output_tokens_source: str | None  # usage | estimate
    reasoning_tokens: int | None
    input_tokens: int | None  # the server's usage of the prompt, when it sent one
    chunks: int
    bytes: int


class RequestRecord(TimedRecord):
    """One line of requests.jsonl."""

    name: str
    protocol: str
    operation: str
    stream: str | None  # sse | array | None (not streamed)
    start: float  # epoch seconds, when it was sent
    request_id: str | None
    schedule_lag_ms: float | None  # open loop: how late it was sent
    warmup: bool  # ended before the measured window opened
    worker: str
    unfinished: NotRequired[bool]  # still in flight when the run (or its window) ended
    interrupted: NotRequired[bool]  # ... because the run was interrupted


# the statistics of an SLO key, as written in the key, and the distribution's name for each
SLO_STATS = {
    "p50": "p50",
    "p90": "p90",
    "p95": "p95",
    "p99": "p99",
    "p999": "p99.9",
    "mean": "mean",
}


@dataclass(frozen=True, slots=True)
class Metric:
    """One figure of a request, and what each consumer makes of it.

    name         its key in summary.json's ``metrics`` (a distribution) and in a record
    unit         ms, tokens, chunks, tokens/chunk
    description  what it is, for people
    read         its value in a record (None: it has none); ``many`` instead for a metric
                 with several samples per request
    latency      a latency percentile metric (milliseconds)
    slo          the stem of its SLO keys (``<slo>_<p50|p90|p95|p99|p999|mean>_ms``, upper
                 bounds on its distribution); also its label in SLO messages (upper case),
                 in Locust's table and in the plots
    goodput      ``goodput_<slo>_ms`` is a per-request criterion of a good request
    total        summed over the run: ``throughput.<name>``, ``<name>_per_s`` and
                 ``peak_<name>_per_s``; and per request name in ``by_request``
    rate_slo     ``min_<name>_per_s`` is an SLO key: a lower bound on ``<name>_per_s``
    row          a row ``<LABEL> <request>`` of Locust's table (type LLM, in ms)
    row_size     the metric logged as that row's content length (Locust's "average size")
    by_request   its distribution per request name in ``by_request``
    plot         the title of its histogram, ``<slo>.png``
    over_time    its p50 and p99 per 5 s window in over_time.png
    table        a line of the terminal summary
    """

    name: str
    unit: str
    description: str
    read: Callable[[RequestRecord], float | None] | None = None
    many: Callable[[RequestRecord], Sequence[float]] | None = None
    latency: bool = False
    slo: str | None = None
    goodput: bool = False
    total: bool = False
    rate_slo: bool = False
    row: bool = False
    row_size: str | None = None
    by_request: bool = False
    plot: str | None = None
    over_time: bool = False
    table: bool = True

    @property
    def label(self) -> str:
        return (self.slo or self.name).upper()

    @property
    def slo_keys(self) -> tuple[str, ...]:
        """The SLO keys of this metric (upper bounds, then a lower bound on its rate)."""
        keys = [f"{self.slo}_{stat}_ms" for stat in SLO_STATS] if self.slo and self.latency else []
        if self.rate_slo:
            keys.append(self.rate_key)
        return tuple(keys)

    @property
    def goodput_key(self) -> str | None:
        return f"goodput_{self.slo}_ms" if self.goodput and self.slo else None

    @property
    def rate_key(self) -> str:
        return f"min_{self.name}_per_s"

    def samples(self, records: Iterable[RequestRecord]) -> Iterator[float]:
        """Its values in ``records``, in order."""
        many = self.many
        if many is not None:
            for record in records:
                yield from many(record)
            return
        read = self.read
        assert read is not None, self.name
        for record in records:
            value = read(record)
            if value is not None:
                yield value

    def sum(self, records: Iterable[RequestRecord]) -> int:
        """Its total over ``records`` (a token count: a record without one adds 0)."""
        read = self.read
        assert read is not None, self.name
        return sum(int(read(record) or 0) for record in records)


def _tokens_per_chunk(record: RequestRecord) -> float | None:
    chunks, tokens = record.get("chunks"), record.get("output_tokens")
    if not record.get("stream") or not chunks or tokens is None:
        return None
    return tokens / chunks


METRICS: tuple[Metric, ...] = (
    Metric(
        "ttft_ms",
        "ms",
        "time to the first event carrying visible output",
        read=lambda r: r.get("ttft_ms"),
        latency=True,
        slo="ttft",
        goodput=True,
        row=True,
        row_size="output_tokens",
        by_request=True,
        plot="Time to first token",
        over_time=True,
    ),
    Metric(
        "ttst_ms",
        "ms",
        "time to the second event carrying visible output",
        read=lambda r: r.get("ttst_ms"),
        latency=True,
        slo="ttst",
        row=True,
    ),
    Metric(
        "itl_ms",
        "ms",
        "every gap between consecutive visible-output events (0 within one read)",
        many=lambda r: r.get("itl_ms") or (),
        latency=True,
        slo="itl",
        row=True,
        by_request=True,
        plot="Inter-token latency (every gap)",
    ),
    Metric(
        "tpot_ms",
        "ms",
        "time per output token after the first: (last - first visible) / (visible tokens - 1)",
        read=lambda r: r.get("tpot_ms"),
        latency=True,
        slo="tpot",
        goodput=True,
        row=True,
    ),
    Metric(
        "e2e_ms",
        "ms",
        "time until the body ended",
        read=lambda r: r.get("e2e_ms"),
        latency=True,
        slo="e2e",
        goodput=True,
        by_request=True,
        over_time=True,
    ),
    Metric(
        "reasoning_ttft_ms",
        "ms",
        "time to the first event carrying reasoning output",
        read=lambda r: r.get("reasoning_ttft_ms"),
        latency=True,
    ),
    Metric(
        "output_tokens",
        "tokens",
        "output tokens: the server's usage, else one per output-carrying event",
        read=lambda r: r.get("output_tokens"),
        total=True,
        rate_slo=True,
    ),
    Metric(
        "input_tokens",
        "tokens",
        "input (prompt) tokens, as the server's usage counted them",
        read=lambda r: r.get("input_tokens"),
        total=True,
    ),
    Metric(
        "chunks",
        "chunks",
        "output-carrying events of a streamed answer",
        read=lambda r: r.get("chunks") if r.get("stream") else None,
    ),
    Metric(
        "tokens_per_chunk",
        "tokens/chunk",
        "output tokens per output-carrying event of a streamed answer",
        read=_tokens_per_chunk,
        table=False,
    ),
    Metric(
        "schedule_lag_ms",
        "ms",
        "open loop: how late the request was sent after its slot",
        read=lambda r: r.get("schedule_lag_ms"),
        latency=True,
    ),
)
METRICS_BY_NAME: Mapping[str, Metric] = {metric.name: metric for metric in METRICS}


def _check(metrics: Iterable[Metric]) -> None:
    for metric in metrics:
        assert (metric.read is None) != (metric.many is None), metric.name
        assert not metric.total or metric.read is not None, metric.name
        assert not metric.rate_slo or metric.total, metric.name
        assert metric.row_size is None or metric.row_size in METRICS_BY_NAME, metric.name
        assert not (metric.goodput or metric.row or metric.plot) or metric.slo, metric.name
        assert not metric.slo or metric.latency, metric.name


_check(METRICS)
