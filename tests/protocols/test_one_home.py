"""What each API is lives in gateprobe/protocols/ (and, independently, in the mock): no other
module compares a protocol or API name or keys a table by one, so adding a protocol touches no
check and no load code.
"""

from __future__ import annotations

import ast
from pathlib import Path

import gateprobe
from gateprobe import protocols

PACKAGE = Path(gateprobe.__file__).parent
NAMES = {*protocols.PROTOCOLS, *(api.name for api in protocols.APIS), "responses", "claude"}
# the homes of protocol knowledge: the harness's and the mock's own, independent one
HOMES = (PACKAGE / "protocols", PACKAGE / "mock")


def _compared_names(tree: ast.AST) -> list[tuple[int, str]]:
    """Protocol names written as values: compared against (``x == "gemini"``, ``x in
    ("openai", ...)``, ``match`` cases) or keying a table (``{("openai", "chat"): ...}``).
    Docstrings are prose, not values."""
    prose = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    return sorted(
        (node.lineno, str(node.value))
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value in NAMES and id(node) not in prose
    )


def test_no_module_outside_the_protocols_and_the_mock_compares_protocol_names() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if any(path.is_relative_to(home) for home in HOMES):
            continue
        for line, name in _compared_names(ast.parse(path.read_text(encoding="utf-8"))):
            offenders.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {name!r}")
    assert not offenders, "protocol names compared outside gateprobe/protocols/:\n" + "\n".join(
        offenders
    )


def test_the_scan_finds_a_comparison() -> None:
    # the rule above must be able to fail
    source = (
        '"""openai"""\nif protocol == "gemini":\n    pass\nPATHS = {("anthropic", "chat"): 1}\n'
    )
    assert _compared_names(ast.parse(source)) == [(2, "gemini"), (4, "anthropic")]
