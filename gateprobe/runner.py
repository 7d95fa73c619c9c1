"""Running one scenario instance against a target: steps, checks, saved values, a verdict.

Verdicts: ``pass``; ``fail`` (a check failed); ``skip`` (the target does not claim a
required capability or provide a required key kind); ``deviation`` (every failed check is
one the target declares as a known deviation). The runner never raises for a gateway's
behaviour: transport failures are failed checks named ``transport``. Nor for the scenario's
or its own errors: a check argument that is wrong once rendered fails the check ``scenario``
before anything is sent, and an exception (a bug of gateprobe) fails the check ``internal``
(``Outcome.broken``), so one broken scenario does not stop a run.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from gateprobe import protocols
from gateprobe.breaker import active as hang_breaker
from gateprobe.capabilities import describe_missing
from gateprobe.checks import REGISTRY, CheckContext
from gateprobe.checks._registry import Prelude, argument_problem, prepare, unavailable_reason
from gateprobe.errors import (
    CheckFailed,
    GateprobeError,
    UsageError,
    debugging,
    internal_error,
    traceback_of,
)
from gateprobe.fault_delivery import delivery_problem
from gateprobe.http import Exchange, exchange
from gateprobe.request import BuiltRequest, build_request
from gateprobe.scenario import Instance, Step
from gateprobe.target import Deviation, Target
from gateprobe.templating import TemplateError, render, resolve_path

__all__ = ["INTERNAL", "Outcome", "StepRecord", "run_instance", "send", "skip_reason"]

# The check of a failure that is a bug of gateprobe, not a behaviour of the gateway.
INTERNAL = "internal"


@dataclass
class StepRecord:
    step: Step
    request: BuiltRequest | None = None
    exchange: Exchange | None = None
    failures: list[CheckFailed] = field(default_factory=list)
    deviations: list[tuple[CheckFailed, Deviation]] = field(default_factory=list)
    checks_run: list[str] = field(default_factory=list)
    warnings: list[CheckFailed] = field(default_factory=list)  # reported, never failing


@dataclass
class Outcome:
    verdict: str  # pass | fail | skip | deviation
    reason: str = ""
    steps: list[StepRecord] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)  # parameters and saved values
    duration: float = 0.0

    @property
    def failures(self) -> list[CheckFailed]:
        return [f for s in self.steps for f in s.failures]

    @property
    def warnings(self) -> list[CheckFailed]:
        return [w for s in self.steps for w in s.warnings]

    @property
    def deviations(self) -> list[tuple[CheckFailed, Deviation]]:
        return [d for s in self.steps for d in s.deviations]

    @property
    def broken(self) -> bool:
        """gateprobe broke running the scenario (verdict ``fail``, check ``internal``): the
        verdict says nothing about the gateway."""
        return any(f.check == INTERNAL for f in self.failures)


def _step_key_kinds(step: Step, params: dict[str, Any]) -> set[str]:
    kind = step.request.get("key", "valid")
    if kind is None:
        return set()
    try:
        rendered = render(kind, params)
    except TemplateError:
        return set()
    if rendered is None:  # a parameter that says "no key"
        return set()
    text = str(rendered)
    return set() if text.startswith("literal:") or "{" in text else {text}


def skip_reason(instance: Instance, target: Target) -> str | None:
    """Why this instance cannot run on this target, or None."""
    scenario, params = instance.scenario, instance.params
    for capability in scenario.capabilities:
        try:
            name = str(render(capability, params))
        except TemplateError:
            name = capability
        if not target.claims(name):
            return describe_missing(name, target.name)
    kinds = {str(render(k, params)) for k in scenario.key_kinds}
    for step in scenario.steps:
        kinds |= _step_key_kinds(step, params)
    missing = sorted(k for k in kinds if target.key(k) is None)
    if missing:
        return f"key kind {missing[0]!r} not provided by target {target.name!r}"
    for step in scenario.steps:
        entry = _step_model_of(step, params)
        if entry is not None and target.model(entry[0], entry[1]) is None:
            return f"no {entry[1]} model {entry[0]!r} in the models of target {target.name!r}"
    return unavailable_reason([n for step in scenario.steps for n in step.expect], target)


def _step_model_of(step: Step, params: dict[str, Any]) -> tuple[str, str] | None:
    """(target.models entry, protocol) a step takes its model from with ``model_of``."""
    if "model_of" not in step.request:
        return None
    try:
        entry = render(step.request["model_of"], params)
        protocol = render(step.request.get("protocol", protocols.primary(None).protocol), params)
    except TemplateError:
        return None
    text = str(entry)
    return None if "{" in text else (text, str(protocol))


def _save_view(ex: Exchange) -> dict[str, Any]:
    try:
        body: Any = ex.json()
    except ValueError:
        body = None
    events = []
    for event in ex.events:
        try:
            events.append(json.loads(event.data))
        except ValueError:
            events.append(event.data)
    return {
        "status": ex.status,
        "headers": dict(ex.headers),
        "json": body,
        "events": events,
        "body": ex.text(),
    }


def send(spec: Mapping[str, Any], target: Target, client: httpx.Client) -> Exchange:
    """Build a rendered request spec for ``target`` and send it; never raises for the gateway."""
    return send_built(build_request(spec, target), target, client)


def send_built(built: BuiltRequest, target: Target, client: httpx.Client) -> Exchange:
    # every request to the target passes here (steps, fault probes, quota probes, checks'
    # calls): the hang breaker sees them all and refuses them once the target went silent
    breaker = hang_breaker(target)
    if breaker is not None and breaker.tripped:
        return breaker.refuse(built, target)
    answer = exchange(
        client,
        built.method,
        target.base_url + built.url,
        headers=built.headers,
        json_body=built.json_body,
        content=built.content,
        limits=target.limits
        if built.read_timeout is None
        else dataclasses.replace(target.limits, read=built.read_timeout),
        json_array_stream=built.stream == "array",
        sse_stream=built.stream == "sse",
        disconnect_after_events=built.disconnect_after_events,
    )
    if breaker is not None:
        breaker.observe(built, answer)
    return answer


def run_instance(instance: Instance, target: Target, client: httpx.Client) -> Outcome:
    started = time.perf_counter()
    values: dict[str, Any] = dict(instance.params)
    records: list[StepRecord] = []
    try:
        return _run(instance, target, client, started, values, records)
    except Exception as exc:
        return _broken(instance, exc, started, values, records)


def _broken(
    instance: Instance,
    exc: Exception,
    started: float,
    values: dict[str, Any],
    records: list[StepRecord],
) -> Outcome:
    """The outcome of a scenario whose run raised: what it did so far, failed as ``internal``."""
    if isinstance(exc, CheckFailed):  # raised where nothing collects it: still a finding
        failure = exc
    elif isinstance(exc, GateprobeError):  # a check sent a request the scenario cannot make
        failure = CheckFailed("scenario", str(exc), where="scenario")
    else:
        message = internal_error(exc)
        if debugging():
            message += "\n" + traceback_of(exc)
        failure = CheckFailed(INTERNAL, message, where="gateprobe")
    if not records:  # it broke before the first step: the failure still needs one to sit in
        records.append(StepRecord(instance.scenario.steps[0]))
    records[-1].failures.append(failure)
    return Outcome(
        "fail",
        " | ".join(text for _, text in _grouped([f for r in records for f in r.failures])),
        steps=records,
        values=values,
        duration=time.perf_counter() - started,
    )


def _run(
    instance: Instance,
    target: Target,
    client: httpx.Client,
    started: float,
    values: dict[str, Any],
    records: list[StepRecord],
) -> Outcome:
    scenario = instance.scenario
    reason = skip_reason(instance, target)
    if reason is not None:
        return Outcome("skip", reason, values=dict(instance.params))
    for step in scenario.steps:
        record = StepRecord(step)
        records.append(record)
        # "{prefix}" and "{key}" stay as they are, for build_request to fill in.
        passthrough = {"prefix": "{prefix}", "key": "{key}"}
        context = {"target": target.template_view(), **passthrough, **values}
        try:
            spec = render(step.request, context)
            expect = render(step.expect, context)
            built = build_request(spec, target)
        except (TemplateError, UsageError) as exc:
            record.failures.append(CheckFailed("scenario", f"cannot build the request: {exc}"))
            break
        wrong = _wrong_argument(step, expect)
        if wrong is not None:  # before anything is sent: the scenario is wrong, not the gateway
            record.failures.append(wrong)
            break
        record.request = built
        call = functools.partial(send, target=target, client=client)
        if built.fault is not None:
            problem = delivery_problem(
                spec, built, target.name, target.base_url, target.directives, call
            )
            if problem is not None:
                records.pop()
                elapsed = time.perf_counter() - started
                return Outcome("skip", problem, steps=records, values=values, duration=elapsed)
        prelude = Prelude(target, scenario.id, built, call)
        try:  # checks that compare before and after (a balance) read "before" now
            before = prepare(expect, prelude)
        except CheckFailed as failed:
            record.failures.append(failed)
            break
        built = record.request = prelude.request  # a hook may have swapped the key
        ex = record.exchange = send_built(built, target, client)
        if ex.status is None:
            record.failures.append(
                CheckFailed(
                    "transport",
                    f"no response: {ex.error}",
                    expected="an HTTP response",
                    actual=ex.error,
                    where="transport",
                )
            )
        else:
            ctx = CheckContext(
                ex,
                target,
                scenario.id,
                built.protocol,
                built.stream,
                [built.secret] if built.secret else [],
                call=call,
                before=before,
                operation=built.operation,
            )
            for name, argument in expect.items():
                record.checks_run.append(name)
                # every finding: those the check recorded and went on past, and the one it
                # raised, if any
                record.failures.extend(ctx.run(name, argument))
            record.warnings.extend(ctx.warnings)
            if ex.error is not None and not any(REGISTRY[n].judges_the_end for n in expect):
                record.failures.append(
                    CheckFailed(
                        "transport",
                        f"the response was incomplete: {ex.error}",
                        expected="a complete response",
                        actual=ex.error,
                        where="body",
                    )
                )
        for failure in list(record.failures):
            deviation = target.deviation(scenario.id, failure.check)
            if deviation is not None and failure.check not in ("scenario", "transport"):
                record.failures.remove(failure)
                record.deviations.append((failure, deviation))
        if record.failures:
            break
        if ex.status is not None:
            view = _save_view(ex)
            for name, path in step.save.items():
                try:
                    values[name] = resolve_path(view, path)
                except TemplateError as exc:
                    record.failures.append(
                        CheckFailed(
                            "save", f"cannot save {name!r} from {path!r}: {exc}", where=path
                        )
                    )
            if record.failures:
                break
    outcome = Outcome("pass", steps=records, values=values, duration=time.perf_counter() - started)
    if outcome.failures:
        # every failed rule, not just the first: one defect must not hide the others
        outcome.verdict = "fail"
        outcome.reason = " | ".join(text for _, text in _grouped(outcome.failures))
    elif outcome.deviations:
        outcome.verdict = "deviation"
        reasons: dict[str, str] = {}
        for failure, deviation in outcome.deviations:
            reasons.setdefault(failure.check, deviation.reason)
        outcome.reason = " | ".join(
            f"declared deviation ({reasons[check]}): {text}"
            for check, text in _grouped([failure for failure, _ in outcome.deviations])
        )
    return outcome


def _wrong_argument(step: Step, expect: Mapping[str, Any]) -> CheckFailed | None:
    """A check argument that does not fit its check once its templates are rendered."""
    for name, argument in expect.items():
        problem = argument_problem(name, argument, rendered=True)
        if problem is None:
            continue
        site = f"steps[{step.index}].expect.{name}{problem[0]}"
        raw = step.expect.get(name)
        source = f" (rendered from {raw!r})" if raw != argument else ""
        return CheckFailed(
            "scenario",
            f"{site}: {problem[1]}{source}",
            expected="an argument the check takes",
            actual=argument,
            where="scenario",
        )
    return None


def _grouped(failures: list[CheckFailed]) -> list[tuple[str, str]]:
    """(check, text) per check, in the order the checks failed: the text is ``check: message``,
    or ``check: N findings: first; second`` when the check found several things wrong."""
    by_check: dict[str, list[str]] = {}
    for failure in failures:
        by_check.setdefault(failure.check, []).append(failure.message)
    return [
        (
            check,
            f"{check}: {messages[0]}"
            if len(messages) == 1
            else f"{check}: {len(messages)} findings: " + "; ".join(messages),
        )
        for check, messages in by_check.items()
    ]
