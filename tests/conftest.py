"""Shared fixtures: the mock gateway on 127.0.0.1 and an OS-chosen port, stopped by its test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from support import DEFAULT

from gateprobe.mock import MockConfig, MockServer


@pytest.fixture
def mock_factory() -> Iterator[Callable[..., MockServer]]:
    """Start mocks with a custom config (``config=`` or field overrides); all stop at teardown."""
    started: list[MockServer] = []

    def start(config: MockConfig | None = None, **changes: Any) -> MockServer:
        cfg = (config or DEFAULT).replace(**changes) if changes else (config or DEFAULT)
        server = MockServer(cfg).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def mock(mock_factory: Callable[..., MockServer]) -> MockServer:
    """The mock with its embedded default configuration."""
    return mock_factory()


@pytest.fixture
def client(mock: MockServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mock.url, timeout=10.0) as c:
        yield c
