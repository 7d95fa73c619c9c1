"""End-to-end tests of the ``gateprobe`` console script, run as a new user would run it.

Each test starts the real installed script in a subprocess (never ``main()`` in-process), so
argument parsing, exit codes, stdout/stderr, signal handling and the server stack are the
ones a user gets. Servers bind 127.0.0.1 on an OS-chosen port (``--port 0``) and are always
killed in a ``finally`` block.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import SECRETS

from gateprobe.mock.defects import DEFECTS

LISTENING = re.compile(r"^gateprobe mock listening on (http://127\.0\.0\.1:(\d+))$")
START_TIMEOUT = 20.0  # generous: other test runs share the two cores
STOP_TIMEOUT = 10.0
MOCK_OPTIONS = (
    "--host",
    "--port",
    "--config",
    "--mode",
    "--defect",
    "--seed",
    "--ttft-ms",
    "--itl-ms",
    "--path-style",
    "--insufficient-quota-status",
    "--rpm",
    "--quiet",
)
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}]}


def _script() -> str:
    beside = Path(sys.executable).parent / "gateprobe"
    if beside.exists():
        return str(beside)
    found = shutil.which("gateprobe")
    assert found is not None, "the gateprobe console script is not installed"
    return found


def _env(**extra: str) -> dict[str, str]:
    # nothing an outer run of the plugin may have exported (its target, its debug switch)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEPROBE_", "PYTEST_"))}
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTHONPATH", None)  # the installed package, as a user has it
    env.update(extra)
    return env


def run_cli(
    *args: str, timeout: float = 60.0, cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """The console script with ``args``; ``env`` adds variables (``PYTHONPATH`` included)."""
    return subprocess.run(
        [_script(), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(**env),
        stdin=subprocess.DEVNULL,
        cwd=cwd,
    )


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The first stdout line, waiting at most ``timeout`` seconds."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise AssertionError(f"no stdout line within {timeout:g}s")
    return proc.stdout.readline().rstrip("\n")


class RunningMock:
    def __init__(self, proc: subprocess.Popen[str], url: str) -> None:
        self.proc = proc
        self.url = url

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> tuple[int, str]:
        """Send ``sig``; the exit code and everything the mock wrote on stderr."""
        self.proc.send_signal(sig)
        _, err = self.proc.communicate(timeout=STOP_TIMEOUT)
        return self.proc.returncode, err


@contextmanager
def running_mock(*args: str) -> Iterator[RunningMock]:
    proc = subprocess.Popen(
        [_script(), "mock", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=_env(),
    )
    try:
        line = _read_line(proc, START_TIMEOUT)
        match = LISTENING.match(line)
        assert match, f"unexpected first stdout line: {line!r}"
        assert int(match.group(2)) > 0
        yield RunningMock(proc, match.group(1))
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=STOP_TIMEOUT)


# -- the server ------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_mock_serves_logs_each_request_and_stops_cleanly(sig: signal.Signals) -> None:
    valid = SECRETS["valid"]
    unknown = "sk-not-a-real-key-424242"
    with running_mock() as mock:
        # The URL printed is usable at once: no retry loop before the first call.
        with httpx.Client(base_url=mock.url, timeout=10.0) as client:
            ok = client.post(
                "/v1/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {valid}"}
            )
            models = client.get("/v1/models", headers={"Authorization": f"Bearer {valid}"})
            refused = client.post(
                "/v1/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {unknown}"}
            )
        assert ok.status_code == 200
        reply = ok.json()
        assert reply["object"] == "chat.completion"
        assert reply["choices"][0]["message"]["content"]
        assert reply["usage"]["completion_tokens"] > 0
        assert models.status_code == 200
        assert "gpt-4o-mini" in {m["id"] for m in models.json()["data"]}
        assert refused.status_code == 401
        calls = [
            (ok.headers["x-request-id"], "/v1/chat/completions", 200),
            (models.headers["x-request-id"], "/v1/models", 200),
            (refused.headers["x-request-id"], "/v1/chat/completions", 401),
        ]
        started = time.monotonic()
        code, err = mock.stop(sig)
        stopped_in = time.monotonic() - started
    assert code == 0, f"exit {code} after {sig.name}; stderr:\n{err}"
    assert stopped_in < STOP_TIMEOUT
    assert "Traceback" not in err
    for request_id, path, status in calls:
        lines = [line for line in err.splitlines() if request_id in line]
        assert len(lines) == 1, f"{request_id}: expected one log line, got {lines}"
        assert path in lines[0]
        assert re.search(rf"\s{status}\s", lines[0]), lines[0]
    assert valid not in err
    assert unknown not in err


def test_quiet_mock_writes_no_request_lines() -> None:
    with running_mock("--quiet") as mock:
        response = httpx.post(
            f"{mock.url}/v1/chat/completions",
            json=CHAT,
            headers={"Authorization": f"Bearer {SECRETS['valid']}"},
            timeout=10.0,
        )
        assert response.status_code == 200
        code, err = mock.stop()
    assert code == 0
    assert response.headers["x-request-id"] not in err


def test_stream_without_done_and_with_first_token_delay() -> None:
    with running_mock("--defect", "missing-done", "--ttft-ms", "50") as mock:
        started = time.perf_counter()
        first_content: float | None = None
        events: list[str] = []
        with (
            httpx.Client(base_url=mock.url, timeout=10.0) as client,
            client.stream(
                "POST",
                "/v1/chat/completions",
                json={**CHAT, "stream": True},
                headers={"Authorization": f"Bearer {SECRETS['valid']}"},
            ) as response,
        ):
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[len("data:") :].strip()
                events.append(data)
                if data == "[DONE]":
                    continue
                delta = json.loads(data)["choices"][0]["delta"]
                if delta.get("content") and first_content is None:
                    first_content = time.perf_counter() - started
        code, _ = mock.stop()
    assert code == 0
    assert events, "the stream carried no events"
    assert "[DONE]" not in events
    assert json.loads(events[-1])["choices"][0]["finish_reason"] == "stop"
    assert first_content is not None
    assert first_content >= 0.050


def test_upstream_mode_takes_any_key_and_refuses_unknown_models_as_a_provider_does() -> None:
    with running_mock("--mode", "upstream") as mock:
        anyone = {"Authorization": "Bearer whatever-anyone-sends"}
        response = httpx.post(
            f"{mock.url}/v1/chat/completions",
            json={**CHAT, "model": "claude-sonnet-4-5--chunks-3"},
            headers=anyone,
            timeout=10.0,
        )
        unknown = httpx.post(
            f"{mock.url}/v1/chat/completions",
            json={**CHAT, "model": "acme-llm-7b-chat"},
            headers=anyone,
            timeout=10.0,
        )
        code, _ = mock.stop()
    assert code == 0
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "claude-sonnet-4-5--chunks-3"
    assert len(body["choices"][0]["message"]["content"].split()) == 3
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "model_not_found"


# -- usage and errors --------------------------------------------------------------------------


def test_mock_help_lists_every_option_and_defect() -> None:
    result = run_cli("mock", "--help")
    assert result.returncode == 0
    for option in MOCK_OPTIONS:
        assert option in result.stdout, option
    for name in DEFECTS:
        assert name in result.stdout, name


def test_defect_list_prints_every_defect() -> None:
    result = run_cli("mock", "--defect", "list")
    assert result.returncode == 0
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.strip()}
    assert listed == set(DEFECTS)


def test_unknown_defect_is_a_usage_error() -> None:
    result = run_cli("mock", "--port", "0", "--defect", "nope")
    assert result.returncode == 2
    assert "'nope'" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "listening" not in result.stdout


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        ("seed: 1\naccounts:\n  - {name: main, balance: -5}\n", 3, "accounts[0].balance"),
        (
            "accounts:\n  - {name: a, balance: 1}\n"
            "keys:\n  - {name: k, secret: sk-x, account: b}\n",
            4,
            "keys[0].account",
        ),
        ("seed: 1\nmode: sideways\n", 2, "mode"),
    ],
    ids=["negative-balance", "unknown-account", "bad-mode"],
)
def test_broken_config_names_file_line_and_field(
    tmp_path: Path, text: str, line: int, field: str
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    result = run_cli("mock", "--port", "0", "--config", str(path))
    assert result.returncode == 2
    assert f"{path}:{line}" in result.stderr
    assert field in result.stderr
    assert "Traceback" not in result.stderr


def test_config_with_yaml_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "syntax.yaml"
    path.write_text("seed: 1\nmode: [gateway\n")
    result = run_cli("mock", "--port", "0", "--config", str(path))
    assert result.returncode == 2
    assert str(path) in result.stderr
    assert "invalid YAML" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_config_file_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    result = run_cli("mock", "--port", "0", "--config", str(path))
    assert result.returncode == 2
    assert str(path) in result.stderr
    assert "Traceback" not in result.stderr


def test_port_in_use_is_a_usage_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("mock", "--port", str(port))
    assert result.returncode == 2
    assert f"127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_no_command_is_a_usage_error() -> None:
    result = run_cli()
    assert result.returncode == 2
    assert "mock" in result.stdout + result.stderr
    assert "demo" in result.stdout + result.stderr


# -- the demo ----------------------------------------------------------------------------------


def test_demo_passes_against_the_default_mock() -> None:
    result = run_cli("demo")
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b\d+ passed, 0 failed\b", result.stdout)
    assert SECRETS["valid"] not in result.stdout


def test_demo_fails_against_a_broken_mock() -> None:
    result = run_cli("demo", "--defect", "html-error-page")
    assert result.returncode == 1
    assert re.search(r"\b[1-9]\d* failed\b", result.stdout)
    assert "text/html" in result.stdout


def _summary_in(cwd: Path) -> dict[str, Any]:
    (path,) = cwd.glob("reports/*/summary.json")
    data: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return data


def test_a_failing_demo_prints_one_line_per_failed_scenario_grouped_by_cause(
    tmp_path: Path,
) -> None:
    result = run_cli("demo", "--defect", "html-error-page", cwd=tmp_path, COLUMNS="120")
    assert result.returncode == 1, result.stdout + result.stderr
    summary = _summary_in(tmp_path)
    failed = summary["totals"]["fail"]
    groups = summary["failure_groups"]
    lines = result.stdout.splitlines()
    # pytest's own section per failure and its list of them are left out
    assert "FAILURES" not in result.stdout and "short test summary" not in result.stdout
    assert not any(line.startswith(("scenario ", "FAILED ")) for line in lines)
    assert f"{failed} failed, " in result.stdout  # pytest's count line stays
    # after the table: a heading per cause, largest first, then its scenarios, one line each
    table_end = lines.index(
        next(line for line in lines if line.startswith(f"{summary['totals']['pass']} passed, "))
    )
    start = lines.index(
        f"gateprobe: {failed} failed scenario(s) by cause (whole text: -v, junit.xml)"
    )
    assert start > table_end
    at = start + 1
    records = {s["name"]: s for s in summary["scenarios"]}
    for group in groups:
        assert lines[at].startswith(f"[{group['count']}] {group['check']}: "), lines[at]
        for name, line in zip(
            group["scenarios"], lines[at + 1 : at + 1 + group["count"]], strict=True
        ):
            record = records[name]
            assert re.match(
                rf"  {re.escape(name)} +\S*{Path(record['file']).name}:{record['line']}  ", line
            ), line
        at += 1 + group["count"]
    assert lines[at].startswith("reports: ")
    assert all(len(line) <= 120 for line in lines[start:at]), "fitted to COLUMNS=120"
    assert [g["count"] for g in groups] == sorted((g["count"] for g in groups), reverse=True)
    assert sum(g["count"] for g in groups) == failed
    # the html-error-page defect: most failures are one cause
    assert groups[0]["cause"] == "error_envelope: the error is text/html, not JSON"
    assert len(lines) < 20 + len(summary["areas"]) + failed + len(groups)


def test_verbose_prints_each_failure_whole_with_its_curl_command(tmp_path: Path) -> None:
    result = run_cli(
        "demo", "-v", "--defect", "html-error-page", "-k", "unknown_model", cwd=tmp_path
    )
    assert result.returncode == 1, result.stdout + result.stderr
    summary = _summary_in(tmp_path)
    assert summary["totals"]["fail"] == 3
    assert "FAILURES" in result.stdout
    for name in ("errors.unknown_model[openai]", "errors.unknown_model[gemini]"):
        assert f"scenario {name}: " in result.stdout
    assert "  x error_envelope: the error is text/html, not JSON" in result.stdout
    assert "      expected: application/json" in result.stdout
    assert "  reproduce (the target profile's key variables set):" in result.stdout
    assert "    curl -sS -i --compressed http://127.0.0.1:" in result.stdout
    assert "'authorization: Bearer '\"$GATEPROBE_MOCK_KEY_VALID\"" in result.stdout
    # and the grouped list after the table, as without -v
    assert "[3] error_envelope: the error is text/html, not JSON" in result.stdout
