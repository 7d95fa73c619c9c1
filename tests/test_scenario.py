"""Scenario files: several per file, areas, parameters and instances, load-time rejections."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gateprobe.errors import UsageError
from gateprobe.scenario import Instance, Scenario, load_scenarios, scenario_files

TWO = """\
# auth scenarios
id: auth.first
title: The first one
description: a description
requires:
  capabilities: ["{protocol}.chat"]
  keys: [valid, disabled]
marks: [smoke, slow]
parametrize:
  protocol: [openai, anthropic]
  model: [m1, m2, m3]
steps:
  - name: call it
    request: {protocol: "{protocol}", operation: chat, model: "{model}"}
    expect:
      status: 200
    save:
      rid: headers.x-request-id
  - request: {protocol: "{protocol}", operation: models, headers: {x-previous: "{rid}"}}
---
id: auth.second
title: The second one
steps:
  - request: {method: GET, path: /health, key: null}
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), "utf-8")
    return path


def error_of(path: Path, root: Path | None = None) -> UsageError:
    with pytest.raises(UsageError) as info:
        load_scenarios(path, root)
    return info.value


def one_step(
    expect: str = "{status: 200}", request: str = "{protocol: openai, operation: chat}"
) -> str:
    return f"id: t.one\ntitle: t\nsteps:\n  - request: {request}\n    expect: {expect}\n"


# -- files with several scenarios -------------------------------------------------------------


def test_a_file_holds_several_scenarios_with_their_lines(tmp_path: Path) -> None:
    path = write(tmp_path / "auth" / "two.yaml", TWO)
    first, second = load_scenarios(path, tmp_path)
    assert (first.id, first.title, second.id, second.title) == (
        "auth.first",
        "The first one",
        "auth.second",
        "The second one",
    )
    assert first.path == path and second.path == path
    # Lines are 1-based and point at the scenario's first key, past its leading comment.
    assert first.line == 2
    assert first.end_line == 19  # the line before the '---'
    assert second.line == 21
    assert second.end_line == 24
    assert first.source_lines()[0] == "id: auth.first"
    assert first.source_lines()[-1].lstrip().startswith("- request:")
    assert second.source_lines() == [
        "id: auth.second",
        "title: The second one",
        "steps:",
        "  - request: {method: GET, path: /health, key: null}",
    ]


def test_fields_are_read(tmp_path: Path) -> None:
    first, second = load_scenarios(write(tmp_path / "auth" / "two.yaml", TWO), tmp_path)
    assert first.description == "a description"
    assert first.capabilities == ("{protocol}.chat",)
    assert first.key_kinds == ("valid", "disabled")
    assert first.marks == ("smoke", "slow")
    assert first.parameters == {"protocol": ["openai", "anthropic"], "model": ["m1", "m2", "m3"]}
    one, two = first.steps
    assert (one.index, one.name, one.line) == (0, "call it", 13)
    assert one.request == {"protocol": "{protocol}", "operation": "chat", "model": "{model}"}
    assert one.expect == {"status": 200}
    assert one.save == {"rid": "headers.x-request-id"}
    # Defaults: a name from the position, no expectations, nothing saved.
    assert (two.index, two.name, two.expect, two.save, two.line) == (1, "step 2", {}, {}, 19)
    assert second.capabilities == () and second.key_kinds == () and second.marks == ()
    assert second.parameters == {} and second.description == ""
    assert second.steps[0].request == {"method": "GET", "path": "/health", "key": None}


def test_empty_documents_are_skipped(tmp_path: Path) -> None:
    path = write(tmp_path / "x" / "f.yaml", "---\n" + one_step() + "---\n# only a comment\n")
    (scenario,) = load_scenarios(path)
    assert scenario.id == "t.one" and scenario.line == 2


# -- areas ------------------------------------------------------------------------------------


