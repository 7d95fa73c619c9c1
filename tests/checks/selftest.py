"""The machinery of the check self-tests: a case, the mock it breaks, and how it is run.

Every check can fail: each one is run against a mock that is broken in the way it catches.
Each ``Case`` is a tiny scenario run by ``gateprobe.runner.run_instance`` against the bundled
mock, through the mock's own target profile (fixtures/targets/mock.yaml). The mock is started
with a defect switch (gateprobe/mock/defects.py), or the scenario asks for a fault in the model
name (``--cut-after-3``, ``--ttft-600``), or the target's dialect names something the mock does
not do. The broken run must fail with the case's check and a message that says what is wrong;
the same mock, healed (reset to no defect), or the request without its fault, must pass.

Cases live in ``cases_<area>.py`` beside this module, each exporting ``CASES``; ``all_cases()``
gathers them, and test_self_tests.py runs them and fails when a registered check has none.
"""

from __future__ import annotations

import importlib
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from support import ADMIN, SECRETS

from gateprobe.provision import MOCK_TARGET, key_variables
from gateprobe.runner import Outcome, run_instance
from gateprobe.scenario import load_scenarios
from gateprobe.target import Target, load_target

FAULT = "@FAULT@"  # replaced by the case's fault directive in the broken run, "" in the clean one
UNKNOWN_KEY = "sk-gp-unknown-0123456789abcdef"
# Key kinds of the mock profile -> names of the default mock's keys (tests/support.py).
MOCK_KEY_NAMES = {"variant": "variant_pro", "rate_limited": "limited_rate"}


@dataclass(frozen=True)
class Case:
    id: str
    check: str  # the check that must fail
    scenario: str  # YAML; may hold FAULT
    message: str  # part of the failure message that says what is wrong
    defects: tuple[str, ...] = ()
    fault: str = ""  # a directive appended to the model name in the broken run
    dialect: dict[str, Any] = field(default_factory=dict)  # broken run: target dialect changes
    clean_scenario: str | None = None  # for a deliberately wrong expectation: the right one


STREAM = """\
id: selftest.stream
title: stream
steps:
  - request: {{protocol: {protocol}, operation: chat, stream: {kind}, model: "{model}@FAULT@"}}
    expect: {{status: 200, stream: true}}
"""
TTFT = """\
id: selftest.ttft
title: ttft
steps:
  - request: {{protocol: {protocol}, operation: chat, stream: true, model: "{model}@FAULT@"}}
    expect: {{status: 200, max_ttft_ms: 250}}
"""
UNKNOWN_KEY_CALL = """\
id: selftest.{name}
title: {name}
parametrize: {{protocol: [openai, anthropic, gemini]}}
steps:
  - request: {{protocol: "{{protocol}}", operation: chat, key: "literal:{key}"}}
    expect: {expect}
"""
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-4-5", "gemini": "gemini-2.5-flash"}


def unknown_key_scenario(name: str, expect: str) -> str:
    return UNKNOWN_KEY_CALL.format(name=name, key=UNKNOWN_KEY, expect=expect)


def mock_target(url: str) -> Target:
    """The mock's own profile, with the default mock's well-known keys in its variables."""
    env = {"GATEPROBE_MOCK_URL": url}
    for kind, variable in key_variables(MOCK_TARGET).items():
        if kind == "admin":
            env[variable] = ADMIN["x-gateprobe-admin"]
        else:
            env[variable] = SECRETS[MOCK_KEY_NAMES.get(kind, kind)]
    return load_target(MOCK_TARGET, env)


def run_all(tmp_path: Path, text: str, target: Target, client: httpx.Client) -> list[Outcome]:
    path = tmp_path / "selftest" / "case.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), "utf-8")
    return [
        run_instance(instance, target, client)
        for scenario in load_scenarios(path)
        for instance in scenario.instances()
    ]


def heal(client: httpx.Client, url: str) -> None:
    response = client.post(f"{url}/_gateprobe/reset", json={"defects": []}, headers=ADMIN)
    assert response.status_code == 200 and response.json()["defects"] == []


def all_cases() -> list[Case]:
    """Every case of every ``cases_*.py`` module in this directory, ids unique."""
    cases: list[Case] = []
    for path in sorted(Path(__file__).parent.glob("cases_*.py")):
        cases.extend(importlib.import_module(path.stem).CASES)
    ids = [case.id for case in cases]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert not duplicates, f"self-test case ids used twice: {duplicates}"
    return cases
