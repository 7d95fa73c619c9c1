"""The check registry and the context every check reads."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateprobe.http import Exchange
from gateprobe.target import Target

__all__ = ["REGISTRY", "Check", "CheckContext", "check"]


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


CheckFn = Callable[[CheckContext, Any], None]


@dataclass(frozen=True)
class Check:
    name: str
    fn: CheckFn
    doc: str


REGISTRY: dict[str, Check] = {}


def check(name: str) -> Callable[[CheckFn], CheckFn]:
    """Register ``fn`` as the check ``name`` (the key used under a step's ``expect``)."""

    def register(fn: CheckFn) -> CheckFn:
        if name in REGISTRY:
            raise ValueError(f"check {name!r} registered twice")
        REGISTRY[name] = Check(name, fn, (fn.__doc__ or "").strip().split("\n")[0])
        return fn

    return register
