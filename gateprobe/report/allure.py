"""Allure labels and attachments for a scenario, and the results directory's extra files.

Imported only when allure-pytest is active. Every scenario gets feature = area,
story = scenario id, the target's name as a label and a parameter (so comparison runs keep
vendors apart), and its exchanges attached as masked JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

import allure

from gateprobe.runner import Outcome
from gateprobe.scenario import Instance
from gateprobe.target import Target

__all__ = ["CATEGORIES", "label_and_attach", "write_extras"]

# Failure families, matched in order against the failure message (allure categories.json).
CATEGORIES = [
    {
        "name": "Transport (timeout, reset, garbage)",
        "matchedStatuses": ["failed", "broken"],
        "messageRegex": ".*(transport|no response|timeout).*",
    },
    {"name": "Authentication", "matchedStatuses": ["failed"], "messageRegex": r".*\bauth.*"},
    {
        "name": "Error envelope",
        "matchedStatuses": ["failed"],
        "messageRegex": ".*(error_envelope|envelope).*",
    },
    {"name": "Stream framing", "matchedStatuses": ["failed"], "messageRegex": ".*stream.*"},
    {"name": "Schema", "matchedStatuses": ["failed"], "messageRegex": ".*json_schema.*"},
    {"name": "Status", "matchedStatuses": ["failed"], "messageRegex": ".*status.*"},
    {
        "name": "Declared deviation",
        "matchedStatuses": ["skipped"],
        "messageRegex": ".*declared deviation.*",
    },
]


def label_and_attach(instance: Instance, outcome: Outcome, target: Target) -> None:
    scenario = instance.scenario
    allure.dynamic.feature(scenario.area)
    allure.dynamic.story(scenario.id)
    allure.dynamic.title(
        f"{scenario.title} [{instance.param_id}]" if instance.param_id else scenario.title
    )
    allure.dynamic.label("target", target.name)
    allure.dynamic.parent_suite(target.name)
    allure.dynamic.parameter("target", target.name)
    for name, value in instance.params.items():
        allure.dynamic.parameter(name, str(value))
    redactor = target.redactor()
    for record in outcome.steps:
        if record.exchange is None:
            continue
        body = json.dumps(record.exchange.to_dict(redactor), indent=2)
        allure.attach(
            redactor.text(body),
            name=f"step {record.step.index + 1}: {record.step.name}",
            attachment_type=allure.attachment_type.JSON,
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
        f"base_url={target.base_url}",
        f"capabilities={','.join(sorted(target.capabilities))}",
    ]
    (directory / "environment.properties").write_text("\n".join(lines) + "\n", "utf-8")
    (directory / "categories.json").write_text(json.dumps(CATEGORIES, indent=2), "utf-8")
