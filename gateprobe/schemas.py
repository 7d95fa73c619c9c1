"""The JSON Schemas of the protocol shapes gateprobe checks, and validation against them.

A schema is named by a ref ``<protocol>/<name>``, e.g. ``openai/chat.completion``, and lives
in ``<protocol>/<name>.schema.json`` (JSON Schema draft 2020-12, ``$id``
``https://gateprobe.dev/schemas/<protocol>/<name>.schema.json``). Schemas may refer to each
other by relative ``$ref`` (``"model.schema.json"``); every validator resolves those against
all the schemas of the same directory.

Where the schemas are found, first match wins:

1. ``schemas/`` next to the package, i.e. in the parent directory of ``gateprobe/``: the
   repository checkout (and an editable install);
2. ``gateprobe/_schemas/`` inside the package, if present: the copy an installed wheel ships.
   Nothing generates it at build time; whoever builds a distribution copies ``schemas/`` there
   (the package data must include ``_schemas/**/*.json``).

    load_schema(ref)               the schema as a dict (a fresh copy)
    validator(ref)                 a cached draft 2020-12 validator (formats are checked)
    validation_errors(ref, value)  [(json path, message)], best first; [] when valid
"""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, relevance
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from gateprobe.errors import GateprobeError

__all__ = [
    "SCHEMA_DIRS",
    "SchemaNotFoundError",
    "available_schemas",
    "load_schema",
    "schema_dir",
    "validation_errors",
    "validator",
]

_PACKAGE = Path(__file__).resolve().parent
SCHEMA_DIRS: tuple[Path, ...] = (_PACKAGE.parent / "schemas", _PACKAGE / "_schemas")
SUFFIX = ".schema.json"
_REF = re.compile(r"^[a-z0-9_-]+/[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")


# Also a LookupError, its base before GateprobeError: the check arguments' ``schema_ref``
# format (checks/_registry.py) counts a LookupError as an unknown ref.
class SchemaNotFoundError(GateprobeError, LookupError):
    """No schema of that ref (or the ref is malformed)."""


def schema_dir() -> Path:
    """The directory protocol schemas are loaded from (see the module docstring)."""
    for base in SCHEMA_DIRS:
        if base.is_dir() and any(base.glob(f"*/*{SUFFIX}")):
            return base
    searched = ", ".join(str(p) for p in SCHEMA_DIRS)
    raise SchemaNotFoundError(f"no protocol schemas found (searched {searched})")


def available_schemas() -> list[str]:
    """Every ref that ``load_schema`` accepts, sorted."""
    base = schema_dir()
    return sorted(
        f"{p.parent.name}/{p.name.removesuffix(SUFFIX)}" for p in base.glob(f"*/*{SUFFIX}")
    )


@cache
def _raw(ref: str) -> dict[str, Any]:
    if not _REF.match(ref):
        raise SchemaNotFoundError(f"malformed schema ref {ref!r} (expected protocol/name)")
    path = schema_dir() / f"{ref}{SUFFIX}"
    if not path.is_file():
        raise SchemaNotFoundError(f"no schema {ref!r} (looked for {path})")
    data = json.loads(path.read_text("utf-8"))
    if not isinstance(data, dict):
        raise SchemaNotFoundError(f"schema {ref!r} is not a JSON object")
    return data


def load_schema(ref: str) -> dict[str, Any]:
    """The schema named ``ref`` (``openai/chat.completion``); a copy, safe to modify."""
    return copy.deepcopy(_raw(ref))


@cache
def _registry() -> Registry[Any]:
    resources = []
    for ref in available_schemas():
        schema = _raw(ref)
        resources.append((str(schema["$id"]), Resource.from_contents(schema, DRAFT202012)))
    registry: Registry[Any] = Registry().with_resources(resources)
    return registry.crawl()


@cache
def validator(ref: str) -> Draft202012Validator:
    """A validator for ``ref`` that resolves the other schemas' ``$id`` and checks formats."""
    return Draft202012Validator(
        _raw(ref),
        registry=_registry(),
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def _describe(error: ValidationError) -> str:
    message = error.message
    if error.context:
        # anyOf/oneOf: name the most specific way the value failed, deepest first.
        inner = min(error.context, key=relevance)
        while inner.context:
            inner = min(inner.context, key=relevance)
        message += f" (closest: {inner.json_path}: {inner.message})"
    return message


def validation_errors(ref: str, instance: Any) -> list[tuple[str, str]]:
    """Every violation of ``ref`` by ``instance`` as (JSON path, message), most relevant first.

    Paths look like ``$.choices[0].delta``. An empty list means the instance is valid.
    """
    errors = sorted(validator(ref).iter_errors(instance), key=relevance, reverse=True)
    return [(e.json_path, _describe(e)) for e in errors]
