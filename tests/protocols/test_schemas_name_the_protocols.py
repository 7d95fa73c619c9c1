"""The profile schemas name each protocol where a profile or a load profile may: they must
name exactly the registry's (a new protocol is added to them; docs/architecture.md)."""

from __future__ import annotations

import json
from typing import Any

from gateprobe import protocols
from gateprobe.schemas import schema_dir

PROTOCOLS = set(protocols.PROTOCOLS)


def _schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((schema_dir() / name).read_text(encoding="utf-8"))
    return loaded


def _at(schema: dict[str, Any], path: str) -> Any:
    node: Any = schema
    for step in path.split("/"):
        node = node[int(step)] if step.isdigit() else node[step]
    return node


def test_the_target_schema_names_every_protocol_wherever_it_names_one() -> None:
    target = _schema("target.schema.json")
    keyed = (
        "properties/paths/properties",
        "properties/protocol_headers/properties",
        "properties/auth/properties/credentials/properties",
        "properties/models/additionalProperties/oneOf/1/properties",
        "properties/dialect/properties/error_envelope/properties",
    )
    for path in keyed:
        assert set(_at(target, path)) == PROTOCOLS, path
    for protocol, rule in _at(target, keyed[-1]).items():
        assert set(rule["enum"]) == PROTOCOLS, protocol


def test_the_load_profile_schema_names_every_protocol() -> None:
    found: list[set[str]] = []

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("protocol"), dict) and "enum" in node["protocol"]:
                found.append(set(node["protocol"]["enum"]))
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(_schema("load_profile.schema.json"))
    assert found and all(names == PROTOCOLS for names in found)
