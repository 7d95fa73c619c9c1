"""Where the suites, schemas and target profiles are: a clone's top-level directories, or the
copies an installed wheel ships inside the package (``gateprobe/_suites`` and so on)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["resource_dir"]

_PACKAGE = Path(__file__).resolve().parent
_SHIPPED = {
    "suites": "_suites",
    "schemas": "_schemas",
    "fixtures/targets": "_targets",
    "loadtests/profiles": "_loadprofiles",
}


def resource_dir(name: str) -> Path:
    """``suites``, ``schemas``, ``fixtures/targets`` or ``loadtests/profiles``."""
    in_clone = _PACKAGE.parent / name
    if in_clone.is_dir():
        return in_clone
    return _PACKAGE / _SHIPPED[name]
