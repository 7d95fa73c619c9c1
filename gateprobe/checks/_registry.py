"""The check registry, the argument each check takes, and the context every check reads.

Each check declares its argument (the value under a step's ``expect``) when it registers: a
JSON Schema fragment (draft 2020-12; a ``description`` makes the message of a value that does
not fit read "expected <description>, got <value>") or a function returning what is wrong
with a value, or None. Scenarios are checked against it when they are loaded, so a wrong
value is a usage error naming its file, line and field, and again once their templates are
rendered, when a wrong value fails the scenario (check ``scenario``) before anything is sent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError, best_match

from gateprobe import protocols
from gateprobe.errors import CheckFailed
from gateprobe.http import Exchange
from gateprobe.protocols import Api, Payload
from gateprobe.request import BuiltRequest
from gateprobe.target import Target
from gateprobe.templating import _EXPR, names_in

__all__ = [
    "FLAG",
    "MATCH_FORMAT",
    "REGISTRY",
    "SCHEMA_REF_FORMAT",
    "ArgumentSpec",
    "Check",
    "CheckContext",
    "Prelude",
    "argument_problem",
    "check",
    "prepare",
    "unavailable_reason",
]


@dataclass
class CheckContext:
    exchange: Exchange
    target: Target
    scenario_id: str
    protocol: str | None = None
    stream: str | None = None  # None, "sse" or "array"
    secrets: list[str] = field(default_factory=list)  # keys sent in this step
    # Sends another request (a step's request mapping, already rendered) to the same target
    # with the same client and limits; for checks that must look further than one answer
    # (is every listed model callable?). None where no target is reachable (transcripts).
    call: Callable[[Mapping[str, Any]], Exchange] | None = None
    # Findings that do not fail the verdict (a SHOULD, not a MUST): reported beside it.
    warnings: list[CheckFailed] = field(default_factory=list)
    # Failures a check recorded and went on past (``fail``), to judge its other rules too.
    failures: list[CheckFailed] = field(default_factory=list)

    # What each check's ``before`` hook returned before the step's request was sent, by check
    # name (a balance read before the call, to compare with one read after it).
    before: Mapping[str, Any] = field(default_factory=dict)
    operation: str | None = None  # the step's operation (chat, responses, ...), if it named one

    def api(self, events: Sequence[Payload] = ()) -> Api:
        """The API this exchange spoke: by the step's operation, else by the path it called
        (and, for a raw path that does not say, by its stream's events)."""
        if self.operation is not None:
            return protocols.api(self.protocol, self.operation)
        return protocols.api_for_path(self.protocol, self.exchange.request.url, events)

    def warn(self, finding: CheckFailed) -> None:
        self.warnings.append(finding)

    def fail(self, finding: CheckFailed) -> None:
        """Record a failure without stopping the check: one rule must not hide the others.

        Raising CheckFailed still works, for a check whose rules all hang on the first one.
        """
        self.failures.append(finding)

    def run(self, name: str, argument: Any) -> list[CheckFailed]:
        """Run the registered check ``name``; every failure it recorded or raised, in order."""
        start = len(self.failures)
        try:
            REGISTRY[name].fn(self, argument)
        except CheckFailed as failed:
            self.failures.append(failed)
        return self.failures[start:]


@dataclass
class Prelude:
    """What a check's ``before`` hook sees: the step's request, built but not yet sent.

    A hook may replace ``request`` (to send it with a key made for the run, say): the runner
    sends whatever is there once the hooks have run.
    """

    target: Target
    scenario_id: str
    request: BuiltRequest
    call: Callable[[Mapping[str, Any]], Exchange] | None = None


CheckFn = Callable[[CheckContext, Any], None]
# A JSON Schema fragment, or a function saying what is wrong with a value (None: nothing).
ArgumentSpec = Mapping[str, Any] | Callable[[Any], "str | None"]
BeforeFn = Callable[[Prelude, Any], Any]
# Why the check cannot run on a target (it has no quota probe, say), or None.
UnavailableFn = Callable[[Target], "str | None"]


@dataclass(frozen=True)
class Check:
    name: str
    fn: CheckFn
    doc: str
    before: BeforeFn | None = None
    unavailable: UnavailableFn | None = None
    # The check itself judges how the body ended (a cut or a stall): the runner then adds no
    # "the response was incomplete" failure of its own for a transport error.
    judges_the_end: bool = False
    # What the check takes under ``expect`` (see the module docstring).
    argument: ArgumentSpec = field(default_factory=dict)


REGISTRY: dict[str, Check] = {}


def check(
    name: str,
    *,
    argument: ArgumentSpec,
    before: BeforeFn | None = None,
    unavailable: UnavailableFn | None = None,
    judges_the_end: bool = False,
) -> Callable[[CheckFn], CheckFn]:
    """Register ``fn`` as the check ``name`` (the key used under a step's ``expect``).

    ``argument``: the value the check takes, a JSON Schema fragment or a function returning
    what is wrong with a value (see the module docstring). ``before(prelude, argument)``, if
    given, runs just before the step's request is sent; the check reads what it returned as
    ``ctx.before[name]``. ``unavailable(target)``, if given, says why the check cannot run on a
    target: scenarios using it are then skipped with that reason. ``judges_the_end``: the check
    judges a body that ended in a transport error itself.
    """

    def register(fn: CheckFn) -> CheckFn:
        if name in REGISTRY:
            raise ValueError(f"check {name!r} registered twice")
        doc = (fn.__doc__ or "").strip().split("\n")[0]
        REGISTRY[name] = Check(name, fn, doc, before, unavailable, judges_the_end, argument)
        return fn

    return register


# -- arguments ----------------------------------------------------------------------------

# ``format`` values for strings the checks read further: a value matched as given or, with a
# ``re:`` prefix, as a regular expression (headers, json); and a ref of a bundled schema.
MATCH_FORMAT = "gateprobe-match"
SCHEMA_REF_FORMAT = "gateprobe-schema-ref"
_FORMATS = jsonschema.FormatChecker(formats=())


@_FORMATS.checks(MATCH_FORMAT, raises=re.error)
def _match(value: object) -> bool:
    if isinstance(value, str) and value.startswith("re:"):
        re.compile(value[3:])
    return True


@cache
def _known_schemas() -> tuple[str, ...]:
    from gateprobe.schemas import available_schemas

    return tuple(available_schemas())


@_FORMATS.checks(SCHEMA_REF_FORMAT, raises=LookupError)
def _schema_ref(value: object) -> bool:
    if isinstance(value, str) and value not in _known_schemas():
        raise LookupError(f"no such schema (known: {', '.join(_known_schemas())})")
    return True


# The argument of a check that is on or off.
FLAG: Mapping[str, Any] = {"type": "boolean", "description": "true or false"}

# Keywords that judge a string's content, which a string with a template in it does not have
# yet; its type (a string) is known. A string that is exactly one template may become any
# value (render keeps the value's type): nothing about it is known before rendering.
_CONTENT_KEYWORDS = frozenset({"const", "enum", "format", "maxLength", "minLength", "pattern"})


def _template_aware(keyword: str, judge: Any) -> Any:
    def judge_unless_templated(
        validator: Any, value: Any, instance: Any, schema: Any
    ) -> Iterator[ValidationError]:
        templated = isinstance(instance, str) and bool(names_in(instance))
        if templated and (keyword in _CONTENT_KEYWORDS or _EXPR.fullmatch(instance)):
            return
        yield from judge(validator, value, instance, schema)

    return judge_unless_templated


_Rendered = jsonschema.Draft202012Validator
# (types-jsonschema leaves ``extend`` untyped)
_Unrendered = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
    _Rendered,
    {k: _template_aware(k, v) for k, v in _Rendered.VALIDATORS.items()},
)


