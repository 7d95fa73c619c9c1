"""Checks: small named functions that a scenario's ``expect`` refers to.

Each check takes the step's ``CheckContext`` and its argument from the YAML, and raises
``CheckFailed`` (check id, expected, actual, where) when it does not hold. Adding a check is
adding one decorated function here and a self-test that makes it fail; the engine does not
change.
"""

from __future__ import annotations

# Importing the modules registers their checks.
from gateprobe.checks import (  # noqa: F401
    basic,
    budget,
    capabilities,
    envelope,
    leaks,
    models,
    quota,
    quota_admission,
    stream,
    stream_cancel,
    stream_equality,
    stream_errors,
    timing,
)
from gateprobe.checks._registry import REGISTRY, Check, CheckContext, check

__all__ = ["REGISTRY", "Check", "CheckContext", "check"]
