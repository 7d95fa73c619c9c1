"""compare.json from summaries: rows matched by name, differing rows first, counts per area."""

from __future__ import annotations

from typing import Any

from gateprobe.compare import Column, build_comparison
from gateprobe.compare.terminal import format_comparison


def _scenario(name: str, area: str, verdict: str, check: str | None = None) -> dict[str, Any]:
    failures = [{"check": check, "message": f"{check}: broken", "where": ""}] if check else []
    return {
        "id": name.split("[")[0],
        "name": name,
        "title": f"title of {name}",
        "area": area,
        "file": f"/suites/{area}.yaml",
        "line": 3,
        "verdict": verdict,
        "reason": f"{check}: broken" if check else "",
        "steps": [{"name": "call", "failures": failures}],
    }


def _run(name: str, scenarios: list[dict[str, Any]]) -> dict[str, Any]:
    areas: dict[str, dict[str, int]] = {}
    for s in scenarios:
        row = areas.setdefault(s["area"], {"pass": 0, "fail": 0, "skip": 0, "deviation": 0})
        row[s["verdict"]] += 1
    totals = {v: sum(r[v] for r in areas.values()) for v in ("pass", "fail", "skip", "deviation")}
    return {
        "target": {"name": name, "base_url": f"http://{name}.invalid"},
        "totals": totals,
        "areas": [{"area": a, **c} for a, c in sorted(areas.items())],
        "scenarios": scenarios,
    }


BASE = _run(
    "a",
    [
        _scenario("auth.x[openai]", "auth", "pass"),
        _scenario("auth.x[gemini]", "auth", "pass"),
        _scenario("streaming.y", "streaming", "pass"),
        _scenario("quota.z", "quota", "skip"),
    ],
)
OTHER = _run(
    "b",
    [
        _scenario("auth.x[openai]", "auth", "pass"),
        _scenario("auth.x[gemini]", "auth", "fail", "status"),
        _scenario("streaming.y", "streaming", "pass"),
        _scenario("models.only_here", "models", "pass"),
    ],
)


def test_rows_that_differ_come_first_and_a_scenario_not_run_is_null() -> None:
    comparison = build_comparison([Column("a", run_summary=BASE), Column("b", run_summary=OTHER)])
    rows = comparison["rows"]
    assert [r["name"] for r in rows if r["differs"]] == [
        "auth.x[gemini]",
        "models.only_here",
        "quota.z",
    ]
    assert all(r["differs"] for r in rows[:3]) and not any(r["differs"] for r in rows[3:])
    assert comparison["differing"] == 3
    gemini = rows[0]
    assert [c["verdict"] for c in gemini["cells"]] == ["pass", "fail"]
    assert gemini["cells"][1]["checks"] == ["status"]
    assert gemini["cells"][1]["reason"] == "status: broken"
    only_b = next(r for r in rows if r["name"] == "models.only_here")
    assert only_b["cells"][0] == {"verdict": None, "reason": "not run on this target", "checks": []}
    assert (gemini["file"], gemini["line"], gemini["area"]) == ("/suites/auth.yaml", 3, "auth")


def test_counts_per_area_per_target_cover_every_area_of_either() -> None:
    comparison = build_comparison([Column("a", run_summary=BASE), Column("b", run_summary=OTHER)])
    areas = {a["area"]: a["counts"] for a in comparison["areas"]}
    assert sorted(areas) == ["auth", "models", "quota", "streaming"]
    assert areas["auth"] == [
        {"pass": 2, "fail": 0, "skip": 0, "deviation": 0},
        {"pass": 1, "fail": 1, "skip": 0, "deviation": 0},
    ]
    assert areas["models"][0] == {"pass": 0, "fail": 0, "skip": 0, "deviation": 0}
    targets = comparison["targets"]
    assert [t["label"] for t in targets] == ["a", "b"]
    assert targets[1]["totals"] == {"pass": 3, "fail": 1, "skip": 0, "deviation": 0}
    assert targets[0]["base_url"] == "http://a.invalid"


def test_identical_runs_differ_nowhere() -> None:
    comparison = build_comparison([Column("a", run_summary=BASE), Column("a2", run_summary=BASE)])
    assert comparison["differing"] == 0
    assert not any(r["differs"] for r in comparison["rows"])
    assert "all 4 scenarios have the same verdict on every target" in format_comparison(comparison)


def _load(ttft_p50: float) -> dict[str, Any]:
    dist = {"count": 10, "p50": ttft_p50, "p90": ttft_p50 * 2, "p99": ttft_p50 * 3}
    return {
        "target": {"name": "x", "base_url": "http://x.invalid"},
        "profile": {"name": "chat-steady"},
        "metrics": {"ttft_ms": dist, "itl_ms": dist, "e2e_ms": dist},
        "throughput": {"requests_per_s": 4.5, "output_tokens_per_s": 100.0},
        "requests": {"error_ratio": 0.1, "by_error_class": {"http_503": 2}},
    }


def test_load_figures_side_by_side() -> None:
    comparison = build_comparison(
        [Column("a", load_summary=_load(200.0)), Column("b", load_summary=_load(250.0))]
    )
    load = comparison["load"]
    assert load["profile"] == "chat-steady"
    assert load["metrics"] == ["ttft_ms", "itl_ms", "tpot_ms", "e2e_ms"]
    assert [t["metrics"]["ttft_ms"]["p50"] for t in load["targets"]] == [200.0, 250.0]
    assert load["targets"][0]["metrics"]["tpot_ms"] == {"count": 0}  # absent: no samples
    assert comparison["rows"] == [] and comparison["differing"] == 0
    text = format_comparison(comparison, width=120)
    ttft = next(line for line in text.splitlines() if line.startswith("ttft_ms p50"))
    assert ttft.split()[2:] == ["200.00", "250.00"]
    assert "[1] errors: http_503 2" in text
