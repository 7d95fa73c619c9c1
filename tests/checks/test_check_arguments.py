"""The argument each check takes: declared at registration, checked before and after rendering.

Every registered check declares it (a JSON Schema fragment or a validator function); the
bundled suites fit their declarations; values that fit and values that do not, per check;
templated values are taken on trust before rendering and judged after it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from gateprobe.checks import REGISTRY
from gateprobe.checks._registry import argument_problem, check
from gateprobe.errors import UsageError
from gateprobe.run import DEFAULT_SUITES
from gateprobe.scenario import load_scenarios, scenario_files

# check -> (values it takes, values it refuses); every registered check has an entry.
EXAMPLES: dict[str, tuple[list[Any], list[Any]]] = {
    "status": ([200, 599, [200, 429]], ["two hundred", "200", 99, 600, [], [200, "x"], True]),
    "headers": (
        [{"retry-after": True}, {"allow": "re:POST"}, {"x-n": 3}, {"x": False}],
        [{}, {"x": "re:("}, {"x": 1.5}, ["allow"], "allow"],
    ),
    "content_type": (["application/json", "text/event-stream"], ["json", "", 3]),
    "json": ([{"a": [1, "re:^x"]}, [1], "text", None], [{"a": ["re:["]}]),
    "json_schema": (["openai/chat.completion"], ["openai/no-such", "chat.completion", 3]),
    "request_id": ([True, False], ["yes", 1, None]),
    "no_secret_echo": ([True, False], ["yes"]),
    "no_credential_leak": ([True, False], [{}]),
    "budget_enforced": (
        [True, False, {"max_calls": 12}, {}],
        [{"max_calls": -1}, {"max_calls": 0}, {"max_calls": "12"}, 12, "yes", {"max_cals": 3}],
    ),
    "honours": (["json", ["reasoning", "tools"]], ["vision", [], ["json", "x"]]),
    "error_envelope": ([True, "openai", "anthropic", "gemini"], [False, "detail", 1]),
    "model_listed": (
        ["gpt-4o-mini", [{"model_of": "chat"}], {"model": "m", "listed": False}],
        [[{"listed": True}], [], {"model": "m", "listed": "no"}, 3],
    ),
    "models_match_calls": (
        [True, False, {"skip": ["a"], "limit": 5, "also_try": ["b"]}],
        [{"limit": 0}, {"skip": "a"}, {"only": []}, "all"],
    ),
    "quota_charged": ([0, "usage", "client_disconnect", "upstream_failure_midstream"], ["lots"]),
    "quota_logged": ([True, False], ["usage"]),
    "quota_admission": ([True, False], [3]),
    "quota_burst": (
        [True, {"count": 8, "quota": 10}, {"balance": 0}],
        [False, {"count": 0}, {"quota": -1}, {"size": 3}],
    ),
    "stream": ([True, False], ["sse"]),
    "stream_cancelled": ([True, False], ["yes"]),
    "stream_equals_plain": ([True, False], [1]),
    "stream_error": (["before-first-byte", "mid-stream", "cut"], ["sideways", True]),
    "max_ttft_ms": ([250, 0.5], ["fast", 0, -1, True]),
    "stream_incremental": (
        [True, False, {"min_spread_ms": 200}],
        [{"min_spread_ms": "x"}, {"min_spread_ms": -1}, {"spread": 1}, 50],
    ),
}


def test_every_registered_check_declares_its_argument() -> None:
    undeclared = []
    for name, registered in REGISTRY.items():
        spec = registered.argument
        if isinstance(spec, Mapping):
            if not spec:  # {} would take anything: no declaration at all
                undeclared.append(name)
                continue
            jsonschema.Draft202012Validator.check_schema(dict(spec))
        elif not callable(spec):
            undeclared.append(name)
    assert undeclared == []
    assert set(EXAMPLES) == set(REGISTRY), "each check needs examples here"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_each_check_takes_what_it_should_and_refuses_the_rest(name: str) -> None:
    takes, refuses = EXAMPLES[name]
    for value in takes:
        for rendered in (False, True):
            assert argument_problem(name, value, rendered=rendered) is None, (value, rendered)
    for value in refuses:
        for rendered in (False, True):
            assert argument_problem(name, value, rendered=rendered) is not None, (value, rendered)


def test_the_bundled_suites_fit_their_checks() -> None:
    count = 0
    for path in scenario_files(DEFAULT_SUITES):
        count += len(load_scenarios(path, DEFAULT_SUITES))  # raises on a value that does not fit
    assert count > 50


@pytest.mark.parametrize(
    ("name", "value", "where", "message"),
    [
        (
            "status",
            "two hundred",
            "",
            "expected an HTTP status (100-599) or a list of them, got 'two hundred'",
        ),
        ("status", 700, "", "expected an HTTP status (100-599), got 700"),
        ("status", [200, "x"], "[1]", "expected an HTTP status (100-599), got 'x'"),
        ("max_ttft_ms", "fast", "", "expected milliseconds (> 0), got 'fast'"),
        (
            "stream_error",
            "sideways",
            "",
            "expected one of before-first-byte, mid-stream, cut, got 'sideways'",
        ),
        (
            "budget_enforced",
            {"max_calls": -1},
            ".max_calls",
            "expected a whole number of calls >= 1, got -1",
        ),
        ("budget_enforced", {"max_cals": 3}, "", "unknown field 'max_cals' (known: max_calls)"),
        ("headers", {"allow": "re:("}, ".allow", "'re:(': missing ), unterminated subpattern"),
        ("json_schema", "openai/nope", "", "'openai/nope': no such schema (known: "),
    ],
)
def test_a_refusal_says_where_and_what(name: str, value: Any, where: str, message: str) -> None:
    problem = argument_problem(name, value, rendered=False)
    assert problem is not None
    assert problem[0] == where
    assert problem[1].startswith(message), problem[1]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("status", "{target.dialect.auth_error_status}"),
        ("status", [200, "{call.status}"]),
        ("max_ttft_ms", "{limit}"),
        ("json_schema", "{protocol}/models.list"),  # a string with a template in it
        ("stream_error", "{mode}"),
        ("budget_enforced", {"max_calls": "{calls}"}),
        ("headers", {"x-request-id": "re:({group}"}),  # a regex only once rendered
    ],
)
def test_templates_are_taken_on_trust_until_rendered(name: str, value: Any) -> None:
    assert argument_problem(name, value, rendered=False) is None
    assert argument_problem(name, value, rendered=True) is not None  # as it stands: unrendered


def test_a_templated_string_must_still_be_where_a_string_may_be() -> None:
    # not exactly one template: it renders to a string, which request_id does not take
    assert argument_problem("request_id", "x-{name}", rendered=False) is not None
    assert argument_problem("status", "{a}{b}", rendered=False) is not None


@pytest.mark.parametrize(
    ("expect", "line", "field", "words"),
    [
        ('{status: "two hundred"}', 5, "steps[0].expect.status", "got 'two hundred'"),
        ("{max_ttft_ms: fast}", 5, "steps[0].expect.max_ttft_ms", "got 'fast'"),
        ("{stream_error: sideways}", 5, "steps[0].expect.stream_error", "got 'sideways'"),
        (
            "\n      budget_enforced:\n        max_calls: -1",
            7,
            "steps[0].expect.budget_enforced.max_calls",
            "got -1",
        ),
    ],
)
def test_loading_refuses_a_value_naming_its_line_and_field(
    tmp_path: Path, expect: str, line: int, field: str, words: str
) -> None:
    path = tmp_path / "x" / "bad.yaml"
    path.parent.mkdir()
    path.write_text(
        "id: x.bad\ntitle: t\nsteps:\n  - request: {protocol: openai, operation: chat}\n"
        f"    expect: {expect}\n",
        "utf-8",
    )
    with pytest.raises(UsageError) as refused:
        load_scenarios(path)
    assert (refused.value.file, refused.value.line, refused.value.field) == (str(path), line, field)
    assert str(refused.value).startswith(f"{path}:{line}: {field}: expected ")
    assert words in str(refused.value)


def test_a_check_may_declare_its_argument_with_a_function() -> None:
    def side(value: Any) -> str | None:
        return None if value in ("left", "right") else f"expected left or right, got {value!r}"

    check("test_side", argument=side)(lambda ctx, argument: None)
    try:
        assert argument_problem("test_side", "left", rendered=False) is None
        assert argument_problem("test_side", "up", rendered=True) == (
            "",
            "expected left or right, got 'up'",
        )
        # a value with a template in it waits for rendering, like a schema's
        assert argument_problem("test_side", "{side}", rendered=False) is None
        assert argument_problem("test_side", "{side}", rendered=True) is not None
    finally:
        del REGISTRY["test_side"]
