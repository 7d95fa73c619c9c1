"""gateprobe's exceptions, and the exit codes they end a command with.

GateprobeError
├── UsageError           bad input to the harness: a file, option or environment variable;
│                        names the file, line and field; exit code 2, no traceback
├── CheckFailed          a conformance check failed: check id, expected, actual, where
├── ProbeError           a quota probe could not read or change the gateway's figures
│                        (gateprobe/quota/base.py); the quota checks catch it
├── TemplateError        also a LookupError: a scenario template or saved path names
│                        something not there (gateprobe/templating.py)
└── SchemaNotFoundError  also a LookupError: no protocol schema of that ref, or a malformed
                         ref (gateprobe/schemas.py)

The subclasses outside this module are defined where they are raised (this module imports
none of them). A GateprobeError that reaches the command line ends it with exit code 2 and
its message; one other than CheckFailed that ends a scenario fails it with the check
``scenario``. Any other exception is a bug of gateprobe: exit code 4 with one line
(``internal_error``), the traceback only with ``--debug`` (``GATEPROBE_DEBUG=1``).
"""

from __future__ import annotations

import os
import traceback
from typing import Any

from gateprobe.exit_codes import ExitCode

__all__ = [
    "DEBUG_ENV",
    "CheckFailed",
    "ExitCode",
    "GateprobeError",
    "UsageError",
    "debugging",
    "internal_error",
    "traceback_of",
]

# Set by ``gateprobe --debug`` for the whole process tree: the suites run in pytest, perhaps in
# xdist workers, where the command line's flag is not at hand.
DEBUG_ENV = "GATEPROBE_DEBUG"


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


def debugging() -> bool:
    """Whether tracebacks of internal errors are wanted (``--debug``)."""
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def internal_error(exc: BaseException) -> str:
    """``ValueError: ...``: what went wrong inside gateprobe, on one line (a multi-line message
    is joined); unless debugging, with the hint that ``--debug`` shows the traceback."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if debugging() else f"{text} (run with --debug for the traceback)"


def traceback_of(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)).rstrip()
