"""Every check can fail: each one is run against a mock that is broken in the way it catches.

Each case is a tiny scenario run by ``gateprobe.runner.run_instance`` against the bundled mock,
through the mock's own target profile (fixtures/targets/mock.yaml). The mock is started with a
defect switch (gateprobe/mock/defects.py), or the scenario asks for a fault in the model name
(``--cut-after-3``, ``--ttft-600``), or the target's dialect names something the mock does not
do. The broken run must fail with the case's check and a message that says what is wrong; the
same mock, healed (reset to no defect), or the request without its fault, must pass.
``test_every_check_has_a_self_test`` fails when a check is added to the registry without a
case here.
"""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import ADMIN, DEFAULT, SECRETS

from gateprobe.checks import REGISTRY
from gateprobe.mock import DEFECTS, MockServer
from gateprobe.provision import MOCK_TARGET, key_variables
from gateprobe.runner import Outcome, run_instance
from gateprobe.scenario import load_scenarios
from gateprobe.target import Deviation, Target, load_target

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


def _unknown_key(name: str, expect: str) -> str:
    return UNKNOWN_KEY_CALL.format(name=name, key=UNKNOWN_KEY, expect=expect)


CASES: list[Case] = [
    # -- stream -------------------------------------------------------------------------------
    Case(
        "missing-done",
        "stream",
        STREAM.format(protocol="openai", kind="true", model="gpt-4o-mini"),
        "expected exactly one data: [DONE], got 0",
        defects=("missing-done",),
    ),
    Case(
        "anthropic-events-out-of-order",
        "stream",
        STREAM.format(protocol="anthropic", kind="true", model="claude-sonnet-4-5"),
        "a delta outside any content block",
        defects=("anthropic-events-out-of-order",),
    ),
    *(
        Case(
            f"wrong-stream-content-type-{protocol}",
            "stream",
            STREAM.format(protocol=protocol, kind="true", model=model),
            "expected Content-Type text/event-stream, got application/json",
            defects=("wrong-stream-content-type",),
        )
        for protocol, model in MODELS.items()
    ),
    Case(
        "cut-after-3-openai",
        "stream",
        STREAM.format(protocol="openai", kind="true", model="gpt-4o-mini"),
        "expected exactly one data: [DONE], got 0",
        fault="--cut-after-3",
    ),
    Case(
        "cut-after-3-anthropic",
        "stream",
        STREAM.format(protocol="anthropic", kind="true", model="claude-sonnet-4-5"),
        "the last event is not message_stop",
        fault="--cut-after-3",
    ),
    Case(
        "cut-after-3-gemini-sse",
        "stream",
        STREAM.format(protocol="gemini", kind="true", model="gemini-2.5-flash"),
        "no candidate carries a finishReason: the stream was cut short",
        fault="--cut-after-3",
    ),
    Case(
        "cut-after-3-gemini-array",
        "stream",
        STREAM.format(protocol="gemini", kind="array", model="gemini-2.5-flash"),
        "the array was not closed",
        fault="--cut-after-3",
    ),
    # -- max_ttft_ms --------------------------------------------------------------------------
    *(
        Case(
            f"ttft-600-{protocol}",
            "max_ttft_ms",
            TTFT.format(protocol=protocol, model=model),
            "limit 250 ms",
            fault="--ttft-600",
        )
        for protocol, model in MODELS.items()
    ),
    # -- error_envelope -----------------------------------------------------------------------
    Case(
        "html-error-page",
        "error_envelope",
        _unknown_key("html", "{error_envelope: true}"),
        "the error is text/html, not JSON",
        defects=("html-error-page",),
    ),
    Case(
        "openai-envelope-on-messages",
        "error_envelope",
        _unknown_key("envelope", "{error_envelope: true}").replace(
            "[openai, anthropic, gemini]", "[anthropic]"
        ),
        "not a valid anthropic error envelope: $.type: expected 'error', got None",
        defects=("openai-envelope-on-messages",),
    ),
    Case(
        "error-status-200",
        "error_envelope",
        _unknown_key("status200", "{error_envelope: true}"),
        "an error came with HTTP status 200",
        defects=("error-status-200",),
    ),
    # -- status -------------------------------------------------------------------------------
    Case(
        "auth-bypass",
        "status",
        _unknown_key("bypass", '{status: "{target.dialect.auth_error_status}"}'),
        "expected HTTP status 401, got 200",
        defects=("auth-bypass",),
    ),
    # -- no_secret_echo -----------------------------------------------------------------------
    Case(
        "key-echoed-in-error",
        "no_secret_echo",
        _unknown_key("echo", "{no_secret_echo: true}"),
        "the response echoes the API key in its body",
        defects=("key-echoed-in-error",),
    ),
    # -- headers ------------------------------------------------------------------------------
    Case(
        "429-without-retry-after",
        "headers",
        """\
        id: selftest.retry_after
        title: an upstream 429 tells when to retry
        steps:
          - request: {protocol: openai, operation: chat, model: gpt-4o-mini--error-429}
            expect: {status: 429, headers: {retry-after: true}}
        """,
        "header retry-after: expected present, got None",
        defects=("429-without-retry-after",),
    ),
    # -- request_id ---------------------------------------------------------------------------
    Case(
        "request-id-header-not-sent",
        "request_id",
        """\
        id: selftest.request_id
        title: the dialect's request-id header comes back
        steps:
          - request: {protocol: openai, operation: models}
            expect: {status: 200, request_id: true}
        """,
        "no x-oneapi-request-id header in the response",
        dialect={"request_id_header": "x-oneapi-request-id"},
    ),
    # -- json_schema --------------------------------------------------------------------------
    Case(
        "schema-openai-envelope-on-messages",
        "json_schema",
        """\
        id: selftest.schema_error
        title: a Claude error validates as a Claude error
        steps:
          - request: {protocol: anthropic, operation: chat, key: disabled}
            expect: {json_schema: anthropic/error}
        """,
        "does not match anthropic/error",
        defects=("openai-envelope-on-messages",),
    ),
    Case(
        "schema-html-error-page",
        "json_schema",
        """\
        id: selftest.schema_html
        title: an OpenAI error validates as an OpenAI error
        steps:
          - request: {protocol: openai, operation: chat, key: disabled}
            expect: {json_schema: openai/error}
        """,
        "the response body is not JSON",
        defects=("html-error-page",),
    ),
    Case(
        "schema-wrong-ref",
        "json_schema",
        """\
        id: selftest.schema_ref
        title: the Claude model list read as an OpenAI one
        steps:
          - request: {protocol: anthropic, operation: models}
            expect: {status: 200, json_schema: openai/models.list}
        """,
        "does not match openai/models.list",
        clean_scenario="""\
        id: selftest.schema_ref
        title: the Claude model list read as a Claude one
        steps:
          - request: {protocol: anthropic, operation: models}
            expect: {status: 200, json_schema: anthropic/models.list}
        """,
    ),
    # -- json ---------------------------------------------------------------------------------
    Case(
        "gemini-no-usage-metadata",
        "json",
        """\
        id: selftest.json_usage
        title: a Gemini answer reports its usage
        steps:
          - request: {protocol: gemini, operation: chat}
            expect: {status: 200, json: {usageMetadata: {}, candidates: [{finishReason: STOP}]}}
        """,
        "$.usageMetadata: expected {}, got '<missing>'",
        defects=("gemini-no-usage-metadata",),
    ),
    # -- content_type -------------------------------------------------------------------------
    Case(
        "content-type-html-error-page",
        "content_type",
        _unknown_key("ctype", "{status: 401, content_type: application/json}"),
        "expected Content-Type application/json, got text/html",
        defects=("html-error-page",),
    ),
]
COVERED = {case.check for case in CASES}


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


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0) as client:
        yield client