def test_the_area_is_the_first_directory_under_the_suites_root(tmp_path: Path) -> None:
    root = tmp_path / "suites"
    direct = write(root / "errors" / "a.yaml", one_step())
    nested = write(root / "errors" / "deeper" / "b.yaml", one_step())
    assert load_scenarios(direct, root)[0].area == "errors"
    assert load_scenarios(nested, root)[0].area == "errors"


def test_without_a_root_the_area_is_the_parent_directory(tmp_path: Path) -> None:
    nested = write(tmp_path / "errors" / "deeper" / "b.yaml", one_step())
    assert load_scenarios(nested)[0].area == "deeper"
    # A root that does not contain the file is ignored the same way.
    assert load_scenarios(nested, tmp_path / "elsewhere")[0].area == "deeper"


def test_an_explicit_area_wins(tmp_path: Path) -> None:
    path = write(tmp_path / "suites" / "errors" / "a.yaml", "area: quota\n" + one_step())
    assert load_scenarios(path, tmp_path / "suites")[0].area == "quota"


def test_scenario_files_are_found_recursively_and_sorted(tmp_path: Path) -> None:
    for name in ("b/z.yaml", "a/y.yaml", "a/deep/x.yml", "a/notes.txt"):
        write(tmp_path / name, one_step())
    found = [p.relative_to(tmp_path).as_posix() for p in scenario_files(tmp_path)]
    assert found == ["a/y.yaml", "b/z.yaml", "a/deep/x.yml"]


# -- parameters and instances -----------------------------------------------------------------


def test_parameters_expand_to_one_instance_per_combination(tmp_path: Path) -> None:
    first, second = load_scenarios(write(tmp_path / "auth" / "two.yaml", TWO), tmp_path)
    instances = list(first.instances())
    assert [i.name for i in instances] == [
        "auth.first[openai-m1]",
        "auth.first[openai-m2]",
        "auth.first[openai-m3]",
        "auth.first[anthropic-m1]",
        "auth.first[anthropic-m2]",
        "auth.first[anthropic-m3]",
    ]
    assert instances[4].params == {"protocol": "anthropic", "model": "m2"}
    assert instances[4].param_id == "anthropic-m2"
    assert all(i.scenario is first for i in instances)
    (only,) = second.instances()
    assert (only.name, only.params, only.param_id) == ("auth.second", {}, "")


def test_parameter_values_of_any_type_name_their_instance(tmp_path: Path) -> None:
    text = "id: t.typed\ntitle: t\nparametrize:\n  n: [1, 2.5, true, null]\nsteps:\n"
    text += "  - request: {protocol: openai, operation: chat, body: {max_tokens: '{n}'}}\n"
    (scenario,) = load_scenarios(write(tmp_path / "t" / "p.yaml", text))
    assert [i.name for i in scenario.instances()] == [
        "t.typed[1]",
        "t.typed[2.5]",
        "t.typed[True]",
        "t.typed[None]",
    ]
    assert [i.params["n"] for i in scenario.instances()] == [1, 2.5, True, None]


def test_instance_is_a_plain_record() -> None:
    scenario = Scenario("a.b", "t", "a", Path("x.yaml"), 1, 1, ())
    assert Instance(scenario, {"p": 1}, "1").name == "a.b[1]"
    assert Instance(scenario, {}, "").name == "a.b"


# -- load-time rejections ---------------------------------------------------------------------


def test_an_unknown_check_is_rejected_with_its_line(tmp_path: Path) -> None:
    text = "id: t.one\ntitle: t\nsteps:\n  - request: {protocol: openai, operation: chat}\n"
    text += "    expect:\n      status: 200\n      statuss: 200\n"
    path = write(tmp_path / "t" / "f.yaml", text)
    error = error_of(path)
    assert (error.file, error.line, error.field) == (str(path), 7, "steps[0].expect.statuss")
    assert str(error).startswith(f"{path}:7: steps[0].expect.statuss: unknown check 'statuss'")
    assert "status" in str(error) and "max_ttft_ms" in str(error)  # the known checks


