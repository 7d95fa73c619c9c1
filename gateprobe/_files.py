"""Loading gateprobe's own YAML files: parse, validate against a schema, name the line."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from gateprobe._resources import resource_dir
from gateprobe._yaml import YamlDocument, load_yaml
from gateprobe.errors import UsageError

__all__ = ["load_documents", "validate_document"]


@cache
def _validator(name: str) -> jsonschema.protocols.Validator:
    schema = json.loads((resource_dir("schemas") / name).read_text("utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


def load_documents(path: Path) -> list[YamlDocument]:
    """Every YAML document in ``path`` (files may hold several, separated by ``---``)."""
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise UsageError(f"cannot read: {reason}", file=str(path)) from None
    docs: list[YamlDocument] = []
    for part, first_line in _split_documents(text):
        try:
            doc = load_yaml(part)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 + first_line if mark is not None else None
            problem = getattr(exc, "problem", None) or "syntax error"
            raise UsageError(f"invalid YAML: {problem}", file=str(path), line=line) from None
        if doc.data is not None:
            docs.append(doc.shifted(first_line))
    return docs


def _split_documents(text: str) -> list[tuple[str, int]]:
    """Split on ``---`` lines; each part with the number of lines before it."""
    parts: list[tuple[str, int]] = []
    current: list[str] = []
    start = 0
    for number, line in enumerate(text.splitlines(keepends=True)):
        if line.rstrip() == "---":
            parts.append(("".join(current), start))
            current = []
            start = number + 1
        else:
            current.append(line)
    parts.append(("".join(current), start))
    return parts


def validate_document(doc: YamlDocument, schema: str, path: Path) -> None:
    """Raise UsageError for the first schema violation, naming line and field."""
    errors = sorted(_validator(schema).iter_errors(doc.data), key=lambda e: list(e.absolute_path))
    if not errors:
        return
    error = min(errors, key=lambda e: (len(e.absolute_path), str(e.absolute_path)))
    field = _dotted(error.absolute_path)
    message = error.message
    if error.validator == "additionalProperties":
        message = _unknown_field_message(error)
        extra = _extra_name(error)
        if extra:
            field = f"{field}.{extra}" if field else extra
    elif "propertyNames" in error.absolute_schema_path and isinstance(error.instance, str):
        # A bad key name: point at that key, not at the mapping holding it.
        field = f"{field}.{error.instance}" if field else error.instance
    line = doc.line_of(field) if field else doc.first_line
    raise UsageError(message, file=str(path), line=line, field=field or "<document>")


def _dotted(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _extra_name(error: jsonschema.ValidationError) -> str | None:
    allowed = set(error.schema.get("properties", {})) if isinstance(error.schema, dict) else set()
    if isinstance(error.instance, dict):
        for name in error.instance:
            if name not in allowed:
                return str(name)
    return None


def _unknown_field_message(error: jsonschema.ValidationError) -> str:
    allowed = sorted(error.schema.get("properties", {})) if isinstance(error.schema, dict) else []
    name = _extra_name(error)
    return f"unknown field {name!r} (known: {', '.join(allowed)})"
