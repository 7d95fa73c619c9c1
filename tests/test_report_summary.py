"""summary.json's fields for a report built from it alone, and the curl reproductions.

One real ``gateprobe run`` (a subprocess) of a small suite against a bundled mock this test
started (so the test knows its keys and the mock still answers afterwards) that quotes the
keys it is sent back in its errors (``key-echoed-in-error``). Then: each failure carries
expected and actual, each failed step its masked exchange, each step its curl command;
``failure_groups`` put every failed scenario in one group; every curl command, run for real
with the profile's variables set, gets the status gateprobe got; no key is in any of it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import clean_env

from gateprobe.mock import MockConfig
from gateprobe.provision import MOCK_TARGET, start_bundled_mock

GATEPROBE = Path(sys.executable).parent / "gateprobe"
LITERAL = "sk-gp-literal-0123456789abcdef"
OWN = "sk-gp-own-header-0123456789"
SUITE = f"""\
id: repro.wrong_status
title: A chat call whose status the scenario gets wrong
steps:
  - name: call with the valid key
    request: {{protocol: openai, operation: chat}}
    expect: {{status: 418}}
---
id: repro.other_wrong_status
title: Another, on the Claude route
steps:
  - name: call Claude
    request: {{protocol: anthropic, operation: chat}}
    expect: {{status: 419}}
---
id: repro.gemini_stream_query
title: A Gemini stream with the key in ?key=
steps:
  - name: stream with ?key=
    request: {{protocol: gemini, operation: chat, stream: true, auth: query}}
    expect: {{status: 418}}
---
id: repro.literal
title: A literal key, quoted back by the mock
steps:
  - name: call with the literal key
    request: {{protocol: openai, operation: chat, key: "literal:{LITERAL}"}}
    expect: {{no_secret_echo: true, status: 200}}
---
id: repro.own_header
title: A key in a header the scenario sets
steps:
  - name: call with the header
    request:
      protocol: anthropic
      operation: chat
      key: null
      headers: {{x-api-key: "{OWN}"}}
    expect: {{status: 200}}
---
id: repro.padded
title: A body padded past the inline limit
steps:
  - name: a big body
    request: {{protocol: openai, operation: chat, pad_body_bytes: 100000}}
    expect: {{status: 418}}
---
id: repro.malformed
title: A body that is not JSON, with a control character
steps:
  - name: a bad body
    request:
      protocol: openai
      method: POST
      path: "{{prefix}}/chat/completions"
      raw_body: "{{bad\\u0001 it's"
    expect: {{status: 418}}
