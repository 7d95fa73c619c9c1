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
    from locust.stats import RequestStats, StatsEntry

    from gateprobe.load.collector import (
        LLM_TYPE,
        PENDING_BATCH,
        Collector,
        FineStatsEntry,
        _bucket,
        _StatsCSVFileWriter,
        adopt_llm_rows,
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
        round(entry.total_response_time, 6),  # summed in another order
        entry.min_response_time,
        entry.max_response_time,
        dict(entry.response_times),
        sum(entry.num_reqs_per_sec.values()),
        entry.total_content_length,
    )


def test_the_rows_match_locusts_own_logging_in_ms_to_the_microsecond(tmp_path: Path) -> None:
    stats = RequestStats()
    collector = Collector(tmp_path, is_worker=False)
    reference = {
        metric: FineStatsEntry(RequestStats(), metric, LLM_TYPE)
        for metric in ("TTFT", "TTST", "TPOT", "ITL")
    }
    gap_lists = [  # events of one read have gaps of 0: all of them, some, none
        [20.34, 0.0, 19.999, 123456.789],
        [0.0, 0.0, 0.0],
        [5.0, 0.0, 0.0, 7.5, 0.412],
        [20.34, 19.999, 123456.789],
    ]
    for index, gaps in enumerate(gap_lists):
        r = record(index, itl_ms=gaps)
        collector.add(r, stats)
        reference["TTFT"].log(r["ttft_ms"], r["output_tokens"])
        reference["TTST"].log(r["ttst_ms"], 0)
        reference["TPOT"].log(r["tpot_ms"], 0)
        for gap in r["itl_ms"]:
            reference["ITL"].log(gap, 0)
    collector.add(record(9, ok=False), stats)  # failed: in the records, not in the rows
    for metric, expected in reference.items():
        entry = stats.entries[(llm_row_name(metric, "chat"), LLM_TYPE)]
        assert figures(entry) == figures(expected), metric
    # milliseconds, as Locust's columns say, finer than Locust's whole milliseconds
    itl = stats.entries[(llm_row_name("ITL", "chat"), LLM_TYPE)]
    assert itl.name == "ITL chat"
    assert itl.response_times[20.34] == 2 and itl.response_times[123500.0] == 2
    assert itl.response_times[0.412] == 1 and itl.response_times[20.0] == 2  # 19.999
    assert itl.response_times[0] == 6 and itl.min_response_time == 0
    assert stats.total.num_requests == 0  # the Aggregated row counts real requests only
    tpot = stats.entries[(llm_row_name("TPOT", "chat"), LLM_TYPE)]
    assert dict(tpot.response_times) == {20.04: 4}  # 20.0417 ms, 4 significant digits
    assert tpot.median_response_time == 20.0417  # Locust keeps a median within min and max
    # locust.html's figures: min and max unrounded (Locust's are whole milliseconds)
    ttft = stats.entries[(llm_row_name("TTFT", "chat"), LLM_TYPE)].to_dict()
    assert ttft["min_response_time"] == 201.234 and ttft["max_response_time"] == 204.234
    assert ttft["response_time_percentile_0.99"] == 204.2
    # the console table (Locust's prints %7d)
    assert (
        "| 202.73  201.23  204.23 203.20 |"
        in stats.entries[(llm_row_name("TTFT", "chat"), LLM_TYPE)].to_string()
    )


def test_the_csv_writer_leaves_the_llm_percentiles_as_they_are(tmp_path: Path) -> None:
    stats = RequestStats()
    Collector(tmp_path, is_worker=False).add(record(0, itl_ms=[0.412, 20.34, 20.34]), stats)
    writer = object.__new__(_StatsCSVFileWriter)  # only its percentile columns are used
    writer.percentiles_to_report = [0.5, 1.0]
    writer.percentiles_na = ["N/A", "N/A"]
    itl = stats.entries[(llm_row_name("ITL", "chat"), LLM_TYPE)]
    assert writer._percentile_fields(itl) == [20.34, 20.34]
    real = StatsEntry(stats, "chat", "POST")
    real.log(20.34, 0)  # a real request's row: Locust's whole milliseconds, as before
    assert writer._percentile_fields(real) == [20, 20]


def test_a_master_adopts_the_llm_rows_its_workers_report(tmp_path: Path) -> None:
    worker, master = RequestStats(), RequestStats()
    Collector(tmp_path, is_worker=True).add(record(0), worker)
    report = {"stats": worker.serialize_stats()}
    # as Locust's own listener does before or after ours: a plain row, then the numbers
    name = llm_row_name("TTFT", "chat")
    master.entries[(name, LLM_TYPE)] = StatsEntry(master, name, LLM_TYPE)
    adopt_llm_rows(master, report)
    for row in report["stats"]:
        key = (row["name"], row["method"])
        if key not in master.entries:
            master.entries[key] = StatsEntry(master, row["name"], row["method"])
        master.entries[key].extend(StatsEntry.unserialize(row, master))
    for metric in ("TTFT", "TTST", "TPOT", "ITL"):
        entry = master.entries[(llm_row_name(metric, "chat"), LLM_TYPE)]
        assert isinstance(entry, FineStatsEntry), metric
    ttft = master.entries[(name, LLM_TYPE)]
    assert ttft.num_requests == 1 and ttft.to_dict()["min_response_time"] == 201.234


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
