"""The authentication, error, model and capability suites beyond the default mock run.

``pytest suites/...`` runs them against the mock as shipped; here they meet the other path
convention (Claude under /claude/v1, Gemini under /gemini/v1beta, as new-api's and LiteLLM's
alternative routes) and a target that claims less, whose scenarios are skipped with the
reason, never failed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from support import ADMIN, SECRETS

from gateprobe.mock import MockServer
from gateprobe.provision import MOCK_TARGET, key_variables
from gateprobe.runner import Outcome, run_instance
from gateprobe.scenario import Instance, load_scenarios, scenario_files
from gateprobe.target import Target, load_target

SUITES = Path(__file__).resolve().parent.parent / "suites"
AREAS = ("auth", "errors", "models", "capabilities")
KEY_NAMES = {"variant": "variant_pro", "rate_limited": "limited_rate"}


def instances(*areas: str) -> list[Instance]:
    return [
        instance
        for area in areas
        for path in scenario_files(SUITES / area)
        for scenario in load_scenarios(path, SUITES)
        for instance in scenario.instances()
    ]


def target_for(url: str) -> Target:
    """The mock's own profile with the default mock's keys."""
    env = {"GATEPROBE_MOCK_URL": url}
    for kind, variable in key_variables(MOCK_TARGET).items():
        env[variable] = (
            ADMIN["x-gateprobe-admin"] if kind == "admin" else SECRETS[KEY_NAMES.get(kind, kind)]
        )
    return load_target(MOCK_TARGET, env)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0) as client:
        yield client


def run(items: list[Instance], target: Target, http: httpx.Client) -> dict[str, Outcome]:
    return {item.name: run_instance(item, target, http) for item in items}


def test_the_suites_pass_on_the_prefixed_path_convention(
    mock_factory: Callable[..., MockServer], http: httpx.Client
) -> None:
    server = mock_factory(path_style="prefixed")
    target = dataclasses.replace(
        target_for(server.url),
        paths={"openai": "/v1", "anthropic": "/claude/v1", "gemini": "/gemini/v1beta"},
    )
    outcomes = run(instances("auth", "models"), target, http)
    failed = {name: o.reason for name, o in outcomes.items() if o.verdict != "pass"}
    assert failed == {}
    # the Claude and Gemini calls really went to the prefixed routes
    sent = [r.request.url for o in outcomes.values() for r in o.steps if r.request is not None]
    assert any(url.startswith("/claude/v1/messages") for url in sent)
    assert any(url.startswith("/gemini/v1beta/models/") for url in sent)


def test_unclaimed_capabilities_and_missing_keys_are_skipped_with_the_reason(
    mock_factory: Callable[..., MockServer], http: httpx.Client
) -> None:
    server = mock_factory()
    full = target_for(server.url)
    partial = dataclasses.replace(
        full,
        capabilities=frozenset({"openai.chat", "openai.models"}),
        keys={"valid": full.keys["valid"]},
    )
    outcomes = run(instances(*AREAS), partial, http)
    verdicts = {o.verdict for o in outcomes.values()}
    assert verdicts == {"pass", "skip"}
    skipped = {name: o.reason for name, o in outcomes.items() if o.verdict == "skip"}
    assert skipped["capabilities.reasoning[anthropic-thinking]"] == (
        "capability 'anthropic.chat.thinking' not claimed by target 'bundled-mock'"
    )
    assert skipped["auth.rejected_credentials[openai-disabled]"] == (
        "key kind 'disabled' not provided by target 'bundled-mock'"
    )
    assert outcomes["capabilities.chat[openai]"].verdict == "pass"
    assert outcomes["auth.rejected_credentials[openai-unknown]"].verdict == "pass"
    for outcome in outcomes.values():
        if outcome.verdict == "skip":
            assert outcome.steps == []  # nothing was sent


def test_a_parameter_that_says_no_key_needs_no_key_kind(tmp_path: Path) -> None:
    from gateprobe.runner import skip_reason

    path = tmp_path / "suites" / "auth" / "nokey.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(
        """\
id: auth.no_key_parameter
title: a parametrized credential that is no key at all
parametrize:
  credential:
    - {id: none, key: null}
    - {id: disabled, key: disabled}
steps:
  - request: {protocol: openai, operation: chat, key: "{credential.key}"}
    expect: {status: 401}
""",
        "utf-8",
    )
    (scenario,) = load_scenarios(path, tmp_path / "suites")
    target = Target("keyless", "http://127.0.0.1:9", keys={"valid": "sk-gp-x"})
    reasons = {i.name: skip_reason(i, target) for i in scenario.instances()}
    assert reasons == {
        "auth.no_key_parameter[none]": None,
        "auth.no_key_parameter[disabled]": "key kind 'disabled' not provided by target 'keyless'",
    }


def test_a_step_whose_model_entry_the_target_lacks_is_skipped(
    mock_factory: Callable[..., MockServer], http: httpx.Client
) -> None:
    server = mock_factory()
    full = target_for(server.url)
    models = {k: v for k, v in full.models.items() if k != "restricted_denied"}
    target = dataclasses.replace(full, models=models)
    outcomes = run(instances("auth"), target, http)
    reason = outcomes["auth.model_restriction[anthropic]"].reason
    assert outcomes["auth.model_restriction[anthropic]"].verdict == "skip"
    assert reason == (
        "no anthropic model 'restricted_denied' in the models of target 'bundled-mock'"
    )
    assert outcomes["auth.valid_key_accepted[anthropic]"].verdict == "pass"
