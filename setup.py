"""Which packages the wheel holds: the one thing pyproject.toml cannot say for this project.

pyproject's ``[tool.setuptools] packages`` is either a fixed list (one left gateprobe/quota/
out of the wheel) or a find directive, never both, and a find directive cannot see the data
packages that ``[tool.setuptools.package-dir]`` maps onto top-level directories (schemas/ ->
gateprobe._schemas, ...). So: every package found under gateprobe/, so a new subpackage ships
without editing a list, plus the mapped ones. Everything else stays in pyproject.toml.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from setuptools import find_packages, setup  # type: ignore[import-untyped,unused-ignore]

_PYPROJECT = tomllib.loads((Path(__file__).parent / "pyproject.toml").read_text("utf-8"))
_MAPPED = list(_PYPROJECT["tool"]["setuptools"]["package-dir"])

setup(packages=[*find_packages(include=["gateprobe", "gateprobe.*"]), *_MAPPED])
