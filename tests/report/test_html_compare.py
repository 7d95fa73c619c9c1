"""The comparison report (compare.html): a comparison of two real runs and two real load runs
built by ``gateprobe compare``'s own builder, and a small hand-written compare.json with the
cases real runs of the mock do not make (a scenario not run on a target, a deviation, a
target without totals or records, markup in a label and a reason)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from html_support import Run, assert_offline, load_json, parse

from gateprobe.report.html import write_compare_report
from gateprobe.report.html.load_view import STATS
from gateprobe.report.html.render import fmt_number

FIXTURE = Path(__file__).parent / "fixtures" / "compare.json"
VERDICTS = ("pass", "fail", "skip", "deviation")


def _check_counts(comparison: dict[str, Any], path: Path) -> None:
    """Totals, areas and the matrix shown are compare.json's."""
    page = parse(path)
    targets = comparison["targets"]
    for target in targets:
        for verdict in VERDICTS:
            cell = page.one(target_total=f"{target['label']}|{verdict}")
            expected = str(target["totals"][verdict]) if target.get("totals") else "-"
            assert cell.text == expected
    for row in comparison["areas"]:
        for index, counts in enumerate(row["counts"]):
            for verdict in VERDICTS:
                shown = page.one(area_count=f"{row['area']}|{index}|{verdict}").text
                assert shown == str(counts[verdict])
    rows = page.having("row")
    # differing rows first, then the others (folded)
    assert [r.attrs["data-row"] for r in rows] == [
        r["name"] for r in sorted(comparison["rows"], key=lambda r: not r["differs"])
    ]
    assert [r.attrs.get("class") == "differs" for r in rows] == sorted(
        (r["differs"] for r in comparison["rows"]), reverse=True
    )
    for row in comparison["rows"]:
        for index, cell in enumerate(row["cells"]):
            shown = page.one(cell=f"{row['name']}|{index}")
            verdict = cell["verdict"]
            assert shown.attrs["data-verdict"] == (verdict if verdict is not None else "none")
            assert (verdict or "not run") in shown.text
            if verdict != "pass" and cell["reason"]:
                assert " ".join(cell["reason"].split()) in shown.text
    if comparison["rows"]:
        assert page.one(field="differing").text == str(comparison["differing"])


def _check_load(comparison: dict[str, Any], path: Path) -> None:
    page = parse(path)
    for index, entry in enumerate(comparison["load"]["targets"]):
        for section, key, digits in (
            ("requests", "measured", 0),
            ("requests", "failed", 0),
            ("requests", "error_ratio", 4),
            ("throughput", "requests_per_s", 2),
        ):
            shown = page.one(load=f"{section}.{key}|{index}").text
            value = entry[section][key]
            assert shown == (fmt_number(value, digits) if digits else fmt_number(value))
        for metric in comparison["load"]["metrics"]:
            stats = entry["metrics"][metric]
            for stat in ("count", *STATS):
                shown = page.one(load_metric=f"{metric}:{stat}|{index}").text
                assert shown == fmt_number(stats.get(stat))


def test_a_real_comparison_shows_compare_json(compare_dir: Path) -> None:
    comparison = load_json(compare_dir / "compare.json")
    assert comparison["differing"] > 0 and comparison["load"] is not None
    path = write_compare_report(compare_dir)
    assert path == compare_dir / "compare.html"
    _check_counts(comparison, path)
    _check_load(comparison, path)


def test_the_overlaid_plots_come_from_each_targets_records(compare_dir: Path) -> None:
    path = write_compare_report(compare_dir)
    page = parse(path)
    # TTFT, ITL and e2e distributions and the course over the run, both targets in each
    assert page.tags.count("svg") == 4
    html = path.read_text("utf-8")
    labels = [t["label"] for t in load_json(compare_dir / "compare.json")["targets"]]
    for label in labels:
        assert html.count(f"{label}: p50") == 3  # each distribution's legend names every target
    assert "TTFT p50 over the run" in html and "Output tokens/s over the run" in html
    over_time = html[html.index("TTFT p50 over the run") :]
    assert all(label in over_time for label in labels)  # the course's legend names both
    assert_offline(path, page)


def test_no_secret_of_either_run(compare_dir: Path, failing_run: Run, second_run: Run) -> None:
    html = write_compare_report(compare_dir).read_text("utf-8")
    for run in (failing_run, second_run):
        assert [name for name, secret in run.secrets.items() if secret in html] == []


def test_the_fixture_not_run_deviation_and_missing_figures(tmp_path: Path) -> None:
    shutil.copy(FIXTURE, tmp_path / "compare.json")
    comparison = load_json(FIXTURE)
    path = write_compare_report(tmp_path)
    _check_counts(comparison, path)
    _check_load(comparison, path)
    page = parse(path)
    assert "script" not in page.tags and "b" not in page.tags  # escaped, not markup
    assert "gateway <b>x</b>" in page.text
    assert page.one(cell="streaming.usage[openai]|1").attrs["data-verdict"] == "none"
    assert "svg" not in page.tags  # no records anywhere: the figures only
    assert_offline(path, page)


def test_a_run_only_comparison_has_no_load_section(tmp_path: Path) -> None:
    comparison = load_json(FIXTURE)
    comparison["load"] = None
    (tmp_path / "compare.json").write_text(json.dumps(comparison), "utf-8")
    page = parse(write_compare_report(tmp_path))
    assert page.having("load") == [] and page.having("load-metric") == []
    assert page.having("row")


def test_a_load_only_comparison_has_no_matrix(tmp_path: Path) -> None:
    comparison = load_json(FIXTURE)
    comparison.update(rows=[], areas=[], differing=0)
    for target in comparison["targets"]:
        target["totals"] = None
    (tmp_path / "compare.json").write_text(json.dumps(comparison), "utf-8")
    path = write_compare_report(tmp_path)
    page = parse(path)
    assert page.having("row") == [] and page.having("area-count") == []
    _check_load(comparison, path)
