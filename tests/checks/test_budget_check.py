"""The ``budget_enforced`` check on scripted answers, in the engine, and its dialect field.

The self-tests (cases_quota.py) prove it fails on the mock broken three ways; these cover what
the mock never does: LiteLLM's post-paid admission and its refusal body, a gateway that lets a
call through after refusing one, a transport failure, and a budget spent before the run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from selftest import mock_target, run_all
from support import ADMIN

from gateprobe.checks import REGISTRY, CheckContext
from gateprobe.errors import CheckFailed
from gateprobe.http import Exchange, RequestRecord
from gateprobe.mock import MockServer
from gateprobe.request import build_request
from gateprobe.runner import skip_reason
from gateprobe.scenario import load_scenarios
from gateprobe.target import Dialect, Target, load_target

ROOT = Path(__file__).resolve().parents[2]
TARGET = Target(
    "litellm-like",
    "http://127.0.0.1:4000",
    keys={"valid": "sk-master-1234"},
    models={"budget": "budget-model"},
)
# What LiteLLM 1.106.2 answered once the deployment's max_budget was crossed.
LITELLM_REFUSAL = {
    "error": {
        "message": "No deployments available - crossed budget: Exceeded budget for deployment "
        "model_name: budget-model",
        "type": "internal_server_error",
        "param": None,
        "code": "429",
    }
}
OK = {"id": "chatcmpl-1", "choices": [{"message": {"role": "assistant", "content": "hi"}}]}
MODEL_BUDGET = """\
id: selftest.model_budget
title: a model's own budget
steps:
  - request: {protocol: openai, operation: chat, model_of: budget}
    expect: {budget_enforced: {max_calls: 12}}
"""


def answer(
    status: int | None, body: Any = None, content_type: str = "application/json"
) -> Exchange:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Exchange(
        RequestRecord("POST", "/v1/chat/completions", {}, None),
        status=status,
        headers={"content-type": content_type},
        body=raw if status is not None else b"",
        error=None if status is not None else "connection reset",
    )


class Script:
    """The answers of a scripted gateway, in order, and the specs it was sent."""

    def __init__(self, answers: list[Exchange]) -> None:
        self.answers = answers
        self.sent: list[Mapping[str, Any]] = []

    def __call__(self, spec: Mapping[str, Any]) -> Exchange:
        self.sent.append(spec)
        return self.answers[len(self.sent) - 1]


def run(answers: list[Exchange], argument: Any = None, target: Target = TARGET) -> Script:
    """The check with the first answer as the step's and the rest sent by ``ctx.call``."""
    built = build_request({"protocol": "openai", "operation": "chat", "model_of": "budget"}, target)
    script = Script(answers[1:])
    ctx = CheckContext(
        answers[0],
        target,
        "unit.test",
        "openai",
        call=script,
        before={"budget_enforced": built},
    )
    REGISTRY["budget_enforced"].fn(ctx, {"max_calls": 12} if argument is None else argument)
    return script


def failure(answers: list[Exchange], argument: Any = None, target: Target = TARGET) -> str:
    with pytest.raises(CheckFailed) as caught:
        run(answers, argument, target)
    assert caught.value.check == "budget_enforced"
    return caught.value.message


# -- scripted answers -----------------------------------------------------------------------


def test_litellm_post_paid_admission_passes() -> None:
    # Calls 1-4 admitted (the spend reaches 0.052 of 0.05), then refused for good.
    script = run([answer(200, OK)] * 4 + [answer(429, LITELLM_REFUSAL)] * 3)
    assert len(script.sent) == 6  # 3 more admitted, the refusal, two after it
    first = script.sent[0]
    assert first["path"] == "/v1/chat/completions" and first["key"] is None
    assert first["headers"]["authorization"] == "Bearer sk-master-1234"
    assert first["body"]["model"] == "budget-model"
    assert all(spec == first for spec in script.sent)  # the same request every time


def test_a_budget_spent_before_the_run_passes_if_it_stays_refused() -> None:
    script = run([answer(429, LITELLM_REFUSAL)] * 3)
    assert len(script.sent) == 2


def test_a_budget_that_lets_a_call_through_after_a_refusal_fails() -> None:
    answers = [answer(200, OK)] * 4 + [answer(429, LITELLM_REFUSAL), answer(200, OK)]
    message = failure(answers)
    assert message == (
        "the budget let a call through after refusing one: call 6 to budget-model answered "
        "HTTP 200 after call 5 was refused with HTTP 429"
    )
    later = [answer(429, LITELLM_REFUSAL)] * 2 + [answer(200, OK)]
    assert "call 3 to budget-model answered HTTP 200 after call 1" in failure(later)


