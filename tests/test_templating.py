"""Templates in scenario values: whole-value templates, interpolation, escapes, paths, errors."""

from __future__ import annotations

from typing import Any

import pytest

from gateprobe.errors import GateprobeError
from gateprobe.templating import TemplateError, names_in, render, resolve_path

CONTEXT: dict[str, Any] = {
    "protocol": "anthropic",
    "count": 3,
    "ratio": 0.5,
    "flag": False,
    "nothing": None,
    "items": ["a", "b", "c"],
    "target": {
        "name": "mock",
        "dialect": {"unknown_model_status": 404},
        "models": {"chat": {"openai": "gpt-4o-mini"}},
    },
    "first": {
        "status": 200,
        "headers": {"x-request-id": "req-1", "content-type": "application/json"},
        "json": {"data": [{"id": "m1"}, {"id": "m2", "tags": ["x", "y"]}]},
    },
    "saved-id": "abc",
    "body_text": '{"a":{"b":1}}',
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{count}", 3),
        ("{ratio}", 0.5),
        ("{flag}", False),
        ("{nothing}", None),
        ("{items}", ["a", "b", "c"]),
        ("{target.dialect}", {"unknown_model_status": 404}),
        ("{target.dialect.unknown_model_status}", 404),
        ("{first.status}", 200),
    ],
)
def test_a_whole_value_template_keeps_the_type(template: str, expected: Any) -> None:
    result = render(template, CONTEXT)
    assert result == expected
    assert type(result) is type(expected)


def test_interpolation_formats_each_expression_into_the_string() -> None:
    assert render("{protocol}.chat", CONTEXT) == "anthropic.chat"
    assert render("status {count} of {ratio}", CONTEXT) == "status 3 of 0.5"
    assert render("{protocol}/{first.json.data[1].id}", CONTEXT) == "anthropic/m2"
    assert render("x{flag}y{nothing}", CONTEXT) == "xFalseyNone"


def test_double_braces_are_literal_braces() -> None:
    assert render("{{protocol}}", CONTEXT) == "{protocol}"
    assert render("{{literal}} and {protocol}", CONTEXT) == "{literal} and anthropic"
    assert render('{{"k": "{protocol}"}}', CONTEXT) == '{"k": "anthropic"}'
    assert render("only {{ open", CONTEXT) == "only { open"
    assert render("only }} close", CONTEXT) == "only } close"


def test_braces_inside_a_substituted_value_are_kept_as_they_are() -> None:
    # Escapes are undone in the template text, not in the values put into it.
    assert render("body={body_text}", CONTEXT) == 'body={"a":{"b":1}}'


def test_text_that_is_not_a_template_is_left_alone() -> None:
    assert render('{"model": "x"}', CONTEXT) == '{"model": "x"}'
    assert render("{ protocol }", CONTEXT) == "{ protocol }"
    assert render("{1abc}", CONTEXT) == "{1abc}"
    assert render("plain", CONTEXT) == "plain"


def test_lists_and_mappings_are_rendered_recursively_keys_included() -> None:
    value = {"{protocol}": ["{count}", {"deep": "{first.headers.x-request-id}"}], "n": 7}
    assert render(value, CONTEXT) == {"anthropic": [3, {"deep": "req-1"}], "n": 7}


def test_non_string_scalars_pass_through() -> None:
    for value in (1, 2.5, True, None):
        assert render(value, CONTEXT) is value


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("first.json.data[0].id", "m1"),
        ("first.json.data[-1].id", "m2"),
        ("first.json.data[1].tags[1]", "y"),
        ("first.headers.x-request-id", "req-1"),
        ("first.headers.X-Request-Id", "req-1"),  # header names match in any case
        ("items[2]", "c"),
        ("saved-id", "abc"),
        ("target.models.chat.openai", "gpt-4o-mini"),
    ],
)
def test_paths_follow_fields_indexes_and_dashes(path: str, expected: Any) -> None:
    assert resolve_path(CONTEXT, path) == expected
    assert render("{" + path + "}", CONTEXT) == expected


def test_resolve_path_works_on_any_json_value_under_a_name() -> None:
    assert resolve_path({"json": [{"a": [10, 20]}]}, "json[0].a[1]") == 20


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{missing}", "'missing' is not defined"),
        ("x {missing.field}", "'missing' is not defined"),
        ("{first.nope}", "first has no field 'nope'"),
        ("{first.json.data[5]}", "first.json.data has no item [5]"),
        ("{first.json.data[-3]}", "first.json.data has no item [-3]"),
        ("{protocol[0]}", "protocol has no item [0]"),
        ("{count.field}", "count has no field 'field'"),
        ("{first.json.data[0].id.more}", "first.json.data[0].id has no field 'more'"),
    ],
)
def test_errors_name_what_is_missing(template: str, message: str) -> None:
    with pytest.raises(TemplateError) as info:
        render(template, CONTEXT)
    assert str(info.value) == message


def test_a_path_must_start_with_a_name() -> None:
    with pytest.raises(TemplateError, match="does not start with a name"):
        resolve_path(CONTEXT, "[0].id")
    with pytest.raises(TemplateError, match="is not defined"):
        resolve_path(["not", "a", "mapping"], "x")


def test_template_error_is_a_lookup_error() -> None:
    assert issubclass(TemplateError, LookupError)


def test_template_error_is_a_gateprobe_error() -> None:
    assert issubclass(TemplateError, GateprobeError)


def test_names_in_finds_root_names_everywhere_but_not_in_escapes() -> None:
    value = {
        "a": "{protocol}.chat",
        "b": ["{first.json.data[0].id}", {"{key_name}": "x {saved-id} y"}],
        "c": "{{escaped}} and {{not.this}}",
        "d": 5,
        "e": "{target.models.chat}",
    }
    assert names_in(value) == {"protocol", "first", "key_name", "saved-id", "target"}
    assert names_in("no templates") == set()
    assert names_in(None) == set()
