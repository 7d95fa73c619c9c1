"""The exit codes of every ``gateprobe`` command, in one place.

    0    passed
    1    some scenario failed (``gateprobe load``: some requests failed)
    2    usage or configuration error: a bad option or file, or nothing selected
    3    an SLO was breached (``gateprobe load``)
    4    internal error of gateprobe (one line; ``--debug`` shows the traceback)
    130  interrupted (Ctrl-C or SIGTERM)

Each command's ``--help`` epilog says what the codes it can return mean there
(``epilog``); the meanings differ a little (a mock stopped by Ctrl-C exited normally).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum

__all__ = ["MEANINGS", "ExitCode", "epilog"]


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    SLO_BREACHED = 3
    INTERNAL = 4
    INTERRUPTED = 130


MEANINGS: Mapping[ExitCode, str] = {
    ExitCode.OK: "passed",
    ExitCode.FAILED: "some scenario failed (gateprobe load: some requests failed)",
    ExitCode.USAGE: "usage or configuration error (a bad option or file; nothing selected)",
    ExitCode.SLO_BREACHED: "an SLO was breached (gateprobe load)",
    ExitCode.INTERNAL: "internal error of gateprobe (--debug shows the traceback)",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C or SIGTERM)",
}


def epilog(meanings: Mapping[ExitCode, str]) -> str:
    """The ``exit codes:`` paragraph of a command's help: one line per code it returns."""
    lines = ["exit codes:"]
    lines += [f"  {int(code):<4} {meanings[code]}" for code in sorted(meanings)]
    return "\n".join(lines)
