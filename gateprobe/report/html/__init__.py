"""Self-contained HTML reports: one file per run, load run and comparison.

Each page is a single HTML file that needs no network when viewed: inline CSS, inline SVG
plots (matplotlib), no script. Rendered with Jinja2 templates shipped in the package.
"""

from __future__ import annotations

from gateprobe.report.html.compare_view import write_compare_report
from gateprobe.report.html.load_view import write_load_report
from gateprobe.report.html.render import write_or_warn
from gateprobe.report.html.run_view import write_run_report

__all__ = ["write_compare_report", "write_load_report", "write_or_warn", "write_run_report"]
