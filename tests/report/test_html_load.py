"""The load report (report.html) of real load runs against the bundled mock: the figures it
shows are summary.json's, the plots are inline SVG drawn from requests.jsonl, and nothing in
the page is fetched from anywhere or holds a key."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from html_support import Load, assert_offline, load_json, parse

from gateprobe.report.html import write_load_report
from gateprobe.report.html.load_view import STATS
from gateprobe.report.html.render import fmt_number

SECRET = re.compile(r"sk-gp-[0-9a-f]{16,}")  # the shape of the bundled mock's keys


def test_the_load_run_writes_its_report_and_names_it(load_run: Load) -> None:
    page = load_run.directory / "report.html"
    assert page.is_file()
    assert f"reports: {load_run.directory}/  (HTML: {page})" in load_run.output
    assert "result: passed (exit 0)" in load_run.output


def test_requests_throughput_and_slos_are_the_summarys(load_run: Load) -> None:
    summary = load_json(load_run.directory / "summary.json")
    page = parse(write_load_report(load_run.directory))
    requests, throughput = summary["requests"], summary["throughput"]
    assert requests["measured"] > 0
    for key in ("measured", "ok", "failed"):
        assert page.one(requests=key).text == str(requests[key])
    assert float(page.one(requests="error_ratio").text) == round(requests["error_ratio"], 4)
    for status, count in requests["by_status"].items():
        assert page.one(by_status=status).text == str(count)
    for cls, count in requests["by_error_class"].items():
        assert page.one(by_error_class=cls).text == str(count)
    for key, value in throughput.items():
        assert page.one(throughput_row=key).text == fmt_number(value, 3)
    assert page.one(throughput="requests_per_s").text == fmt_number(throughput["requests_per_s"])
    assert page.one(goodput="fraction").text == fmt_number(summary["goodput"]["fraction"], 4)
    assert page.one(field="profile").text == summary["profile"]["name"]
    assert page.one(field="target-base-url").text == summary["target"]["base_url"]
    results = summary["slo"]["results"]
    assert results and summary["slo"]["passed"] is True
    for result in results:
        assert page.one(slo_actual=result["key"]).text == fmt_number(result["actual"], 4)
        assert "ok" in page.one(slo=result["key"]).text
    assert page.one(field="slo-verdict").text == "Every SLO held."


def test_the_metrics_table_is_the_summarys(load_run: Load) -> None:
    summary = load_json(load_run.directory / "summary.json")
    page = parse(write_load_report(load_run.directory))
    shown = [e.attrs["data-metric"] for e in page.having("metric")]
    with_samples = [name for name, stats in summary["metrics"].items() if stats.get("count")]
    assert shown == with_samples and {"ttft_ms", "itl_ms", "e2e_ms"} <= set(shown)
    for name in shown:
        stats = summary["metrics"][name]
        assert page.one(metric_stat=f"{name}:count").text == str(stats["count"])
        for stat in STATS:
            assert float(page.one(metric_stat=f"{name}:{stat}").text) == round(stats[stat], 2)


def test_plots_are_inline_and_nothing_is_fetched(load_run: Load) -> None:
    path = write_load_report(load_run.directory)
    page = parse(path)
    html = path.read_text("utf-8")
    assert page.tags.count("svg") == 4  # TTFT, ITL, e2e, over time
    for title in ("Time to first token", "Inter-token latency", "End-to-end latency", "TTFT per"):
        assert title in page.text
    assert "<?xml" not in html and "<!DOCTYPE svg" not in html and "matplotlib.org" not in html
    assert_offline(path, page)
    assert not SECRET.search(html)


def _records(directory: Path) -> list[dict[str, Any]]:
    lines = (directory / "requests.jsonl").read_text("utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_failed_requests_and_a_breach_are_shown(load_run: Load, tmp_path: Path) -> None:
    """A copy of the run whose summary says some requests failed and an SLO was breached."""
    summary = load_json(load_run.directory / "summary.json")
    summary["requests"]["by_error_class"] = {"http_503": 3, "<script>x</script>": 1}
    summary["requests"]["failed"] = 4
    summary["slo"]["passed"] = False
    summary["slo"]["results"][0]["passed"] = False
    summary["warnings"] = ["the mock was the bottleneck <b>really</b>"]
    (tmp_path / "summary.json").write_text(json.dumps(summary), "utf-8")
    records = _records(load_run.directory)
    for record in records[-5:]:
        record.update(ok=False, status=503, error_class="http_503")
    (tmp_path / "requests.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in records), "utf-8"
    )
    page = parse(write_load_report(tmp_path))
    assert page.one(requests="failed").text == "4"
    assert page.one(by_error_class="http_503").text == "3"
    assert page.one(by_error_class="<script>x</script>").text == "1"
    assert "script" not in page.tags and "b" not in page.tags
    assert page.one(field="slo-verdict").text == "An SLO was breached."
    assert "breach" in page.one(slo=summary["slo"]["results"][0]["key"]).text
    assert page.one(warning="").text == "the mock was the bottleneck <b>really</b>"


def test_a_run_without_records_has_no_plots(load_run: Load, tmp_path: Path) -> None:
    (tmp_path / "summary.json").write_bytes((load_run.directory / "summary.json").read_bytes())
    page = parse(write_load_report(tmp_path))
    assert "svg" not in page.tags
    assert page.having("metric")  # the figures are the summary's all the same
