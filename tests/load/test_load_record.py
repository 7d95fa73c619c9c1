"""The record's metrics table and what is built from it; input tokens from each protocol's
usage, and the classifier's common case left without allocations."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from gateprobe.load.classify import NOTHING, VISIBLE, classify_body, classify_event
from gateprobe.load.launch import format_summary
from gateprobe.load.record import METRICS, SLO_STATS, RequestRecord
from gateprobe.load.slo import GOODPUT_CRITERIA, evaluate, is_slo_key, parse_slo_options
from gateprobe.load.summary import build_summary

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "load_profile.schema.json"


def record(start: float, **fields: Any) -> RequestRecord:
    base: dict[str, Any] = {
        "ok": True, "status": 200, "error_class": None, "error": None, "e2e_ms": 500.0,
        "ttft_ms": 100.0, "ttst_ms": 120.0, "reasoning_ttft_ms": None, "itl_ms": [20.0, 20.0],
        "tpot_ms": 20.0, "output_tokens": 3, "output_tokens_source": "usage",
        "reasoning_tokens": None, "input_tokens": 11, "chunks": 3, "bytes": 300,
        "name": "chat", "protocol": "openai", "operation": "chat", "stream": "sse",
        "start": start, "request_id": None, "schedule_lag_ms": None, "warmup": False,
        "worker": "local",
    }  # fmt: skip
    base.update(fields)
    return base  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("protocol", "operation", "event", "data", "tokens"),
    [
        ("openai", "chat", None,
         {"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 5}}, 12),
        ("openai", "responses", "response.completed",
         {"type": "response.completed",
          "response": {"usage": {"input_tokens": 13, "output_tokens": 5}}}, 13),
        ("anthropic", "chat", "message_start",
         {"type": "message_start", "message": {"usage": {"input_tokens": 14, "output_tokens": 1}}},
         14),
        ("gemini", "chat", None,
         {"candidates": [{"content": {"parts": [{"text": "hi"}]}}],
          "usageMetadata": {"promptTokenCount": 15, "candidatesTokenCount": 1}}, 15),
    ],
)  # fmt: skip
def test_each_protocols_usage_gives_input_tokens(
    protocol: str, operation: str, event: str | None, data: dict[str, Any], tokens: int
) -> None:
    delta = classify_event(protocol, operation, event, json.dumps(data).encode())
    assert delta.input_tokens == tokens
    assert delta.error is None


@pytest.mark.parametrize(
    ("protocol", "operation", "body", "tokens"),
    [
        ("openai", "chat", {"usage": {"prompt_tokens": 21, "completion_tokens": 3}}, 21),
        ("openai", "responses", {"usage": {"input_tokens": 22, "output_tokens": 3}}, 22),
        ("anthropic", "chat", {"usage": {"input_tokens": 23, "output_tokens": 3}}, 23),
        ("gemini", "chat", {"usageMetadata": {"promptTokenCount": 24}}, 24),
        ("openai", "embeddings", {"usage": {"prompt_tokens": 25, "total_tokens": 25}}, 25),
        ("openai", "chat", {"choices": []}, None),
    ],
)
def test_a_plain_bodys_usage_gives_input_tokens(
    protocol: str, operation: str, body: dict[str, Any], tokens: int | None
) -> None:
    assert classify_body(protocol, operation, json.dumps(body).encode()).input_tokens == tokens


def test_the_common_events_build_nothing_new() -> None:
    # the text chunks of a stream (most events) return the shared constants
    chat = b'{"choices":[{"index":0,"delta":{"content":"hi"}}]}'
    assert classify_event("openai", "chat", None, chat) is VISIBLE
    ping = b'{"type":"ping"}'
    assert classify_event("anthropic", "chat", "ping", ping) is NOTHING
    start = b'{"type":"message_start","message":{"id":"m"}}'
    assert classify_event("anthropic", "chat", "message_start", start) is NOTHING
    other = b'{"type":"response.output_item.added","item":{}}'
    assert classify_event("openai", "responses", None, other) is NOTHING


def test_the_slo_keys_are_the_tables_and_the_profile_schemas() -> None:
    schema = json.loads(SCHEMA.read_text())
    found: list[str] = []

    def patterns(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str) and "error_ratio" in node["pattern"]:
                found.append(node["pattern"])
            for value in node.values():
                patterns(value)
        elif isinstance(node, list):
            for value in node:
                patterns(value)

    patterns(schema)
    (pattern,) = found
    keys = {key for metric in METRICS for key in metric.slo_keys}
    keys |= set(GOODPUT_CRITERIA) | {"error_ratio", "min_requests_per_s", "goodput_fraction"}
    # what the option names were before the table, every one still known
    old = {f"{m}_{s}_ms" for m in ("ttft", "ttst", "itl", "tpot", "e2e") for s in SLO_STATS}
    old |= {"error_ratio", "min_output_tokens_per_s", "min_requests_per_s", "goodput_fraction"}
    old |= {"goodput_ttft_ms", "goodput_tpot_ms", "goodput_e2e_ms"}
    assert keys == old
    for key in keys:
        assert is_slo_key(key) and re.match(pattern, key), key
    for key in ("ttft_p97_ms", "input_tokens_p50_ms", "min_chunks_per_s", "goodput_itl_ms"):
        assert not is_slo_key(key) and not re.match(pattern, key), key
    assert parse_slo_options(["e2e_mean_ms=900"]) == {"e2e_mean_ms": 900.0}


def test_every_metric_is_in_the_summary_and_its_slos_are_judged() -> None:
    records = [record(100.0 + i, ttft_ms=100.0 + i) for i in range(5)]
    records.append(record(103.0, ok=False, status=500, error_class="http_500", input_tokens=None))
    thresholds = {key: 1e9 for metric in METRICS for key in metric.slo_keys}
    thresholds["min_output_tokens_per_s"] = 0.0
    summary = build_summary(records, slo=thresholds)
    assert {m.name for m in METRICS} <= set(summary["metrics"])
    assert summary["metrics"]["input_tokens"]["p50"] == 11
    throughput = summary["throughput"]
    assert throughput["input_tokens"] == 55 and throughput["output_tokens"] == 15
    assert throughput["input_tokens_per_s"] == round(55 / throughput["window_s"], 3)
    assert throughput["peak_input_tokens_per_s"] == 11
    assert summary["by_request"]["chat"]["input_tokens"] == 55
    results = {r["key"]: r for r in summary["slo"]["results"]}
    assert set(results) == set(thresholds) and all(r["passed"] for r in results.values())
    assert results["e2e_p99_ms"]["message"] == "E2E p99 500 ms <= 1e+09 ms"
    text = format_summary(summary, 0)
    assert re.search(r"^input_tokens\s+5\s+11\.00", text, re.M)
    assert "input tok/s" in text
    failing = evaluate({"min_output_tokens_per_s": 1e6}, summary)
    assert failing[0].message.startswith("output tokens/s ") and not failing[0].passed


def test_old_records_without_input_tokens_still_summarize() -> None:
    old = [record(100.0 + i) for i in range(3)]
    for r in old:
        del r["input_tokens"]  # type: ignore[misc]
    summary = build_summary(old)
    assert summary["throughput"]["input_tokens"] == 0
    assert summary["metrics"]["input_tokens"] == {"count": 0}
