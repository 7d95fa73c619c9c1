"""The text a failed scenario shows: its YAML, resolved values, a diff, the exchange and a curl
command reproducing each failed step (gateprobe/report/curl.py). Masked."""

from __future__ import annotations

import json
from typing import Any

from gateprobe.breaker import REASON_PREFIX
from gateprobe.report.curl import step_curl
from gateprobe.report.masking import outcome_redactor
from gateprobe.runner import Outcome
from gateprobe.scenario import Instance
from gateprobe.target import Target

__all__ = ["format_failure", "shorten"]


def shorten(value: Any, limit: int = 300) -> str:
    """``value`` as text (JSON unless a string), cut at ``limit`` saying how much more."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text) - limit} more)"


def format_failure(instance: Instance, outcome: Outcome, target: Target) -> str:
    redactor = outcome_redactor(target, outcome)  # its literal keys too
    scenario = instance.scenario
    out = [
        f"scenario {instance.name}: {scenario.title}",
        f"  {scenario.path}:{scenario.line}  (target {target.name})",
    ]
    for number, line in enumerate(scenario.source_lines(), start=scenario.line):
        out.append(f"  {number:>4} | {line}")
    if outcome.values:
        values = {k: shorten(v, 120) for k, v in outcome.values.items()}
        out.append(f"resolved values: {redactor.text(json.dumps(values))}")
    for record in outcome.steps:
        step = record.step
        marker = "FAILED" if record.failures else "ok"
        out.append(f"step {step.index + 1} {step.name!r} (line {step.line}): {marker}")
        for failure in record.failures:
            out.append(f"  x {failure.check}: {redactor.text(failure.message)}")
            if failure.where or failure.expected is not None or failure.actual is not None:
                out.append(f"      where:    {failure.where}")
                out.append(f"      expected: {redactor.text(shorten(failure.expected))}")
                out.append(f"      actual:   {redactor.text(shorten(failure.actual))}")
        for warning in record.warnings:
            out.append(f"  ! {warning.check} (warning): {redactor.text(warning.message)}")
        for failure, deviation in record.deviations:
            out.append(
                f"  ~ {failure.check} (declared deviation: {deviation.reason}): "
                f"{redactor.text(failure.message)}"
            )
        if record.exchange is not None and record.failures:
            out.extend(_exchange_lines(record.exchange.to_dict(redactor)))
        if record.failures:
            command = step_curl(
                record.exchange.request if record.exchange else None,
                record.request,
                target,
                redactor,
            )
            if command is not None:
                out.append("  reproduce (the target profile's key variables set):")
                out.extend(f"    {line}" for line in command.splitlines())
    # The scenario's own lines may carry a secret too (a literal key, a key in a body).
    return redactor.text("\n".join(out))


def _exchange_lines(ex: dict[str, Any]) -> list[str]:
    request = ex["request"]
    if ex["status"] is None and (ex["error"] or "").startswith(REASON_PREFIX):
        # refused by the hang breaker: there is no exchange to show, only why
        return [f"  > {request['method']} {request['url']}  (not sent)", f"  ! {ex['error']}"]
    lines = [f"  > {request['method']} {request['url']}"]
    lines += [f"  > {k}: {v}" for k, v in request["headers"].items()]
    if request["body"]:
        lines.append(f"  > {shorten(request['body'], 600)}")
    lines.append(f"  < HTTP {ex['status']}  ({ex['elapsed_ms']} ms, first byte {ex['ttfb_ms']} ms)")
    lines += [f"  < {k}: {v}" for k, v in ex["headers"].items()]
    if ex["body"]:
        lines.append(f"  < {shorten(ex['body'], 1200)}")
    for event in ex["events"][:40]:
        name = f"event: {event['event']} " if event["event"] else ""
        lines.append(
            f"  < [{event['index']:>3} +{event['t_ms']:>9.1f} ms] {name}"
            f"data: {shorten(event['data'], 200)}"
        )
    if len(ex["events"]) > 40:
        lines.append(f"  < … {len(ex['events']) - 40} more events")
    for element in ex["elements"][:40]:
        lines.append(
            f"  < [{element['index']:>3} +{element['t_ms']:>9.1f} ms] "
            f"{shorten(element['text'], 200)}"
        )
    metrics = ex.get("stream_metrics")
    if metrics:
        gaps = metrics["gaps_ms"] or {}
        lines.append(
            f"  ~ stream: ttft {metrics['ttft_ms']} ms ({metrics['ttft_at']}), "
            f"{metrics['output_events']} output events of {metrics['events']}, "
            f"{metrics['network_chunks']} network chunks, output tokens "
            f"{metrics['output_tokens']}, gaps median {gaps.get('median')} ms, "
            f"max {gaps.get('max')} ms"
        )
    if ex["stream_problem"]:
        lines.append(f"  ! stream: {ex['stream_problem']}")
    if ex["error"]:
        lines.append(f"  ! transport: {ex['error']}")
    return lines
