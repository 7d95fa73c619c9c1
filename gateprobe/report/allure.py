"""Allure labels and attachments for a scenario, and the results directory's extra files.

Imported only when allure-pytest is active. Every scenario gets feature = area,
story = scenario id, the target's name as a label and a parameter (so comparison runs keep
vendors apart), and its exchanges attached as masked JSON, each followed by its step's curl
reproduction ("step N: curl reproduction", gateprobe/report/curl.py).

Statuses (set by the exception the plugin raises): a gateway that fails a check is *failed*
(an AssertionError: a product defect); an error of gateprobe or of the scenario (a check named
``scenario`` or ``internal``, a crash) is *broken* (a test defect). ``categories()`` sorts
them by family of checks.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import allure

from gateprobe.checks import REGISTRY
from gateprobe.report.curl import step_curl
from gateprobe.report.masking import outcome_redactor
from gateprobe.runner import Outcome
from gateprobe.scenario import Instance
from gateprobe.target import Target

__all__ = ["categories", "label_and_attach", "write_extras"]

# Families of gateway failures, by the checks that find them. A scenario's reason names each
# failed check first (``status: expected ... | stream: ...``) and allure's message is
# ``<exception>: <reason>``, so a family matches ``: <check>: `` or ``| <check>: ``.
_FAMILIES: dict[str, tuple[str, ...]] = {
    "Transport failures": ("transport",),
    "Stream grammar": (
        "stream",
        "stream_error",
        "stream_incremental",
        "stream_equals_plain",
        "stream_cancelled",
        "max_ttft_ms",
    ),
    "Error envelopes": ("error_envelope", "request_id"),
    "Quota and billing": (
        "quota_charged",
        "quota_logged",
        "quota_admission",
        "quota_burst",
        "budget_enforced",
    ),
    "Secret and credential leaks": ("no_secret_echo", "no_credential_leak"),
    # ``save``: a value the scenario saves from the answer was not in it
    "Status, headers and bodies": (
        "status",
        "headers",
        "content_type",
        "json",
        "json_schema",
        "save",
    ),
    "Models and capabilities": ("model_listed", "models_match_calls", "honours"),
}
# What a scenario says instead of a check when nothing could be sent (gateprobe/preflight.py).
_UNREACHABLE = " is unreachable at "


def _checks_regex(names: list[str]) -> str:
    # Only syntax Java's and Python's regular expressions read alike: allure is Java, the
    # tests match with Python's re.
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return rf".*(?:: |\| )(?:{alternatives}): .*"


def categories() -> list[dict[str, Any]]:
    """allure's categories.json: each family of gateway failures (*failed*), declared
    deviations, and gateprobe's or the scenario's own errors (*broken*).

    allure matches every category against a result's status and its whole message
    (``Pattern.matches`` with DOTALL) and lists the result under each one that matches. A
    check registered later that no family names is under "Other gateway failures", so every
    failed result has a category.
    """
    named = {n for names in _FAMILIES.values() for n in names}
    out: list[dict[str, Any]] = []
    for family, names in _FAMILIES.items():
        regex = _checks_regex(list(names))
        if family == "Transport failures":
            regex = f"(?:{regex}|.*{re.escape(_UNREACHABLE)}.*)"
        out.append({"name": family, "matchedStatuses": ["failed"], "messageRegex": regex})
    others = sorted(set(REGISTRY) - named)
    if others:
        out.append(
            {
                "name": "Other gateway failures",
                "matchedStatuses": ["failed"],
                "messageRegex": _checks_regex(others),
            }
        )
    out += [
        {
            # failed under --strict; skipped (pytest's xfail) otherwise
            "name": "Declared deviations",
            "matchedStatuses": ["failed", "skipped"],
            "messageRegex": r".*declared deviation \(.*",
        },
        {
            # every broken result: a scenario or internal error, or a crash
            "name": "gateprobe or scenario errors",
            "matchedStatuses": ["broken"],
            "messageRegex": ".*",
        },
    ]
    return out


def label_and_attach(instance: Instance, outcome: Outcome, target: Target) -> None:
    redactor = outcome_redactor(target, outcome)
    scenario = instance.scenario
    allure.dynamic.feature(scenario.area)
    allure.dynamic.story(scenario.id)
    title = f"{scenario.title} [{instance.param_id}]" if instance.param_id else scenario.title
    allure.dynamic.title(redactor.text(title))
    allure.dynamic.label("target", target.name)
    allure.dynamic.parent_suite(target.name)
    allure.dynamic.parameter("target", target.name)
    for name, value in instance.params.items():
        allure.dynamic.parameter(name, redactor.text(str(value)))
    for record in outcome.steps:
        if record.exchange is None:
            continue
        body = json.dumps(record.exchange.to_dict(redactor), indent=2)
        allure.attach(
            redactor.text(body),
            name=redactor.text(f"step {record.step.index + 1}: {record.step.name}"),
            attachment_type=allure.attachment_type.JSON,
        )
        command = step_curl(record.exchange.request, record.request, target, redactor)
        if command is not None:  # no secret in it: the key variables stand for the keys
            allure.attach(
                command,
                name=f"step {record.step.index + 1}: curl reproduction",
                attachment_type=allure.attachment_type.TEXT,
            )
        if record.warnings:  # SHOULD-level findings: reported, the verdict unchanged
            allure.attach(
                redactor.text("\n".join(f"{w.check}: {w.message}" for w in record.warnings)),
                name=f"step {record.step.index + 1}: warnings",
                attachment_type=allure.attachment_type.TEXT,
            )


def write_extras(directory: Path, target: Target) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    lines = [
        f"target={target.name}",
        f"base_url={target.redactor().text(target.base_url)}",  # a URL's password masked
        f"capabilities={','.join(sorted(target.capabilities))}",
    ]
    (directory / "environment.properties").write_text("\n".join(lines) + "\n", "utf-8")
    (directory / "categories.json").write_text(json.dumps(categories(), indent=2), "utf-8")
