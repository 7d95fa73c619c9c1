"""Helpers of the HTML report tests: real runs against the bundled mock, and a parser that
reads back what a page shows (elements marked with ``data-*`` attributes) and what it links."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

GATEPROBE = Path(sys.executable).parent / "gateprobe"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
# attributes through which a page would fetch something when viewed
FETCHING = {"src", "href", "xlink:href", "action", "poster", "data", "srcset", "formaction"}


def gateprobe(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(GATEPROBE), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )


def only_dir(root: Path) -> Path:
    (found,) = [p for p in root.iterdir() if p.is_dir()]
    return found


def load_json(path: Path) -> Any:
    return json.loads(path.read_text("utf-8"))


@dataclass(frozen=True)
class Run:
    """A ``gateprobe run`` made for the tests, and the secrets its mock was provisioned with."""

    directory: Path
    secrets: dict[str, str]  # env variable -> the secret provisioned for the run
    result: subprocess.CompletedProcess[str]


@dataclass(frozen=True)
class Load:
    directory: Path
    output: str


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: str = ""


@dataclass
class Page(HTMLParser):
    """Every element with a ``data-*`` attribute (with its whole text), every tag name and
    every attribute value that could fetch something."""

    marked: list[Element] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    fetches: list[tuple[str, str, str]] = field(default_factory=list)  # (tag, attr, value)
    text: str = ""

    def __post_init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._open: list[tuple[str, list[str], Element | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self.tags.append(tag)
        for name, value in values.items():
            if name in FETCHING:
                self.fetches.append((tag, name, value))
        if tag in VOID:
            return
        marked = None
        if any(k.startswith("data-") for k in values):
            marked = Element(tag, values)
            self.marked.append(marked)
        self._open.append((tag, [], marked))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        # close up to the matching tag (HTML allows a few omitted end tags)
        for index in range(len(self._open) - 1, -1, -1):
            if self._open[index][0] == tag:
                for _, parts, marked in self._open[index:]:
                    if marked is not None:
                        marked.text = " ".join("".join(parts).split())
                del self._open[index:]
                return

    def handle_data(self, data: str) -> None:
        self.text += data
        for _, parts, _ in self._open:
            parts.append(data)

    def find(self, **attrs: str) -> list[Element]:
        """The marked elements whose data-<key> equal the values (``_`` for ``-`` in keys)."""
        wanted = {f"data-{k.replace('_', '-')}": v for k, v in attrs.items()}
        return [e for e in self.marked if all(e.attrs.get(k) == v for k, v in wanted.items())]

    def one(self, **attrs: str) -> Element:
        found = self.find(**attrs)
        assert len(found) == 1, (attrs, found)
        return found[0]

    def having(self, attribute: str) -> list[Element]:
        return [e for e in self.marked if f"data-{attribute}" in e.attrs]


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text("utf-8"))
    page.close()
    return page


def assert_offline(path: Path, page: Page) -> None:
    """Nothing in the page is fetched when it is viewed: no script or stylesheet from
    anywhere, no network address behind any src/href, no CSS url()/@import but to a
    fragment of the page."""
    html = path.read_text("utf-8")
    remote = [
        f
        for f in page.fetches
        if f[2].strip().lower().startswith(("http:", "https:", "//", "ftp:", "ws:", "wss:"))
    ]
    assert remote == [], remote
    assert "script" not in page.tags and "link" not in page.tags and "iframe" not in page.tags
    # the plots' clip paths are url(#id): in the page itself
    assert re.findall(r"url\(\s*['\"]?(?!#)[^)]*\)", html) == [] and "@import" not in html
