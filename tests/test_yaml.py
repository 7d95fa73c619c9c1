"""gateprobe._yaml: YAML data plus the line of every field path, for errors that name a line."""

from __future__ import annotations

import pytest
import yaml

from gateprobe._yaml import YamlDocument, load_yaml

DOC = """\
# a comment on line 1
seed: 7
server:
  host: 127.0.0.1
  limits:
    rpm: 60
    burst: 5
keys:
  - name: a
    account: main
  - name: b
    account: second
    models:
      - gpt-4o-mini
      - o3-mini
  - {name: c, account: poor}
tags: [x, y, z]
"""


@pytest.fixture
def doc() -> YamlDocument:
    return load_yaml(DOC)


def test_data_is_the_safe_load_result(doc: YamlDocument) -> None:
    assert doc.data == yaml.safe_load(DOC)
    assert doc.data["keys"][1]["models"] == ["gpt-4o-mini", "o3-mini"]


def test_top_level_and_nested_mapping_lines(doc: YamlDocument) -> None:
    assert doc.line_of("seed") == 2
    assert doc.line_of("server") == 3
    assert doc.line_of("server.host") == 4
    assert doc.line_of("server.limits") == 5
    assert doc.line_of("server.limits.rpm") == 6
    assert doc.line_of("server.limits.burst") == 7


def test_list_items_and_fields_inside_them(doc: YamlDocument) -> None:
    assert doc.line_of("keys") == 8
    assert doc.line_of("keys[0]") == 9
    assert doc.line_of("keys[0].name") == 9
    assert doc.line_of("keys[0].account") == 10
    assert doc.line_of("keys[1]") == 11
    assert doc.line_of("keys[1].account") == 12
    assert doc.line_of("keys[1].models") == 13
    assert doc.line_of("keys[1].models[0]") == 14
    assert doc.line_of("keys[1].models[1]") == 15


def test_flow_style_items_share_their_line(doc: YamlDocument) -> None:
    assert doc.line_of("keys[2]") == 16
    assert doc.line_of("keys[2].name") == 16
    assert doc.line_of("keys[2].account") == 16
    assert doc.line_of("tags[0]") == 17
    assert doc.line_of("tags[2]") == 17


def test_nearest_ancestor_fallback(doc: YamlDocument) -> None:
    # A field the file does not contain falls back to the closest enclosing path that it does.
    assert doc.line_of("keys[0].quota") == doc.line_of("keys[0]") == 9
    assert doc.line_of("keys[1].models[7]") == doc.line_of("keys[1].models") == 13
    assert doc.line_of("keys[9].account") == doc.line_of("keys") == 8
    assert doc.line_of("server.limits.window.unit") == 5
    assert doc.line_of("server.tls") == 3


def test_unknown_paths_have_no_line(doc: YamlDocument) -> None:
    assert doc.line_of("nope") is None
    assert doc.line_of("nope.deeper") is None
    assert doc.line_of("nope[0].x") is None
    assert doc.line_of("") is None
    assert doc.line_of("[0]") is None


def test_lines_record_every_path(doc: YamlDocument) -> None:
    expected = {
        "seed",
        "server",
        "server.host",
        "server.limits",
        "server.limits.rpm",
        "server.limits.burst",
        "keys",
        "tags",
        "tags[0]",
        "tags[1]",
        "tags[2]",
    }
    assert expected <= set(doc.lines)
    assert all(isinstance(line, int) and line >= 1 for line in doc.lines.values())


def test_non_string_keys_are_stringified() -> None:
    doc = load_yaml("1: one\nnull: yes\nnested:\n  2: two\n")
    assert doc.data == {1: "one", None: True, "nested": {2: "two"}}
    assert doc.line_of("1") == 1
    assert doc.line_of("null") == 2  # the key as written, not as Python reads it
    assert doc.line_of("nested.2") == 4


def test_top_level_sequence() -> None:
    doc = load_yaml("- a\n-\n  x: 1\n  y: 2\n")
    assert doc.data == ["a", {"x": 1, "y": 2}]
    assert doc.line_of("[0]") == 1
    assert doc.line_of("[1]") == 3  # a block mapping item starts at its first key
    assert doc.line_of("[1].y") == 4
    assert doc.line_of("[1].z") == 3
    assert doc.line_of("[5]") is None  # no named ancestor to fall back to


def test_empty_document() -> None:
    for text in ("", "# only a comment\n", "---\n"):
        doc = load_yaml(text)
        assert doc.data is None
        assert doc.lines == {}
        assert doc.line_of("anything") is None


def test_bad_syntax_raises_yaml_error_with_a_mark() -> None:
    with pytest.raises(yaml.YAMLError) as info:
        load_yaml("seed: 1\nkeys: [a, b\nmore: 2\n")
    mark = getattr(info.value, "problem_mark", None)
    assert mark is not None
    assert mark.line + 1 >= 2


def test_unsafe_tags_are_refused() -> None:
    with pytest.raises(yaml.YAMLError):
        load_yaml("x: !!python/object/apply:os.system ['true']\n")
