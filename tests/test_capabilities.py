"""The capability vocabulary: every name a suite or a shipped profile uses is documented."""

from __future__ import annotations

import re
from pathlib import Path

from gateprobe.capabilities import CAPABILITIES, describe_missing, is_known, render_markdown
from gateprobe.scenario import load_scenarios

ROOT = Path(__file__).resolve().parent.parent


def test_docs_capabilities_md_is_current() -> None:
    written = (ROOT / "docs" / "capabilities.md").read_text("utf-8")
    assert written == render_markdown(), (
        "docs/capabilities.md is stale: .venv/bin/python -m gateprobe.capabilities "
        "> docs/capabilities.md"
    )


def test_every_capability_a_suite_requires_is_known() -> None:
    used: set[str] = set()
    for path in sorted((ROOT / "suites").rglob("*.yaml")):
        for scenario in load_scenarios(path):
            for instance in scenario.instances():
                for name in scenario.capabilities:
                    used.add(_render(name, instance.params))
    unknown = sorted(n for n in used if not is_known(n))
    assert not unknown, f"suites require undocumented capabilities: {unknown}"
    assert "mock.faults" in used and "auth.keys" in used


def _render(name: str, params: dict[str, object]) -> str:
    from gateprobe.templating import render

    return str(render(name, params))


def test_every_listed_capability_is_documented_and_the_doc_lists_it() -> None:
    doc = render_markdown()
    for name in CAPABILITIES:
        assert f"| `{name}` |" in doc
    assert re.search(r"\| `insufficient_quota_status` \| `402` \|", doc)


def test_skip_reasons_say_what_the_profile_lacks() -> None:
    assert "does not authenticate" in describe_missing("auth.keys", "portkey")
    assert "does not accept bearer credentials on anthropic routes" in describe_missing(
        "auth.anthropic.bearer", "litellm"
    )
    assert describe_missing("openai.rerank", "x") == (
        "capability 'openai.rerank' not claimed by target 'x'"
    )
