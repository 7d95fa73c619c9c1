"""``gateprobe compare``: targets side by side (conformance matrix and load figures).

command   running the targets, or reading run directories; writing the reports
matrix    compare.json from the runs' summary.json files
targets   what --target names: a profile file or a variant of the bundled mock
terminal  what the command prints
"""

from __future__ import annotations

from gateprobe.compare.command import CompareOptions, compare, read_run_dir
from gateprobe.compare.matrix import LOAD_METRICS, Column, build_comparison
from gateprobe.compare.targets import TargetSpec, parse_target

__all__ = [
    "LOAD_METRICS",
    "Column",
    "CompareOptions",
    "TargetSpec",
    "build_comparison",
    "compare",
    "parse_target",
    "read_run_dir",
]
