"""The three HTML reports opened in a real headless Chromium (Playwright, the system's
/usr/bin/chromium: never a downloaded browser): no console error or page error, no request
for anything outside the file itself, the numbers in the DOM are the JSON's, and a full-page
screenshot of each is kept under test-artifacts/ (or $GATEPROBE_ARTIFACTS) for people to look
at. Skipped without Chromium or Playwright, unless GATEPROBE_REQUIRE_BROWSER=1 (.ci/browser),
where a missing browser fails."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from html_support import Load, Run, load_json

from gateprobe.report.html import write_compare_report, write_load_report, write_run_report
from gateprobe.report.html.render import fmt_number

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]
VERDICTS = ("pass", "fail", "skip", "deviation")


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install -e '.[dev]')"
    if not CHROMIUM.is_file():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or bash .ci/browser)"
    return None


def _skip_or_fail(missing: str | None, env: Mapping[str, str]) -> None:
    """Nothing without a browser: a skip that says why, or a failure where one is required."""
    if missing is None:
        return
    if env.get("GATEPROBE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"GATEPROBE_REQUIRE_BROWSER=1 but {missing}")
    pytest.skip(missing)


def artifacts() -> Path:
    directory = Path(os.environ.get("GATEPROBE_ARTIFACTS") or ROOT / "test-artifacts")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _skip_or_fail(_missing(), os.environ)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Opened:
    page: Any
    errors: list[str] = field(default_factory=list)  # console errors and page errors
    requests: list[str] = field(default_factory=list)  # every URL the page asked for

    def text(self, selector: str) -> str:
        return str(self.page.locator(selector).inner_text()).strip()

    def assert_clean(self, path: Path) -> None:
        assert self.errors == []
        assert self.requests == [path.as_uri()]  # the file itself, nothing else


@pytest.fixture
def open_page(browser: Any) -> Iterator[Any]:
    contexts: list[Any] = []

    def open_(path: Path) -> Opened:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(context)
        page = context.new_page()
        opened = Opened(page)
        page.on(
            "console",
            lambda m: (
                opened.errors.append(f"console {m.type}: {m.text}")
                if m.type in ("error", "assert")
                else None
            ),
        )
        page.on("pageerror", lambda e: opened.errors.append(f"page error: {e}"))
        page.on("request", lambda r: opened.requests.append(r.url))
        page.goto(path.as_uri(), wait_until="load")
        return opened

    yield open_
    for context in contexts:
        context.close()


def _screenshot(opened: Opened, name: str) -> Path:
    path = artifacts() / name
    opened.page.screenshot(path=str(path), full_page=True)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return path


def test_the_run_report_in_chromium(open_page: Any, failing_run: Run) -> None:
    summary = load_json(failing_run.directory / "summary.json")
    path = write_run_report(failing_run.directory)
    opened = open_page(path)
    for verdict in VERDICTS:
        assert opened.text(f'[data-total="{verdict}"]') == str(summary["totals"][verdict])
    for row in summary["areas"]:
        for verdict in VERDICTS:
            cell = f'[data-area="{row["area"]}"][data-verdict="{verdict}"]'
            assert opened.text(cell) == str(row[verdict])
    failed = [s for s in summary["scenarios"] if s["verdict"] == "fail"]
    assert opened.page.locator("article.failure").count() == len(failed)
    first = failed[0]["steps"][0]["failures"][0]
    assert opened.page.get_by_text(first["message"]).first.count() == 1
    # the passed scenarios are folded: a click shows them
    passed = next(s for s in summary["scenarios"] if s["verdict"] == "pass")
    row = opened.page.locator(f'[data-list="pass"] tr[data-scenario="{passed["name"]}"]')
    assert not row.is_visible()
    opened.page.locator('[data-list="pass"] > summary').click()
    assert row.is_visible()
    # the page fits its width: no horizontal scrolling
    width = opened.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1280
    _screenshot(opened, "run-report.png")
    opened.assert_clean(path)


def test_the_load_report_in_chromium(open_page: Any, load_run: Load) -> None:
    summary = load_json(load_run.directory / "summary.json")
    path = write_load_report(load_run.directory)
    opened = open_page(path)
    for key in ("measured", "ok", "failed"):
        assert opened.text(f'[data-requests="{key}"]') == str(summary["requests"][key])
    shown = opened.text('[data-throughput="requests_per_s"]')
    assert shown == fmt_number(summary["throughput"]["requests_per_s"])
    for name in ("ttft_ms", "itl_ms", "e2e_ms"):
        stats = summary["metrics"][name]
        assert opened.text(f'[data-metric-stat="{name}:count"]') == str(stats["count"])
        assert float(opened.text(f'[data-metric-stat="{name}:p99"]')) == round(stats["p99"], 2)
    plots = opened.page.locator(".plot svg")
    assert plots.count() == 4
    for index in range(4):  # each drawn at a real size
        box = plots.nth(index).bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 150
    assert opened.page.evaluate("document.documentElement.scrollWidth") <= 1280
    _screenshot(opened, "load-report.png")
    opened.assert_clean(path)


def test_the_compare_report_in_chromium(open_page: Any, compare_dir: Path) -> None:
    comparison = load_json(compare_dir / "compare.json")
    path = write_compare_report(compare_dir)
    opened = open_page(path)
    for target in comparison["targets"]:
        for verdict in VERDICTS:
            cell = f'[data-target-total="{target["label"]}|{verdict}"]'
            assert opened.text(cell) == str(target["totals"][verdict])
    for row in comparison["areas"]:
        for index, counts in enumerate(row["counts"]):
            for verdict in VERDICTS:
                cell = f'[data-area-count="{row["area"]}|{index}|{verdict}"]'
                assert opened.text(cell) == str(counts[verdict])
    differing = opened.page.locator("tr.differs")
    assert differing.count() == comparison["differing"] > 0
    # highlighted: the differing rows have a background of their own
    colours = opened.page.evaluate(
        "[...document.querySelectorAll('table.matrix tbody tr')].slice(0, 1)"
        ".map(r => getComputedStyle(r).backgroundColor)"
    )
    assert colours and colours[0] not in ("rgba(0, 0, 0, 0)", "transparent")
    same = [r for r in comparison["rows"] if not r["differs"]]
    assert opened.page.locator('[data-list="same"] tr[data-row]').count() == len(same)
    for index, entry in enumerate(comparison["load"]["targets"]):
        shown = opened.text(f'[data-load-metric="ttft_ms:p50|{index}"]')
        assert shown == fmt_number(entry["metrics"]["ttft_ms"]["p50"])
    assert opened.page.locator(".plot svg").count() == 4
    assert opened.page.evaluate("document.documentElement.scrollWidth") <= 1280
    _screenshot(opened, "compare-report.png")
    opened.assert_clean(path)


def test_a_missing_browser_skips_unless_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(f"{__name__}.CHROMIUM", Path("/nonexistent/chromium"))
    missing = _missing()
    assert missing is not None and ("/nonexistent/chromium" in missing or "Playwright" in missing)
    with pytest.raises(pytest.skip.Exception, match=r"nonexistent|Playwright"):
        _skip_or_fail(missing, {})
    with pytest.raises(pytest.fail.Exception, match="GATEPROBE_REQUIRE_BROWSER=1 but"):
        _skip_or_fail(missing, {"GATEPROBE_REQUIRE_BROWSER": "1"})
    _skip_or_fail(None, {"GATEPROBE_REQUIRE_BROWSER": "1"})  # a browser there: nothing
