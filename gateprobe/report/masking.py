"""The redactor of one scenario's reports: the target's secrets and what its steps sent.

Every report of a scenario (summary.json, the failure text that junit.xml and the terminal
show, allure's attachments and status, the reason pytest prints) is masked with it, so a
``literal:`` key of a step, which the profile does not know, is masked as the profile's keys
are, wherever an answer echoes it.
"""

from __future__ import annotations

from gateprobe._redact import Redactor
from gateprobe.runner import Outcome
from gateprobe.target import Target

__all__ = ["outcome_redactor"]


def outcome_redactor(target: Target, outcome: Outcome) -> Redactor:
    redactor = target.redactor(r.request.secret for r in outcome.steps if r.request is not None)
    for record in outcome.steps:
        # credentials a step set by name (a header of its own, ?key=), masked by value too
        if record.request is not None:
            redactor.learn(record.request.headers, record.request.url)
        if record.exchange is not None:
            redactor.learn(record.exchange.request.headers, record.exchange.request.url)
    return redactor
