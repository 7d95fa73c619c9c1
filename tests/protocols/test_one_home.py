"""What each API is lives in gateprobe/protocols/ (and, independently, in the mock): no other
module compares a protocol or API name, so adding a protocol touches no check, no load code.
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
    """Protocol names used as a value compared against: ``x == "gemini"``, ``x in
    ("openai", ...)``, ``match`` cases."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for operand in (node.left, *node.comparators):
                for const in ast.walk(operand):
                    if isinstance(const, ast.Constant) and const.value in NAMES:
                        found.append((node.lineno, str(const.value)))
        elif (
            isinstance(node, ast.MatchValue)
            and isinstance(node.value, ast.Constant)
            and node.value.value in NAMES
        ):
            found.append((node.lineno, str(node.value.value)))
    return found


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
    tree = ast.parse('if protocol == "gemini":\n    pass\nok = kind in ("anthropic", "x")\n')
    assert _compared_names(tree) == [(1, "gemini"), (3, "anthropic")]
