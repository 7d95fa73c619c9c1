"""Shared test constants and helpers: the default mock's keys and the admin header."""

from __future__ import annotations

import re

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