def test_no_refusal_within_max_calls_fails_after_exactly_that_many_calls() -> None:
    answers = [answer(200, OK)] * 5
    with pytest.raises(CheckFailed) as caught:
        run(answers, {"max_calls": 5})
    assert caught.value.message == (
        "the model budget was never enforced: 5 calls to budget-model all answered 200"
    )
    assert caught.value.expected == "a refusal within 5 calls"


def test_a_refusal_with_another_status_names_it_and_what_it_said() -> None:
    unauthorized = {"error": {"message": "Authentication Error, Invalid API key provided."}}
    message = failure([answer(200, OK), answer(401, unauthorized)])
    assert message == (
        "call 2 to budget-model was refused with HTTP 401, not the target's model-budget "
        "status 429: Authentication Error, Invalid API key provided."
    )


def test_the_status_is_the_dialects() -> None:
    target = Target(
        TARGET.name,
        TARGET.base_url,
        keys=TARGET.keys,
        models=TARGET.models,
        dialect=Dialect(model_budget_status=422),
    )
    refused = {"error": {"message": "Budget has been exceeded!", "type": "budget_exceeded"}}
    run([answer(422, refused)] * 3, target=target)
    assert "not the target's model-budget status 422" in failure(
        [answer(429, refused)], None, target
    )


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"<html><body>Too many requests</body></html>", "text/html"),
        ({"detail": "over budget"}, "application/json"),
        ([1, 2], "application/json"),
    ],
)
def test_a_refusal_that_is_not_a_json_error_fails(body: Any, content_type: str) -> None:
    message = failure([answer(200, OK), answer(429, body, content_type)])
    assert message.startswith(
        f"the refusal of call 2 to budget-model is not a JSON error ({content_type})"
    )


def test_a_refused_call_without_an_answer_fails_as_such() -> None:
    message = failure([answer(200, OK), answer(None)])
    assert message == "call 2 to budget-model got no answer: connection reset"


@pytest.mark.parametrize("argument", [{"max_calls": 0}, {"max_calls": "12"}, 12, "yes"])
def test_a_bad_argument_is_reported(argument: Any) -> None:
    assert "expects {max_calls: N} with N a whole number >= 1" in failure(
        [answer(200, OK)], argument
    )


def test_true_means_the_default_and_false_turns_it_off() -> None:
    assert len(run([answer(200, OK)] * 3 + [answer(429, LITELLM_REFUSAL)] * 3, True).sent) == 5
    assert run([answer(200, OK)], False).sent == []


# -- in the engine, against the mock --------------------------------------------------------


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0) as client:
        yield client


def test_a_reused_mock_whose_budget_is_spent_passes_again(
    mock: MockServer, http: httpx.Client, tmp_path: Path
) -> None:
    target = mock_target(mock.url)
    for _ in range(2):  # the second run's first call is already refused
        (outcome,) = run_all(tmp_path, MODEL_BUDGET, target, http)
        assert outcome.verdict == "pass", outcome.reason
    state = http.get(f"{mock.url}/_gateprobe/state", headers=ADMIN).json()
    spent = state["model_budgets"]["gpt-4o-mini-budget"]
    assert 0 < spent["spent"] <= spent["budget"]


def test_the_scenario_skips_without_the_capability_or_the_model(
    mock_factory: Callable[..., MockServer],
) -> None:
    (scenario,) = load_scenarios(ROOT / "suites" / "quota" / "model_budget.yaml")
    (instance,) = scenario.instances()
    target = mock_target("http://127.0.0.1:9")
    assert skip_reason(instance, target) is None
    no_claim = Target(target.name, target.base_url, keys=target.keys, models=target.models)
    assert skip_reason(instance, no_claim) == (
        "capability 'quota.model_budget' not claimed by target 'bundled-mock'"
    )
    models = {k: v for k, v in target.models.items() if k != "budget"}
    no_model = Target(
        target.name,
        target.base_url,
        keys=target.keys,
        models=models,
        capabilities=target.capabilities,
    )
    assert skip_reason(instance, no_model) == (
        "no openai model 'budget' in the models of target 'bundled-mock'"
    )


# -- the dialect field ----------------------------------------------------------------------


def test_model_budget_status_is_read_from_the_profile_with_429_by_default(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("name: gw\nbase_url: http://127.0.0.1:4000\n", "utf-8")
    target = load_target(path, {})
    assert target.dialect.model_budget_status == 429
    assert target.template_view()["dialect"]["model_budget_status"] == 429
    path.write_text(path.read_text() + "dialect: {model_budget_status: 422}\n", "utf-8")
    target = load_target(path, {})
    assert target.dialect.model_budget_status == 422
    assert target.template_view()["dialect"]["model_budget_status"] == 422