def test_an_unknown_check_in_a_later_document_names_that_document_line(tmp_path: Path) -> None:
    path = write(tmp_path / "t" / "f.yaml", one_step() + "---\n" + one_step("{bogus: 1}"))
    error = error_of(path)
    assert error.line == 11 and error.field == "steps[0].expect.bogus"


@pytest.mark.parametrize(
    ("req", "expect", "name", "line", "field"),
    [
        (
            '{protocol: openai, operation: chat, model: "{mdl}"}',
            "{status: 200}",
            "mdl",
            4,
            "steps[0].request.model",
        ),
        (
            "{protocol: openai, operation: chat}",
            '{status: "{target.dialect.x}", json: {a: ["{nope.b}"]}}',
            "nope",
            5,
            "steps[0].expect.json.a[0]",
        ),
    ],
)
def test_an_unknown_template_name_is_rejected_with_its_line(
    tmp_path: Path, req: str, expect: str, name: str, line: int, field: str
) -> None:
    path = write(tmp_path / "t" / "f.yaml", one_step(expect, req))
    error = error_of(path)
    assert (error.line, error.field) == (line, field)
    assert f"template names {name!r}" in str(error)
    assert str(error).startswith(f"{path}:{line}: {field}: ")


def test_templates_may_name_parameters_target_and_values_saved_earlier(tmp_path: Path) -> None:
    # TWO uses {protocol}, {model} (parameters) and {rid} saved by step 1 in step 2.
    assert len(load_scenarios(write(tmp_path / "auth" / "two.yaml", TWO))) == 2


def test_a_value_saved_by_a_step_is_not_usable_in_that_same_step(tmp_path: Path) -> None:
    text = "id: t.one\ntitle: t\nsteps:\n"
    text += '  - request: {protocol: openai, operation: chat, model: "{later}"}\n'
    text += "    save: {later: json.model}\n"
    error = error_of(write(tmp_path / "t" / "f.yaml", text))
    assert "template names 'later'" in str(error) and error.line == 4


def test_escaped_braces_are_not_template_names(tmp_path: Path) -> None:
    expect = '{json: {text: "{{not_a_name}}"}}'
    (scenario,) = load_scenarios(write(tmp_path / "t" / "f.yaml", one_step(expect)))
    assert scenario.steps[0].expect == {"json": {"text": "{{not_a_name}}"}}


@pytest.mark.parametrize(
    ("text", "line", "field", "message"),
    [
        ("id: noarea\ntitle: t\nsteps: []\n", 1, "id", "does not match"),
        ("id: t.x\ntitle: t\nsteps: []\n", 3, "steps", "should be non-empty"),
        ("id: t.x\nsteps:\n  - request: {path: /}\n", 1, "<document>", "'title' is a required"),
        (
            "id: t.x\ntitle: t\nsteps:\n  - request: {path: /, verb: GET}\n",
            4,
            "steps[0].request.verb",
            "unknown field 'verb'",
        ),
        (
            "id: t.x\ntitle: t\nsteps:\n  - request: {protocol: openai}\n",
            4,
            "steps[0].request",
            "is not valid under any",
        ),
        (
            "id: t.x\ntitle: t\nsteps:\n  - request: {path: /}\n    expect: {Status: 200}\n",
            5,
            "steps[0].expect.Status",
            "does not match",
        ),
        (
            "id: t.x\ntitle: t\nparametrize: {p: []}\nsteps:\n  - request: {path: /}\n",
            3,
            "parametrize.p",
            "should be non-empty",
        ),
    ],
)
def test_schema_violations_name_file_line_and_field(
    tmp_path: Path, text: str, line: int, field: str, message: str
) -> None:
    path = write(tmp_path / "t" / "f.yaml", text)
    error = error_of(path)
    assert (error.file, error.line, error.field) == (str(path), line, field)
    assert message in str(error)


def test_a_document_that_is_not_a_mapping_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path / "t" / "f.yaml", one_step() + "---\n- just\n- a list\n")
    error = error_of(path)
    assert str(error) == f"{path}:7: a scenario must be a mapping"