---
id: repro.passes
title: Two steps, both fine
steps:
  - name: list the models
    request: {{protocol: openai, operation: models}}
    expect: {{status: 200}}
  - name: and again
    request: {{protocol: openai, operation: models}}
    expect: {{status: 200}}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """(summary, summary.json's text, the mock's env, the curl statuses), the curl commands
    run while the mock still answers."""
    cwd = tmp_path_factory.mktemp("repro")
    suites = cwd / "suites"
    (suites / "repro").mkdir(parents=True)
    (suites / "repro" / "repro.yaml").write_text(SUITE, "utf-8")
    config = MockConfig.default().replace(defects=frozenset({"key-echoed-in-error"}))
    server, env = start_bundled_mock(config=config)
    try:
        result = subprocess.run(
            [str(GATEPROBE), "run", "--target", str(MOCK_TARGET), "--suites", str(suites)],
            cwd=cwd,
            env=clean_env(**env),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 1, result.stdout + result.stderr
        path = next(cwd.glob("reports/*/summary.json"))
        text = path.read_text("utf-8")
        summary = json.loads(text)
        statuses: dict[tuple[str, int], tuple[int | None, str]] = {}
        own = {"repro.own_header": OWN}
        for scenario in summary["scenarios"]:
            for index, step in enumerate(scenario["steps"]):
                assert step["curl"], (scenario["name"], step)
                shell = subprocess.run(
                    ["bash", "-c", step["curl"] + " -o /dev/null -w '%{http_code}'"],
                    # what the comment above the command says to set
                    env=clean_env(**env, GATEPROBE_LITERAL_KEY=own.get(scenario["id"], LITERAL)),
                    capture_output=True,
                    text=True,
                    timeout=30,
                )
                statuses[(scenario["name"], index)] = (step["status"], shell.stdout + shell.stderr)
    finally:
        server.stop()
    secrets = {k: v for k, v in env.items() if k != "GATEPROBE_MOCK_URL"}
    return summary, text, secrets, statuses


def _by_id(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in summary["scenarios"]}


def test_each_curl_command_gets_the_status_gateprobe_got(run: Any) -> None:
    _, _, _, statuses = run
    assert len(statuses) == 9  # every step of every scenario
    for (name, index), (status, curl_said) in statuses.items():
        assert curl_said == str(status), (name, index, curl_said)


def test_curl_commands_name_the_variables_never_the_keys(run: Any) -> None:
    summary, _, secrets, _ = run
    scenarios = _by_id(summary)
    commands = {i: s["steps"][0]["curl"] for i, s in scenarios.items()}
    for name, command in commands.items():
        for variable, secret in [*secrets.items(), ("literal", LITERAL), ("own", OWN)]:
            assert secret not in command, (name, variable)
    assert "'authorization: Bearer '\"$GATEPROBE_MOCK_KEY_VALID\"" in commands["repro.wrong_status"]
    gemini = commands["repro.gemini_stream_query"]
    assert " -N " in gemini and '?alt=sse&key=\'"$GATEPROBE_MOCK_KEY_VALID"' in gemini
    assert "--compressed" in gemini
    literal = commands["repro.literal"]
    assert literal.startswith("# GATEPROBE_LITERAL_KEY: the literal: key of the step")
    assert '"$GATEPROBE_LITERAL_KEY"' in literal
    assert "'x-api-key: '\"$GATEPROBE_LITERAL_KEY\"" in commands["repro.own_header"]
    # a big body is piped, its padding generated; a binary one written by printf escapes
    assert "head -c 100000 /dev/zero | tr '\\0' x" in commands["repro.padded"]
    assert commands["repro.padded"].rstrip().endswith("--data-binary @-")
    assert commands["repro.malformed"].startswith("printf '{bad\\001 it'\"'\"'s' |")


def test_failures_carry_expected_actual_and_the_failed_steps_their_exchange(run: Any) -> None:
    summary, _, _, _ = run
    scenarios = _by_id(summary)
    wrong = scenarios["repro.wrong_status"]["steps"][0]
    assert wrong["failures"] == [
        {
            "check": "status",
            "message": "expected HTTP status 418, got 200",
            "where": "status",
            "expected": "418",
            "actual": "200",
        }
    ]
    exchange = wrong["exchange"]
    assert exchange["status"] == 200 and exchange["request"]["method"] == "POST"
    assert exchange["request"]["headers"]["authorization"].startswith("Bearer sk-…")
    # a stream's events are there, capped at 200
    stream = scenarios["repro.gemini_stream_query"]["steps"][0]["exchange"]
    assert stream["events"] and len(stream["events"]) <= 200
    # the echoed literal key is masked in the exchange's body
    echoed = scenarios["repro.literal"]["steps"][0]["exchange"]["body"]
    assert "Invalid API key: sk-…cdef" in echoed
    # passing steps: a curl, no exchange; the fields every reader had are unchanged
    passing = scenarios["repro.passes"]["steps"]
    assert [s["exchange"] for s in passing] == [None, None]
    assert set(passing[0]) == {
        "name", "status", "elapsed_ms", "ttfb_ms", "checks", "stream", "warnings",
        "failures", "deviations", "curl", "exchange",
    }  # fmt: skip


def test_failure_groups_hold_each_failed_scenario_once_largest_first(run: Any) -> None:
    summary, _, _, _ = run
    groups = summary["failure_groups"]
    failed = sorted(s["name"] for s in summary["scenarios"] if s["verdict"] == "fail")
    assert sorted(n for g in groups for n in g["scenarios"]) == failed
    assert sum(g["count"] for g in groups) == summary["totals"]["fail"] == 7
    assert [g["count"] for g in groups] == sorted((g["count"] for g in groups), reverse=True)
    # 418 and 419 on different routes: one cause, the concrete values normalised
    status = groups[0]
    assert status["cause"] == "status: expected HTTP status <n>, got <n>"
    assert status["check"] == "status" and status["count"] == 6
    assert "repro.other_wrong_status" in status["scenarios"]


def test_no_key_is_anywhere_in_summary_json(run: Any) -> None:
    _, text, secrets, _ = run
    for variable, secret in [*secrets.items(), ("literal", LITERAL), ("own", OWN)]:
        assert secret not in text, variable
        assert secret[:-4] not in text, variable  # nor the most of one
