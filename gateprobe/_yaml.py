"""YAML loading that remembers where each value came from, for errors that name a line."""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["YamlDocument", "load_yaml"]


class YamlDocument:
    """Parsed YAML data plus the 1-based line of every field path (``keys[0].account``)."""

    def __init__(self, data: Any, lines: dict[str, int], first_line: int = 1) -> None:
        self.data = data
        self.lines = lines
        self.first_line = first_line

    def shifted(self, offset: int) -> YamlDocument:
        """The same document, as if it started ``offset`` lines further down its file."""
        if not offset:
            return self
        lines = {path: line + offset for path, line in self.lines.items()}
        return YamlDocument(self.data, lines, self.first_line + offset)

    def line_of(self, path: str) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        while path:
            if path in self.lines:
                return self.lines[path]
            cut = max(path.rfind("."), path.rfind("["))
            if cut <= 0:
                break
            path = path[:cut]
        return self.lines.get(path)


def load_yaml(text: str) -> YamlDocument:
    """Parse ``text`` safely; raises ``yaml.YAMLError`` with its own mark on bad syntax."""
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    data = yaml.safe_load(text)
    lines: dict[str, int] = {}
    if node is not None:
        _walk(node, "", lines)
    return YamlDocument(data, lines)


def _walk(node: yaml.Node, path: str, lines: dict[str, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            name = str(key_node.value)
            child = f"{path}.{name}" if path else name
            lines[child] = key_node.start_mark.line + 1
            _walk(value_node, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            child = f"{path}[{i}]"
            lines[child] = item.start_mark.line + 1
            _walk(item, child, lines)
