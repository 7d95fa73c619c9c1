"""``{name.path[0]}`` templates in scenario values, and the same paths into exchanges.

A string that is exactly one ``{expression}`` becomes the value itself (a number stays a
number); otherwise each expression is formatted into the string. ``{{`` and ``}}`` are
literal braces. An expression is a name followed by ``.field`` and ``[index]`` steps.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from gateprobe.errors import GateprobeError

__all__ = ["TemplateError", "names_in", "render", "resolve_path"]

_EXPR = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+|\[-?\d+\])*)\}(?!\})")
# ``{{``, ``}}`` or one expression, scanned left to right: escapes are undone in the template
# text only, never in the values substituted into it.
_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+|\[-?\d+\])*)\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_STEP = re.compile(r"\.([A-Za-z0-9_-]+)|\[(-?\d+)\]")


# Also a LookupError, its base before GateprobeError: a name or path that is not there is a
# lookup that failed, and callers may catch it as one.
class TemplateError(GateprobeError, LookupError):
    """A template or path names something that is not there."""


def resolve_path(root: Any, path: str) -> Any:
    """Follow ``a.b[0].c`` from ``root`` (a mapping of names, or any JSON value)."""
    head = _NAME.match(path)
    if head is None:
        raise TemplateError(f"{path!r} does not start with a name")
    name, rest = head.group(0), path[head.end() :]
    if not isinstance(root, Mapping) or name not in root:
        raise TemplateError(f"{name!r} is not defined")
    value = root[name]
    walked = name
    for match in _STEP.finditer(rest):
        key, index = match.group(1), match.group(2)
        if key is not None:
            if isinstance(value, Mapping) and key in value:
                value = value[key]
            elif isinstance(value, Mapping) and key.lower() in value:
                value = value[key.lower()]
            else:
                raise TemplateError(f"{walked} has no field {key!r}")
            walked += f".{key}"
        else:
            i = int(index)
            if not isinstance(value, list) or not -len(value) <= i < len(value):
                raise TemplateError(f"{walked} has no item [{i}]")
            value = value[i]
            walked += f"[{i}]"
    return value


def render(value: Any, context: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        whole = _EXPR.fullmatch(value)
        if whole is not None:
            return resolve_path(context, whole.group(1))
        return _TOKEN.sub(lambda m: _substitute(m, context), value)
    if isinstance(value, list):
        return [render(v, context) for v in value]
    if isinstance(value, dict):
        return {render(k, context): render(v, context) for k, v in value.items()}
    return value


def _substitute(match: re.Match[str], context: Mapping[str, Any]) -> str:
    if match.group(1) is None:
        return match.group(0)[0]
    return str(resolve_path(context, match.group(1)))


def names_in(value: Any) -> set[str]:
    """The root names a value's templates refer to (for load-time checks)."""
    found: set[str] = set()
    if isinstance(value, str):
        for match in _TOKEN.finditer(value):
            if match.group(1) is not None:
                found.add(re.split(r"[.\[]", match.group(1), maxsplit=1)[0])
    elif isinstance(value, list):
        for item in value:
            found |= names_in(item)
    elif isinstance(value, dict):
        for k, v in value.items():
            found |= names_in(k) | names_in(v)
    return found
