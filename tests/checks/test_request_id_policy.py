"""A request id on an error answer is a warning unless the target claims ``errors.request_id``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import httpx
from selftest import UNKNOWN_KEY, mock_target, run_all
from support import DEFAULT

from gateprobe.mock import MockServer

SCENARIO = f"""\
id: selftest.request_id_policy
title: request id on an error
steps:
  - request: {{protocol: openai, operation: chat, key: "literal:{UNKNOWN_KEY}"}}
    expect: {{status: 401, request_id: true}}
"""


def test_an_unclaimed_error_without_request_id_warns_and_passes(
    mock_factory: Callable[..., MockServer], tmp_path: Path
) -> None:
    server = mock_factory(DEFAULT)
    claimed = mock_target(server.url)
    assert claimed.claims("errors.request_id")
    other_header = dataclasses.replace(claimed.dialect, request_id_header="x-oneapi-request-id")
    unclaimed = dataclasses.replace(
        claimed,
        dialect=other_header,
        capabilities=claimed.capabilities - {"errors.request_id"},
    )
    with httpx.Client(timeout=10.0) as http:
        (outcome,) = run_all(tmp_path, SCENARIO, unclaimed, http)
        assert outcome.verdict == "pass", outcome.reason
        (warning,) = outcome.warnings
        assert warning.check == "request_id"
        assert warning.message == "no x-oneapi-request-id header in the error response"
        strict = dataclasses.replace(unclaimed, capabilities=claimed.capabilities)
        (outcome,) = run_all(tmp_path, SCENARIO, strict, http)
        assert outcome.verdict == "fail"
        assert "no x-oneapi-request-id header in the error response" in outcome.reason
