"""docs/checks.md is generated from the registry and the self-test cases, and is current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from checks_doc import COMMAND, DOC, HERE, ROOT, render

from gateprobe.checks import REGISTRY


def test_the_checks_doc_is_current() -> None:
    assert DOC.is_file(), f"docs/checks.md is missing: run {COMMAND}"
    assert DOC.read_text("utf-8") == render(), f"docs/checks.md is stale: run {COMMAND}"


def test_the_doc_lists_every_check_with_its_proof() -> None:
    text = render()
    for name in REGISTRY:
        row = next(line for line in text.splitlines() if line.startswith(f"| `{name}` |"))
        assert "**none**" not in row, f"{name} has no self-test case"
        assert "→" in row


def test_the_generator_runs_as_a_script(tmp_path: Path) -> None:
    output = tmp_path / "checks.md"
    result = subprocess.run(
        [sys.executable, str(HERE / "checks_doc.py"), "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"wrote {output}" in result.stdout
    assert output.read_text("utf-8") == render()
