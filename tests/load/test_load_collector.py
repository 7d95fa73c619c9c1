"""The collector's LLM rows (logged in one pass per request) and its batched records."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

# Importing locust patches the standard library with gevent, which hangs a pytest process
# (its threads are already running): only the stats tables are needed here, unpatched.
_skip = os.environ.get("LOCUST_SKIP_MONKEY_PATCH")
os.environ["LOCUST_SKIP_MONKEY_PATCH"] = "1"
try:
    from locust.stats import RequestStats

    from gateprobe.load.collector import (
        LLM_TYPE,
        PENDING_BATCH,
        Collector,
        FineStatsEntry,
        _bucket,
        llm_row_name,
    )
finally:  # the Locust processes other tests start must patch as usual
    if _skip is None:
        del os.environ["LOCUST_SKIP_MONKEY_PATCH"]


def record(index: int, **extra: Any) -> dict[str, Any]:
    return {
        "name": "chat",
        "ok": True,
        "warmup": False,
        "worker": "local",
        "start": 1000.0 + index,
        "e2e_ms": 812.5,
        "ttft_ms": 201.234 + index,
        "ttst_ms": 221.5,
        "tpot_ms": 20.0417,
        "itl_ms": [20.34, 0.0, 19.999, 123456.789],
        "output_tokens": 21,
        **extra,
    }


def figures(entry: Any) -> tuple[Any, ...]:
    return (
        entry.num_requests,
        entry.total_response_time,
        entry.min_response_time,
        entry.max_response_time,
        dict(entry.response_times),
        sum(entry.num_reqs_per_sec.values()),
        entry.total_content_length,
    )


def test_the_rows_match_locusts_own_logging_with_four_digit_buckets(tmp_path: Path) -> None:
    stats = RequestStats()
    collector = Collector(tmp_path, is_worker=False)
    reference = {
        metric: FineStatsEntry(RequestStats(), metric, LLM_TYPE)
        for metric in ("TTFT", "TTST", "TPOT", "ITL")
    }
    gap_lists = [  # events of one read have gaps of 0: all of them, some, none
        [20.34, 0.0, 19.999, 123456.789],
        [0.0, 0.0, 0.0],
        [5.0, 0.0, 0.0, 7.5],
        [20.34, 19.999, 123456.789],
    ]
    for index, gaps in enumerate(gap_lists):
        r = record(index, itl_ms=gaps)
        collector.add(r, stats)
        reference["TTFT"].log(round(r["ttft_ms"] * 1000), r["output_tokens"])
        reference["TTST"].log(round(r["ttst_ms"] * 1000), 0)
        reference["TPOT"].log(round(r["tpot_ms"] * 1000), 0)
        for gap in r["itl_ms"]:
            reference["ITL"].log(round(gap * 1000), 0)
    collector.add(record(9, ok=False), stats)  # failed: in the records, not in the rows
    for metric, expected in reference.items():
        entry = stats.entries[(llm_row_name(metric, "chat"), LLM_TYPE)]
        assert figures(entry) == figures(expected), metric
    itl = stats.entries[(llm_row_name("ITL", "chat"), LLM_TYPE)]
    assert itl.response_times[20340] == 2 and itl.response_times[123500000] == 2
    assert itl.response_times[0] == 6 and itl.min_response_time == 0
    assert stats.total.num_requests == 0  # the Aggregated row counts real requests only


def test_the_rows_follow_a_cleared_table(tmp_path: Path) -> None:
    stats = RequestStats()
    collector = Collector(tmp_path, is_worker=False)
    collector.add(record(0), stats)
    stats.clear_all()
    collector.add(record(1), stats)
    entry = stats.entries[(llm_row_name("TTFT", "chat"), LLM_TYPE)]
    assert entry.num_requests == 1 and entry.max_response_time == 202234


def test_bucket_keeps_four_significant_digits() -> None:
    for value, bucketed in ((9999, 9999), (20344, 20340), (123456, 123500), (98765432, 98770000)):
        assert _bucket(value) == bucketed


def test_records_are_written_in_batches_and_all_by_close(tmp_path: Path) -> None:
    stats = RequestStats()
    collector = Collector(tmp_path, is_worker=False)
    collector.open()
    count = PENDING_BATCH + 7
    for index in range(count):
        collector.add(record(index), stats)
    assert collector.received == PENDING_BATCH  # one batch written, 7 waiting
    collector.flush()  # the progress loop's flush writes the rest
    assert collector.received == count and collector.by_worker == {"local": count}
    collector.add(record(count), stats)
    collector.close()
    lines = (tmp_path / "requests.jsonl").read_text().splitlines()
    assert [json.loads(line)["start"] for line in lines] == [1000.0 + i for i in range(count + 1)]
    assert len(collector.recent) == count + 1


def test_a_worker_queues_its_records_for_the_master(tmp_path: Path) -> None:
    collector = Collector(tmp_path, is_worker=True)
    stats = RequestStats()
    for index in range(3):
        collector.add(record(index), stats)
    assert [r["start"] for r in collector.drain()] == [1000.0, 1001.0, 1002.0]
    assert collector.sent == 3 and collector.drain() == []
    assert not (tmp_path / "requests.jsonl").exists()
