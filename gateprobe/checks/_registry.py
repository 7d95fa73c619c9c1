"""The check registry and the context every check reads."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateprobe.errors import CheckFailed
from gateprobe.http import Exchange
from gateprobe.protocol import BuiltRequest
from gateprobe.target import Target

__all__ = ["REGISTRY", "Check", "CheckContext", "Prelude", "check", "prepare", "unavailable_reason"]


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


REGISTRY: dict[str, Check] = {}


def check(
    name: str,
    *,
    before: BeforeFn | None = None,
    unavailable: UnavailableFn | None = None,
    judges_the_end: bool = False,
) -> Callable[[CheckFn], CheckFn]:
    """Register ``fn`` as the check ``name`` (the key used under a step's ``expect``).

    ``before(prelude, argument)``, if given, runs just before the step's request is sent; the
    check reads what it returned as ``ctx.before[name]``. ``unavailable(target)``, if given,
    says why the check cannot run on a target: scenarios using it are then skipped with that
    reason. ``judges_the_end``: the check judges a body that ended in a transport error itself.
    """

    def register(fn: CheckFn) -> CheckFn:
        if name in REGISTRY:
            raise ValueError(f"check {name!r} registered twice")
        doc = (fn.__doc__ or "").strip().split("\n")[0]
        REGISTRY[name] = Check(name, fn, doc, before, unavailable, judges_the_end)
        return fn

    return register


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
