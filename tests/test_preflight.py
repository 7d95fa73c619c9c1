"""The reachability preflight: a target that is not there fails every scenario at once, once said.

``gateprobe run`` against a refused port is run as a user runs it (the installed script in a
subprocess): every scenario that is not skipped fails with the same one-line reason, nothing
is sent, and the run says it once at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gateprobe.preflight import unreachable
from gateprobe.target import Target

TARGET = """\
name: nowhere
base_url: http://127.0.0.1:{port}
keys: {{valid: GP_PREFLIGHT_KEY}}
models:
  chat: {{openai: gpt-4o-mini, anthropic: claude-sonnet-4-5, gemini: gemini-2.5-flash}}
capabilities: [openai.chat, openai.models, anthropic.chat, gemini.chat, gemini.models]
timeouts: {{connect: 2, read: 2, total: 4}}
"""


def refused_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_a_listening_target_is_reachable() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert unreachable(Target("up", f"http://127.0.0.1:{port}")) is None


def test_a_refused_target_is_described_in_one_line() -> None:
    port = refused_port()
    reason = unreachable(Target("down", f"http://127.0.0.1:{port}"))
    assert reason == (
        f"target 'down' is unreachable at http://127.0.0.1:{port} (connection refused); "
        "no request was sent"
    )


def test_an_unknown_host_is_described() -> None:
    reason = unreachable(Target("typo", "http://gateprobe-no-such-host.invalid"))
    assert reason is not None and "unreachable" in reason
    assert "http://gateprobe-no-such-host.invalid" in reason


def test_behind_a_proxy_the_target_is_not_probed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:3128")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert unreachable(Target("proxied", f"http://10.255.255.1:{refused_port()}")) is None


def test_run_against_a_refused_target_fails_every_scenario_fast_with_one_message(
    tmp_path: Path,
) -> None:
    port = refused_port()
    profile = tmp_path / "nowhere.yaml"
    profile.write_text(TARGET.format(port=port), "utf-8")
    beside = Path(sys.executable).parent / "gateprobe"
    script = str(beside) if beside.exists() else shutil.which("gateprobe")
    assert script is not None, "the gateprobe console script is not installed"
    env = {**os.environ, "GP_PREFLIGHT_KEY": "sk-gp-preflight-0123456789abcdef"}
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [script, "run", "--target", str(profile), "--report-dir", str(tmp_path / "reports")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    message = (
        f"target 'nowhere' is unreachable at http://127.0.0.1:{port} (connection refused); "
        "no request was sent"
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"gateprobe: {message}" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert "ConnectError" not in result.stdout  # one clear reason, not a transport error each
    (summary_path,) = (tmp_path / "reports").glob("*/summary.json")
    summary = json.loads(summary_path.read_text("utf-8"))
    failed = [s for s in summary["scenarios"] if s["verdict"] == "fail"]
    assert len(failed) >= 10
    assert summary["totals"]["pass"] == 0
    for scenario in failed:
        assert scenario["reason"] == message
        assert scenario["steps"] == []  # nothing was sent
    skipped = [s for s in summary["scenarios"] if s["verdict"] == "skip"]
    assert skipped
    assert all("target 'nowhere'" in s["reason"] for s in skipped)  # skipped for their reasons


def test_the_reason_never_shows_credentials_in_the_url() -> None:
    port = refused_port()
    reason = unreachable(Target("down", f"http://user:s3cret-pass@127.0.0.1:{port}/api"))
    assert reason is not None
    assert "s3cret" not in reason and "user" not in reason
    assert f"http://127.0.0.1:{port}/api" in reason