@cache
def _validator(name: str, rendered: bool) -> jsonschema.protocols.Validator:
    spec = REGISTRY[name].argument
    assert isinstance(spec, Mapping)
    cls = _Rendered if rendered else _Unrendered
    return cls(dict(spec), format_checker=_FORMATS)


def argument_problem(name: str, argument: Any, *, rendered: bool) -> tuple[str, str] | None:
    """What is wrong with ``argument`` for the check ``name``: (where below the check, e.g.
    ``.max_calls`` or ``[1]``, and a message), or None when it fits.

    Before rendering (``rendered=False``) templated values are taken on trust: a string that
    is exactly one template fits anything, one with a template in it fits where a string does.
    """
    spec = REGISTRY[name].argument
    if not isinstance(spec, Mapping):
        if not rendered and names_in(argument):
            return None
        message = spec(argument)
        return None if message is None else ("", message)
    error = best_match(_validator(name, rendered).iter_errors(argument))
    if error is None:
        return None
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return where, _describe(error)


def _describe(error: ValidationError) -> str:
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        known = sorted(schema.get("properties", {}))
        extra = next((k for k in error.instance if k not in known), None)
        return f"unknown field {extra!r} (known: {', '.join(known)})"
    if error.validator == "format" and error.cause is not None:
        return f"{error.instance!r}: {error.cause}"
    if error.validator != "required" and "description" in schema:
        return f"expected {schema['description']}, got {error.instance!r}"
    return error.message


def prepare(expect: Mapping[str, Any], prelude: Prelude) -> dict[str, Any]:
    """Run the ``before`` hooks of the checks a step expects; raises CheckFailed."""
    out: dict[str, Any] = {}
    for name, argument in expect.items():
        hook = REGISTRY[name].before
        if hook is not None:
            out[name] = hook(prelude, argument)
    return out


def unavailable_reason(names: Iterable[str], target: Target) -> str | None:
    """Why one of the named checks cannot run on ``target``, or None."""
    for name in names:
        found = REGISTRY.get(name)
        reason = found.unavailable(target) if found and found.unavailable else None
        if reason:
            return reason
    return None
