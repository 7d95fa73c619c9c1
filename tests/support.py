"""Shared test constants and helpers: the default mock's keys and the admin header."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from gateprobe.mock import MockConfig

ADMIN = {"x-gateprobe-admin": "gp-admin-token"}
DEFAULT = MockConfig.default()
SECRETS = {k.name: k.secret for k in DEFAULT.keys}


def bearer(name: str = "valid") -> dict[str, str]:
    return {"Authorization": f"Bearer {SECRETS[name]}"}


def claude(name: str = "valid") -> dict[str, str]:
    return {"x-api-key": SECRETS[name], "anthropic-version": "2023-06-01"}


def goog(name: str = "valid") -> dict[str, str]:
    return {"x-goog-api-key": SECRETS[name]}


def sse_frames(raw: bytes) -> list[tuple[str | None, str]]:
    """(event name or None, data) of every frame: a deliberately simple, independent parser."""
    frames: list[tuple[str | None, str]] = []
    for block in re.split(r"\r?\n\r?\n", raw.decode()):
        if not block.strip():
            continue
        event: str | None = None
        data: list[str] = []
        for line in block.splitlines():
            if line.startswith("event:"):
                event = line[len("event:") :].strip()
            elif line.startswith("data:"):
                data.append(line[len("data:") :].removeprefix(" "))
        frames.append((event, "\n".join(data)))
    return frames


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
NUMBER = r"\d+(?:\.\d+)?"


def run_benchmark(name: str, *args: str) -> str:
    """Run a benchmarks/ script as a user would; it must exit 0 without a traceback."""
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / name), *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Traceback" not in output
    return result.stdout


def line_matching(pattern: str, text: str) -> re.Match[str]:
    match = re.search(pattern, text, re.MULTILINE)
    assert match, f"no line matching {pattern!r} in:\n{text}"
    return match


def bundled_scenario_count() -> int:
    """How many scenario instances the bundled suites hold (what a full run selects)."""
    from gateprobe._resources import resource_dir
    from gateprobe.scenario import load_scenarios

    suites = resource_dir("suites")
    return sum(
        len(list(scenario.instances()))
        for path in sorted(suites.rglob("*.yaml"))
        for scenario in load_scenarios(path, suites)
    )


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without what an outer run of the plugin may have exported."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GATEPROBE_", "PYTEST_", "GP_")) and k != "PYTHONPATH"
    }
    env.update(extra)
    return env
