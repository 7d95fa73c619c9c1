"""Helpers of the interrupt and hang tests: a silent TCP server, and a gateprobe command run
in its own session the way a terminal runs it, signalled and timed.

``SilentServer`` accepts connections on 127.0.0.1 (an OS-chosen port), reads what comes and
never answers: a gateway that hangs. ``Command`` starts ``python -m gateprobe.cli ...`` in a
new session with SIGINT at its default action (a test runner started in the background
inherits SIGINT ignored, and Python then never raises KeyboardInterrupt), collects its output
as it comes, and sends it a signal the way Ctrl-C (its whole process group) or ``kill`` (its
pid) would.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

import psutil

REPO = Path(__file__).resolve().parents[1]
MOCK_PROFILE = REPO / "fixtures" / "targets" / "mock.yaml"
# Starts the real command with SIGINT at SIG_DFL: exec keeps a handler reset to the default.
_DEFAULT_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)


class SilentServer:
    """Accepts, reads, never answers. ``requests``: connections that sent something."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port: int = self._sock.getsockname()[1]
        self.connections = 0
        self.requests = 0
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="silent-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopped.set()
        with contextlib.suppress(OSError):  # wakes the accept() close() alone leaves blocked
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._thread.join(timeout=5)
        with self._lock:
            for conn in self._open:
                conn.close()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._open.append(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        counted = False
        try:
            while conn.recv(65536):
                if not counted:
                    counted = True
                    with self._lock:
                        self.requests += 1
        except OSError:
            pass


def silent_profile(directory: Path, server: SilentServer) -> tuple[Path, dict[str, str]]:
    """The bundled mock's profile, timeouts and all, pointing at ``server``; and the
    environment its key variables need (values that no gateway would take)."""
    text = MOCK_PROFILE.read_text("utf-8")
    text = re.sub(r"(?m)^base_url: .*$", f"base_url: {server.url}", text)
    text = re.sub(r"(?m)^provision: .*\n", "", text)
    path = directory / "silent.yaml"
    path.write_text(text.replace("name: bundled-mock", "name: silent-gateway"), "utf-8")
    names = re.findall(r"(?m)^\s+\w+: (GATEPROBE_MOCK_[A-Z0-9_]+)$", text)
    return path, {name: f"sk-silent-{name.lower()}" for name in names}


class Command:
    """``gateprobe <args>`` in a session of its own, its output collected as it comes."""

    def __init__(self, args: Sequence[str], *, env: dict[str, str] | None = None) -> None:
        # none of this test run's own settings (a mock's URL, pytest options) leak in
        inherited = {
            k: v for k, v in os.environ.items() if not k.startswith(("GATEPROBE_", "PYTEST_"))
        }
        full_env = {**inherited, **(env or {}), "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-c", _DEFAULT_SIGINT, "-m", "gateprobe.cli", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=full_env,
            cwd=str(REPO),
        )
        self._chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._read, name="command-output", daemon=True)
        self._reader.start()
        self.descendants: list[psutil.Process] = []

    def _read(self) -> None:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        while chunk := os.read(fd, 65536):
            self._chunks.append(chunk)

    @property
    def output(self) -> str:
        return b"".join(self._chunks).decode("utf-8", "replace")

    def wait_until(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.process.poll() is not None:
                raise AssertionError(f"ended (exit {self.process.returncode}) before {what}:\n"
                                     f"{self.output}")  # fmt: skip
            if time.monotonic() > deadline:
                raise AssertionError(f"not {what} within {timeout:g} s:\n{self.output}")
            time.sleep(0.05)

    def snapshot_descendants(self) -> list[psutil.Process]:
        """Every process below the command now (to check none is left once it ended)."""
        try:
            found = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            found = []
        known = {p.pid for p in self.descendants}
        self.descendants += [p for p in found if p.pid not in known]
        return self.descendants

    def interrupt(self, sig: signal.Signals, *, group: bool, timeout: float = 30.0) -> float:
        """Send ``sig`` (to the whole process group, as Ctrl-C does, or to the pid, as
        ``kill`` does); the seconds until the command exited."""
        self.snapshot_descendants()
        started = time.monotonic()
        if group:
            os.killpg(self.process.pid, sig)
        else:
            self.process.send_signal(sig)
        self.process.wait(timeout=timeout)
        elapsed = time.monotonic() - started
        self._reader.join(timeout=5)
        return elapsed

    def left_behind(self, grace: float = 1.0) -> list[str]:
        """Descendants still alive (zombies are dead) after a short grace."""
        deadline = time.monotonic() + grace
        while True:
            alive = [p for p in self.descendants if _alive(p)]
            if not alive or time.monotonic() > deadline:
                return [f"{p.pid} {' '.join(_cmdline(p))[:120]}" for p in alive]
            time.sleep(0.05)

    def kill_all(self) -> None:
        """Cleanup whatever happened: the command's group and every descendant seen."""
        for proc in self.snapshot_descendants():
            if _alive(proc):
                proc.kill()
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self._reader.join(timeout=5)
            self.process.stdout.close()


def _alive(proc: psutil.Process) -> bool:
    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return list(proc.cmdline())
    except psutil.Error:
        return ["?"]


def run_dir(root: Path) -> Path:
    (found,) = [p for p in root.iterdir() if p.is_dir()]
    return found