def test_every_check_has_a_self_test() -> None:
    assert set(REGISTRY) == COVERED, (
        f"checks without a self-test: {sorted(set(REGISTRY) - COVERED)}"
    )


def test_the_cases_name_real_defects_and_checks() -> None:
    for case in CASES:
        assert case.check in REGISTRY, case.id
        assert set(case.defects) <= set(DEFECTS), case.id
        assert case.defects or case.fault or case.dialect or case.clean_scenario, case.id
        assert FAULT in case.scenario or not case.fault, case.id


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_the_check_fails_on_the_broken_mock_and_passes_on_the_clean_one(
    case: Case,
    mock_factory: Callable[..., MockServer],
    http: httpx.Client,
    tmp_path: Path,
) -> None:
    server = mock_factory(DEFAULT, defects=frozenset(case.defects))
    clean_target = mock_target(server.url)
    broken_target = dataclasses.replace(
        clean_target, dialect=dataclasses.replace(clean_target.dialect, **case.dialect)
    )

    broken = run_all(tmp_path, case.scenario.replace(FAULT, case.fault), broken_target, http)
    assert broken
    for outcome in broken:
        assert outcome.verdict == "fail", outcome.reason
        assert outcome.reason.startswith(f"{case.check}: "), outcome.reason
        failure = outcome.failures[0]
        assert failure.check == case.check
        assert case.message in failure.message, failure.message

    heal(http, server.url)
    clean = run_all(
        tmp_path, (case.clean_scenario or case.scenario).replace(FAULT, ""), clean_target, http
    )
    for outcome in clean:
        assert outcome.verdict == "pass", outcome.reason
        assert outcome.failures == []
        assert case.check in {name for step in outcome.steps for name in step.checks_run}


def test_a_declared_deviation_turns_the_failure_into_a_deviation(
    mock_factory: Callable[..., MockServer], http: httpx.Client, tmp_path: Path
) -> None:
    server = mock_factory(DEFAULT, defects=frozenset({"missing-done"}))
    declared = Deviation("selftest.*", "stream", "this gateway never sends [DONE]")
    target = dataclasses.replace(mock_target(server.url), deviations=(declared,))
    text = STREAM.format(protocol="openai", kind="true", model="gpt-4o-mini").replace(FAULT, "")
    (outcome,) = run_all(tmp_path, text, target, http)
    assert outcome.verdict == "deviation"
    assert outcome.failures == []
    ((failure, deviation),) = outcome.deviations
    assert failure.check == "stream" and deviation is declared
    assert outcome.reason.startswith("declared deviation (this gateway never sends [DONE]): stream")
    # A deviation for another check does not hide this failure.
    other = dataclasses.replace(target, deviations=(Deviation("selftest.*", "status", "x"),))
    (outcome,) = run_all(tmp_path, text, other, http)
    assert outcome.verdict == "fail" and outcome.reason.startswith("stream: ")
