"""gateprobe's exceptions.

GateprobeError
├── UsageError        bad input to the harness: a file, option or environment variable;
│                     names the file, line and field; exit code 2, no traceback
└── CheckFailed       a conformance check failed: check id, expected, actual, where
"""

from __future__ import annotations

from typing import Any

__all__ = ["CheckFailed", "GateprobeError", "UsageError"]


class GateprobeError(Exception):
    """Base of every error gateprobe raises on purpose."""


class UsageError(GateprobeError):
    """Bad input to the harness; the message is complete and meant for the user."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        where = ""
        if file:
            where = f"{file}:{line}: " if line else f"{file}: "
        if field:
            where += f"{field}: "
        super().__init__(where + message)
        self.file, self.line, self.field = file, line, field


class CheckFailed(GateprobeError):
    """A check did not hold. ``where`` is a JSON path, an event index, or a header name."""

    def __init__(
        self,
        check: str,
        message: str,
        *,
        expected: Any = None,
        actual: Any = None,
        where: str | None = None,
    ) -> None:
        super().__init__(message)
        self.check = check
        self.message = message
        self.expected = expected
        self.actual = actual
        self.where = where
