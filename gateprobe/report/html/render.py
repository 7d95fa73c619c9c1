"""The Jinja2 environment the three HTML reports share, and how a report reaches disk.

Templates autoescape everything (a gateway's answer is shown verbatim and may hold
``<script>``); only the plots' SVG, drawn here by matplotlib, is marked safe. The page
needs nothing at view time: the CSS is inlined from ``templates/style.css`` and the plots
are inline SVG.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from jinja2 import Environment, PackageLoader, StrictUndefined

from gateprobe import __version__

__all__ = ["VERDICTS", "environment", "fmt_number", "pretty", "render", "write_or_warn"]

VERDICTS = ("pass", "fail", "skip", "deviation")
_ENV: Environment | None = None


def fmt_number(value: Any, digits: int = 2) -> str:
    """A figure as shown: integers whole, floats with ``digits`` decimals, None as a dash."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def pretty(value: Any) -> str:
    """A JSON value (or a string holding JSON) indented for reading; other text as it is."""
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("{", "[") and len(text) < 200_000:
            try:
                return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
            except ValueError:
                pass
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _when(epoch: Any) -> str:
    import time

    if not isinstance(epoch, int | float):
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(epoch))


def environment() -> Environment:
    global _ENV
    if _ENV is None:
        # autoescape on for every template, whatever its name (.html.j2 is no ".html")
        env = Environment(
            loader=PackageLoader("gateprobe.report.html", "templates"),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.filters["num"] = fmt_number
        env.filters["pretty"] = pretty
        env.filters["when"] = _when
        env.globals["VERDICTS"] = VERDICTS
        env.globals["gateprobe_version"] = __version__
        _ENV = env
    return _ENV


def render(template: str, out: Path, **context: Any) -> Path:
    html = environment().get_template(template).render(**context)
    out.write_text(html, "utf-8")
    return out


def write_or_warn(
    write: Callable[[Path], Path], directory: Path, out: TextIO | None = None
) -> Path | None:
    """``write(directory)``, or one line saying why the HTML report was not written: a report
    must never change a run's outcome or exit code."""
    try:
        return write(directory)
    except Exception as exc:  # whatever broke, the run's result stands
        print(
            f"gateprobe: the HTML report was not written ({type(exc).__name__}: {exc})",
            file=out if out is not None else sys.stderr,
        )
        return None
