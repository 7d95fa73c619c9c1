"""``gateprobe load`` against gateways that misbehave below HTTP: nothing listening, a reset
mid-stream, a hang cut by the target's total timeout, a hang cut by the end of the run.

Each run is a real Locust child process on loopback; the figures are read back from
``summary.json`` and ``requests.jsonl``.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gateprobe.load.mock_process import MockProcess
from gateprobe.provision import MOCK_TARGET

KEY = "sk-gp-transport0123456789abcdef"
STREAM_PROFILE = (
    "name: {name}\n"
    "requests:\n"
    "  - {{name: {name}, protocol: openai, operation: chat, stream: true, model: {model}}}\n"
    "load: {{users: 2}}\n"
)


def load(tmp_path: Path, profile: str, *args: str, env: dict[str, str]) -> tuple[int, str]:
    path = tmp_path / "profile.yaml"
    path.write_text(profile)
    result = subprocess.run(
        [sys.executable, "-m", "gateprobe.cli", "load", "--profile", str(path),
         "--warmup", "0", "--no-plots", "--report-dir", str(tmp_path / "out"), *args],
        capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL,
        env={**os.environ, **env},
    )  # fmt: skip
    return result.returncode, result.stdout + result.stderr


def outputs(tmp_path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    (run,) = [p for p in (tmp_path / "out").iterdir() if p.is_dir()]
    summary = json.loads((run / "summary.json").read_text())
    lines = (run / "requests.jsonl").read_text().splitlines()
    return summary, [json.loads(line) for line in lines]


def plain_target(tmp_path: Path, base_url: str, **timeouts: float) -> Path:
    path = tmp_path / "target.yaml"
    text = (
        "name: plain\n"
        f"base_url: {base_url}\n"
        "keys: {valid: GP_TRANSPORT_KEY}\n"
        "models:\n  chat: {openai: gpt-4o-mini}\n"
        "capabilities: [openai.chat, openai.chat.stream]\n"
    )
    if timeouts:
        text += "timeouts: {" + ", ".join(f"{k}: {v}" for k, v in timeouts.items()) + "}\n"
    path.write_text(text)
    return path


def mock_target_with(tmp_path: Path, mock: MockProcess, **timeouts: float) -> Path:
    """The mock's own target profile, on the running mock, with other timeouts."""
    text = MOCK_TARGET.read_text()
    lines = [line for line in text.splitlines() if not line.startswith(("base_url:", "timeouts:"))]
    lines.append(f"base_url: {mock.url}")
    lines.append("timeouts: {" + ", ".join(f"{k}: {v}" for k, v in timeouts.items()) + "}")
    path = tmp_path / "mock-target.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def resetting_server() -> Iterator[str]:
    """Answers every request with a 200 SSE head and two content frames, then resets the
    connection (RST, not FIN)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.2)
    stop = threading.Event()
    frame = (
        b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m",'
        b'"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}\n\n'
    )
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    chunk = b"%x\r\n%s\r\n" % (len(frame * 2), frame * 2)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    data = b""
                    while b"\r\n\r\n" not in data:
                        data += conn.recv(65536) or b"\r\n\r\n"
                    conn.sendall(head + chunk)
                except OSError:
                    pass
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def test_nothing_listening_fails_every_request_as_connection(tmp_path: Path) -> None:
    target = plain_target(tmp_path, f"http://127.0.0.1:{free_port()}")
    profile = STREAM_PROFILE.format(name="refused", model="gpt-4o-mini")
    code, out = load(
        tmp_path, profile, "--target", str(target), "--duration", "1",
        env={"GP_TRANSPORT_KEY": KEY},
    )  # fmt: skip
    assert code == 1, out  # Locust's "some requests failed": no SLO set
    summary, records = outputs(tmp_path)
    requests = summary["requests"]
    assert requests["measured"] > 0 and requests["ok"] == 0
    assert requests["by_error_class"] == {"connection": requests["measured"]}
    assert summary["locust"]["failures"] == summary["locust"]["requests"] == requests["measured"]
    answered = [r for r in records if not r.get("unfinished")]
    assert answered and all("Connection refused" in r["error"] for r in answered)
    assert KEY not in out and KEY not in json.dumps(records)


def test_a_reset_mid_stream_is_a_connection_failure(tmp_path: Path) -> None:
    with resetting_server() as url:
        target = plain_target(tmp_path, url)
        code, out = load(
            tmp_path, STREAM_PROFILE.format(name="reset", model="gpt-4o-mini"),
            "--target", str(target), "--duration", "1", env={"GP_TRANSPORT_KEY": KEY},
        )  # fmt: skip
    assert code == 1, out
    summary, records = outputs(tmp_path)
    assert summary["requests"]["ok"] == 0 and summary["requests"]["measured"] > 0
    classes = summary["requests"]["by_error_class"]
    # the two frames arrived before the reset; the reset is reported, not a truncation
    assert set(classes) == {"connection"}, classes
    answered = [r for r in records if not r.get("unfinished")]
    assert all(r["chunks"] == 2 and "ConnectionResetError" in r["error"] for r in answered)


def test_a_hang_fails_as_a_timeout_at_the_targets_total(tmp_path: Path) -> None:
    with MockProcess(ttft_ms=10, itl_ms=2) as mock:
        target = mock_target_with(tmp_path, mock, connect=5, read=20, total=0.5)
        code, out = load(
            tmp_path, STREAM_PROFILE.format(name="hung", model="gpt-4o-mini--hang"),
            "--target", str(target), "--duration", "2", env=mock.env,
        )  # fmt: skip
    assert code == 3, out  # the mock's target sets an error-ratio SLO
    summary, records = outputs(tmp_path)
    # those measured: ended in the window (not before it opened, not in flight when it closed)
    timed_out = [r for r in records if not r.get("unfinished") and not r["warmup"]]
    assert timed_out and summary["requests"]["by_error_class"] == {"timeout": len(timed_out)}
    for record in timed_out:
        assert 500 <= record["e2e_ms"] < 900, record
        assert "within the target's timeouts.total (0.5 s)" in record["error"]
    assert summary["locust"]["failures"] == len(timed_out)


def test_a_hang_cut_by_the_end_of_the_run_is_unfinished_and_warned(tmp_path: Path) -> None:
    profile = (
        "name: half-hung\n"
        "requests:\n"
        "  - {name: ok, protocol: openai, operation: chat, stream: true}\n"
        "  - {name: hung, protocol: openai, operation: chat, stream: true,\n"
        "     model: gpt-4o-mini--hang}\n"
        "load: {users: 4}\n"
        "mock: {ttft_ms: 20, itl_ms: 5}\n"
    )
    code, out = load(tmp_path, profile, "--duration", "3", env={})
    summary, records = outputs(tmp_path)
    requests = summary["requests"]
    hung = [r for r in records if r["name"] == "hung"]
    assert hung and all(r["unfinished"] and r["error_class"] == "unfinished" for r in hung)
    assert requests["unfinished"] >= len(hung) and requests["failed"] == 0
    assert requests["measured"] == summary["locust"]["requests"]  # neither side counts them
    assert requests["unfinished_max_in_flight_ms"] > 1500
    assert "still unanswered when the run ended" in out
    assert "the target may hang" in " ".join(summary["warnings"])
    assert code == 0, out  # a warning, not a failure: the run was shorter than the timeout
