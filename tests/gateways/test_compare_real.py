"""``gateprobe compare`` of a real gateway (LiteLLM proxy) against its upstream, straight.

One command runs the suites and a short load run against LiteLLM in front of the mock and
against the same mock addressed directly (fixtures/targets/upstream-mock.yaml); the matrix
shows what the gateway changes. LiteLLM's column must give the verdicts established by hand
(tests/gateways/expected/), and the upstream fails nothing.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from test_real_gateways import (  # noqa: F401  (fixtures)
    GATEPROBE,
    HOME,
    MASTER_KEY,
    PROFILES,
    Gateway,
    _env,
    expected_verdicts,
    litellm,
    mismatches,
    pytestmark,
    upstream,
)


def test_litellm_against_its_upstream(litellm: Gateway, upstream: str, tmp_path: Path) -> None:  # noqa: F811
    env = _env(
        LITELLM_URL=litellm.info["URL"],
        LITELLM_MASTER_KEY=MASTER_KEY,
        GATEPROBE_UPSTREAM_URL=upstream,
        GATEPROBE_UPSTREAM_KEY="sk-upstream-any",
    )
    done = subprocess.run(
        [
            *GATEPROBE, "compare",
            "--target", str(PROFILES / "litellm-1.106.2.yaml"),
            "--target", str(PROFILES / "upstream-mock.yaml"),
            "--profile", "chat-steady", "--duration", "3s", "--warmup", "1s", "--users", "2",
            "--report-dir", str(tmp_path),
        ],
        env=env, capture_output=True, text=True, timeout=900, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1, f"exit {done.returncode}:\n{done.stdout[-3000:]}{done.stderr}"
    (found,) = tmp_path.glob("*/compare.json")
    text = found.read_text("utf-8")
    assert MASTER_KEY not in text and MASTER_KEY not in done.stdout
    comparison = json.loads(text)
    gateway, direct = comparison["targets"]
    assert (gateway["label"], direct["label"]) == ("litellm-1.106.2", "upstream-mock")
    assert direct["totals"]["fail"] == 0 and gateway["totals"]["fail"] > 0
    summary = json.loads((Path(gateway["run_dir"]) / "summary.json").read_text("utf-8"))
    problems = mismatches(summary, expected_verdicts("litellm-1.106.2"))
    assert not problems, "\n".join(problems)
    rows = {row["name"]: row for row in comparison["rows"]}
    # LiteLLM's own finding (docs/gateways.md): its streamed usage is not the plain call's
    usage = rows["streaming.usage_equals_plain"]
    assert [c["verdict"] for c in usage["cells"]] == ["fail", "pass"] and usage["differs"]
    assert "streaming.usage_equals_plain" in done.stdout
    load = comparison["load"]
    for target in load["targets"]:
        assert target["metrics"]["ttft_ms"]["count"] > 0
        assert target["requests"]["error_ratio"] == 0
