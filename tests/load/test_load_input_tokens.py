"""Input tokens, end to end: a short load run of every protocol's request, streamed and not,
against the bundled mock; the summary's input tokens are what the mock says it counted.

The mock is deterministic (a request's prompt tokens follow from its text) and logs each
request's ``prompt_tokens`` under the request id it answers with, which the records keep:
so every measured record is checked against the mock's own count, and the summary's sums
(per request and in ``throughput``) against the records.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from typing import Any

import pytest

from gateprobe.load.mock_process import MockProcess
from gateprobe.provision import MOCK_TARGET

# name: the profile entry (one user each)
REQUESTS = {
    "openai chat stream": "{protocol: openai, operation: chat, stream: true}",
    "openai chat": "{protocol: openai, operation: chat}",
    "openai responses stream": "{protocol: openai, operation: responses, stream: true}",
    "openai responses": "{protocol: openai, operation: responses}",
    "anthropic chat stream": "{protocol: anthropic, operation: chat, stream: true}",
    "anthropic chat": "{protocol: anthropic, operation: chat}",
    "gemini chat stream": "{protocol: gemini, operation: chat, stream: true}",
    "gemini chat array": "{protocol: gemini, operation: chat, stream: array}",
    "gemini chat": "{protocol: gemini, operation: chat}",
    "openai embeddings": "{protocol: openai, operation: embeddings}",
}


def _mock_usage(mock: MockProcess) -> dict[str, int]:
    request = urllib.request.Request(
        f"{mock.url}/_gateprobe/usage?limit=100000",
        headers={"x-gateprobe-admin": mock.admin_token},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        records = json.loads(answer.read())["records"]
    return {r["request_id"]: int(r["prompt_tokens"]) for r in records if "prompt_tokens" in r}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("input-tokens")
    profile = root / "every-protocol.yaml"
    entries = "".join(f"  - {{name: {name}, {spec[1:]}\n" for name, spec in REQUESTS.items())
    profile.write_text(f"name: every-protocol\nrequests:\n{entries}")
    with MockProcess(ttft_ms=20, itl_ms=5) as mock:
        result = subprocess.run(
            [sys.executable, "-m", "gateprobe.cli", "load", "--profile", str(profile),
             "--target", str(MOCK_TARGET), "--users", str(len(REQUESTS)), "--duration", "2",
             "--warmup", "0", "--no-plots", "--report-dir", str(root / "out")],
            env={**os.environ, **mock.env}, capture_output=True, text=True, timeout=120,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        usage = _mock_usage(mock)
    (out,) = [p for p in (root / "out").iterdir() if p.is_dir()]
    records = [json.loads(line) for line in (out / "requests.jsonl").read_text().splitlines()]
    return {
        "summary": json.loads((out / "summary.json").read_text()),
        "measured": [r for r in records if not r["warmup"] and not r.get("unfinished")],
        "usage": usage,
        "stdout": result.stdout,
    }


@pytest.mark.parametrize("name", list(REQUESTS))
def test_input_tokens_are_the_mocks_count(run: dict[str, Any], name: str) -> None:
    ok = [r for r in run["measured"] if r["name"] == name and r["ok"]]
    assert ok, name
    usage = run["usage"]
    for record in ok:
        assert record["request_id"] in usage, record
        assert record["input_tokens"] == usage[record["request_id"]] > 0, record
    by_request = run["summary"]["by_request"][name]
    assert by_request["input_tokens"] == sum(usage[r["request_id"]] for r in ok)


def test_the_throughput_sums_them(run: dict[str, Any]) -> None:
    throughput = run["summary"]["throughput"]
    usage = run["usage"]
    expected = sum(usage[r["request_id"]] for r in run["measured"] if r["ok"])
    assert throughput["input_tokens"] == expected > 0
    assert throughput["input_tokens_per_s"] == round(expected / throughput["window_s"], 3)
    assert throughput["peak_input_tokens_per_s"] > 0
    assert run["summary"]["metrics"]["input_tokens"]["count"] == run["summary"]["requests"]["ok"]
    assert f"{throughput['input_tokens_per_s']:.2f} input tok/s" in run["stdout"]
