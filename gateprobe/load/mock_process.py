"""The bundled mock in its own process, for a load run without ``--target``.

A load generator and the server it measures must not share an interpreter (one GIL, one
event loop): the mock runs as ``gateprobe mock`` in a child process with a fresh admin
token, and is provisioned with fresh keys like ``gateprobe run`` does.

Children of a load run (this mock, Locust) run in process groups of their own
(``child_process_options``): Ctrl-C at the terminal reaches ``gateprobe load`` alone, which
stops Locust first and the mock after it, so no request fails because the mock went first.
On Linux they also get SIGTERM when gateprobe dies without stopping them (killed, or its
terminal closed), so none is left behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gateprobe.provision import MOCK_TARGET, key_variables, provision_mock

__all__ = ["MockProcess", "child_process_options"]

_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()  # looked up here, not between fork and exec


def _die_with_parent() -> None:
    """Between fork and exec: SIGTERM this child when the thread that started it ends (the
    main thread of gateprobe, for a load run: so when gateprobe ends)."""
    _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


def child_process_options() -> dict[str, Any]:
    """Popen arguments for a child of a load run: its own process group, dying with us."""
    options: dict[str, Any] = {"process_group": 0}
    if _PRCTL is not None:
        options["preexec_fn"] = _die_with_parent
    return options


class MockProcess:
    """``gateprobe mock`` in a child process. ``workers`` > 1 serves from that many
    processes (``gateprobe mock --workers``), which needs ``mode="upstream"`` (any key, no
    quota): the default for more than one worker."""

    def __init__(
        self,
        *,
        ttft_ms: float,
        itl_ms: float,
        cpu: int | None = None,
        workers: int = 1,
        mode: str | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.mode = mode or ("upstream" if workers > 1 else "gateway")
        if workers > 1 and self.mode != "upstream":
            raise ValueError("more than one worker needs mode 'upstream'")
        self.ttft_ms = ttft_ms
        self.itl_ms = itl_ms
        self.cpu = cpu
        self.workers = workers
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
            "--mode", self.mode, "--workers", str(self.workers),
        ]  # fmt: skip
        self._process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            **child_process_options(),
        )
        try:  # an interrupt while it starts must not leave it running
            if self.cpu is not None and hasattr(os, "sched_setaffinity"):
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(self._process.pid, {self.cpu})
            assert self._process.stdout is not None
            deadline = time.monotonic() + timeout
            line = self._process.stdout.readline()
            if "listening on " not in line or time.monotonic() > deadline:
                raise RuntimeError(f"the bundled mock did not start: {line.strip()!r}")
            self.url = line.rsplit("listening on ", 1)[1].strip()
            self.env = provision_mock(self.url, self.admin_token, key_variables(MOCK_TARGET))
        except BaseException:
            self.stop()
            raise
        self.env["GATEPROBE_MOCK_URL"] = self.url
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (the mock ends its connections within 2 s), SIGKILL after ``timeout``."""
        try:
            if self._process is not None and self._process.poll() is None:
                self._process.terminate()
                try:
                    self._process.wait(timeout=timeout)
                except BaseException as exc:  # too slow, or interrupted while waiting
                    self._process.kill()
                    self._process.wait()
                    if not isinstance(exc, subprocess.TimeoutExpired):
                        raise
        finally:
            if self._process is not None and self._process.stdout is not None:
                self._process.stdout.close()
            if self._config is not None:
                self._config.unlink(missing_ok=True)
                self._config = None

    def __enter__(self) -> MockProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
