"""The bundled mock in its own process, for a load run without ``--target``.

A load generator and the server it measures must not share an interpreter (one GIL, one
event loop): the mock runs as ``gateprobe mock`` in a child process with a fresh admin
token, and is provisioned with fresh keys like ``gateprobe run`` does.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gateprobe.provision import MOCK_TARGET, key_variables, provision_mock

__all__ = ["MockProcess"]


class MockProcess:
    def __init__(self, *, ttft_ms: float, itl_ms: float, cpu: int | None = None) -> None:
        self.ttft_ms = ttft_ms
        self.itl_ms = itl_ms
        self.cpu = cpu
        self.admin_token = f"gp-admin-{secrets.token_hex(8)}"
        self.url = ""
        self.env: dict[str, str] = {}
        self._process: subprocess.Popen[str] | None = None
        self._config: Path | None = None

    def start(self, timeout: float = 20.0) -> MockProcess:
        handle, name = tempfile.mkstemp(prefix="gateprobe-mock-", suffix=".yaml")
        with os.fdopen(handle, "w") as config:
            config.write(f"admin_token: {self.admin_token}\n")
        self._config = Path(name)
        command = [
            sys.executable, "-m", "gateprobe.cli", "mock", "--port", "0", "--quiet",
            "--config", name, "--ttft-ms", str(self.ttft_ms), "--itl-ms", str(self.itl_ms),
        ]  # fmt: skip
        self._process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        if self.cpu is not None and hasattr(os, "sched_setaffinity"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(self._process.pid, {self.cpu})
        assert self._process.stdout is not None
        deadline = time.monotonic() + timeout
        line = self._process.stdout.readline()
        if "listening on " not in line or time.monotonic() > deadline:
            self.stop()
            raise RuntimeError(f"the bundled mock did not start: {line.strip()!r}")
        self.url = line.rsplit("listening on ", 1)[1].strip()
        self.env = provision_mock(self.url, self.admin_token, key_variables(MOCK_TARGET))
        self.env["GATEPROBE_MOCK_URL"] = self.url
        return self

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process is not None and self._process.stdout is not None:
            self._process.stdout.close()
        if self._config is not None:
            self._config.unlink(missing_ok=True)
            self._config = None

    def __enter__(self) -> MockProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
