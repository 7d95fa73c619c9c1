"""``gateprobe compare`` end to end, as a user runs it: the real script in a subprocess.

The bundled mock against the mock with a defect and against the mock with another dialect:
the defect's scenarios are the rows that differ, the dialect (declared by its profile) changes
no verdict. Then the same runs compared again from their directories, a load comparison, and
bad input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_cli import run_cli

SELECTION = "streaming or errors"  # the defect's scenarios and the dialect's, in a short run


def _comparison(report_dir: Path) -> dict[str, Any]:
    (found,) = report_dir.glob("*/compare.json")
    data: dict[str, Any] = json.loads(found.read_text("utf-8"))
    return data


@pytest.fixture(scope="module")
def three_way(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, Any]]:
    out = tmp_path_factory.mktemp("compare")
    done = run_cli(
        "compare",
        "--target", "mock",
        "--target", "mock:defect=stream-usage-zero",
        "--target", "mock:insufficient-quota-status=403,path-style=prefixed,label=new-api-like",
        "-k", SELECTION,
        "--report-dir", str(out),
        timeout=240,
    )  # fmt: skip
    return done, _comparison(out)


def test_the_defect_is_what_differs_and_the_declared_dialect_is_not(
    three_way: tuple[Any, dict[str, Any]],
) -> None:
    done, comparison = three_way
    assert done.returncode == 1, done.stdout + done.stderr  # rows differ, as diff(1) says
    labels = [t["label"] for t in comparison["targets"]]
    assert labels == ["mock", "mock[defect=stream-usage-zero]", "new-api-like"]
    rows = comparison["rows"]
    differing = [r for r in rows if r["differs"]]
    assert differing and comparison["differing"] == len(differing)
    assert rows[: len(differing)] == differing  # differing rows first
    for row in rows:
        baseline, defect, dialect = (c["verdict"] for c in row["cells"])
        assert baseline == dialect == "pass" or baseline == dialect, row
        assert row["differs"] == (defect != baseline), row
    names = {r["name"] for r in differing}
    assert "streaming.usage_equals_plain" in names
    for row in differing:
        assert row["cells"][1]["verdict"] == "fail"
        assert row["cells"][1]["checks"], row  # which check found it
    usage = next(r for r in differing if r["name"] == "streaming.usage_equals_plain")
    assert "stream_equals_plain" in usage["cells"][1]["reason"]
    # the terminal shows the rows that differ, and where the reports are
    assert f"{len(differing)} of {len(rows)} scenarios differ:" in done.stdout
    assert "streaming.usage_equals_plain" in done.stdout
    assert "compare.json" in done.stdout


def test_the_dialect_was_really_exercised(three_way: tuple[Any, dict[str, Any]]) -> None:
    _, comparison = three_way
    statuses = []
    for target in comparison["targets"]:
        summary = json.loads((Path(target["run_dir"]) / "summary.json").read_text("utf-8"))
        statuses.append(
            {step["status"] for s in summary["scenarios"] for step in s["steps"]} & {402, 403}
        )
    assert statuses == [{402}, {402}, {403}]
    # and its Claude and Gemini routes were the prefixed ones its profile declares
    summary = json.loads(
        (Path(comparison["targets"][2]["run_dir"]) / "summary.json").read_text("utf-8")
    )
    curls = " ".join(step["curl"] or "" for s in summary["scenarios"] for step in s["steps"])
    assert "/claude/v1/messages" in curls and "/gemini/v1beta/models/" in curls
    assert "/v1/messages" not in curls.replace("/claude/v1/messages", "")


def test_run_directories_compare_the_same(
    three_way: tuple[Any, dict[str, Any]], tmp_path: Path
) -> None:
    _, first = three_way
    dirs = [t["run_dir"] for t in first["targets"]]
    done = run_cli("compare", *dirs, "--report-dir", str(tmp_path), timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    again = _comparison(tmp_path)
    assert [r["name"] for r in again["rows"]] == [r["name"] for r in first["rows"]]
    assert [[c["verdict"] for c in r["cells"]] for r in again["rows"]] == [
        [c["verdict"] for c in r["cells"]] for r in first["rows"]
    ]
    same = run_cli("compare", dirs[0], dirs[2], "--report-dir", str(tmp_path / "same"))
    assert same.returncode == 0, same.stdout + same.stderr
    assert "have the same verdict on every target" in same.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "mock"], "at least two targets"),
        (["--target", "mock", "--target", "mock:defect=nope"], "unknown defect 'nope'"),
        (["/no/such/run", "/no/such/other"], "not a run directory"),
        (["--target", "mock", "/no/such/run"], "not both"),
        (["--load-only", "--target", "mock", "--target", "mock"], "--load-only needs --profile"),
        (
            ["--target", "mock", "--target", "mock", "--profile", "no-such-profile"],
            "no-such-profile",
        ),
    ],
)
def test_bad_input_is_a_usage_error(args: list[str], message: str, tmp_path: Path) -> None:
    done = run_cli("compare", *args, "--report-dir", str(tmp_path))
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert not list(tmp_path.glob("*/targets"))  # nothing ran


def test_a_load_comparison_sets_the_figures_side_by_side(tmp_path: Path) -> None:
    done = run_cli(
        "compare",
        "--target", "mock",
        "--target", "mock:defect=buffered-stream",
        "--profile", "chat-steady", "--load-only",
        "--duration", "3s", "--warmup", "1s", "--users", "2",
        "--report-dir", str(tmp_path),
        timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr  # no conformance rows to differ
    load = _comparison(tmp_path)["load"]
    assert load["profile"] == "chat-steady"
    direct, buffered = (t["metrics"]["ttft_ms"] for t in load["targets"])
    assert direct["count"] > 0 and buffered["count"] > 0
    # chat-steady's mock: TTFT 200 ms, then 20 ms per token; a buffered stream's first token
    # comes with its last, at least 8 tokens (160 ms) later
    assert 190 <= direct["p50"] < buffered["p50"] - 100
    for target in load["targets"]:
        summary = json.loads(Path(target["summary_path"]).read_text("utf-8"))
        assert target["metrics"]["ttft_ms"] == summary["metrics"]["ttft_ms"]
    assert "ttft_ms p50" in done.stdout
    # the same two load runs, compared again from their directories
    dirs = [str(Path(t["summary_path"]).parent) for t in load["targets"]]
    again = run_cli("compare", *dirs, "--report-dir", str(tmp_path / "again"))
    assert again.returncode == 0, again.stdout + again.stderr
    reread = _comparison(tmp_path / "again")["load"]["targets"]
    assert [t["metrics"] for t in reread] == [t["metrics"] for t in load["targets"]]
