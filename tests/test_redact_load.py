"""``gateprobe load`` with a literal key that the target quotes back in its error answers.

The target is a small HTTP server here that refuses every key and quotes it (as a gateway
with the mock's ``key-echoed-in-error`` defect does); the load profile sends a
``literal:`` key no target profile knows. No file of the run and nothing it prints may hold
the key; the records hold the error, masked.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

LITERAL = "sk-gp-literal-0123456789abcdef"
MASKED = "sk-…cdef"


class _EchoingGateway(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a gateway

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        key = (self.headers.get("authorization") or "").removeprefix("Bearer ")
        body = json.dumps({"error": {"message": f"Invalid API key: {key}"}}).encode()
        self.send_response(401)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # the test reads the run's output, not the server's


@pytest.fixture
def echoing_gateway() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoingGateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_a_literal_key_of_a_load_profile_is_masked_in_every_output(
    tmp_path: Path, echoing_gateway: str
) -> None:
    target = tmp_path / "echo.yaml"
    target.write_text(
        f"name: echo\nbase_url: {echoing_gateway}\nmodels: {{chat: gpt-4o-mini}}\n"
        "capabilities: [openai.chat]\n",
        "utf-8",
    )
    profile = tmp_path / "literal.yaml"
    profile.write_text(
        "name: literal\n"
        "requests:\n"
        f'  - {{name: refused, protocol: openai, operation: chat, key: "literal:{LITERAL}"}}\n'
        "load: {users: 1}\n",
        "utf-8",
    )
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "gateprobe.cli", "load", "--target", str(target),
         "--profile", str(profile), "--duration", "1", "--warmup", "0", "--no-plots",
         "--report-dir", str(out)],
        capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr  # every request failed
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.name == "requests.jsonl" for p in files)
    texts = {p.name: p.read_text("utf-8", "replace") for p in files}
    texts["stdout"], texts["stderr"] = result.stdout, result.stderr
    leaks = [where for where, text in texts.items() if LITERAL[:-4] in text]
    assert leaks == []
    records = [json.loads(line) for line in texts["requests.jsonl"].splitlines()]
    assert records and all(r["status"] == 401 for r in records)
    # a request still in flight when the window closed is recorded as unfinished, not refused
    answered = [r for r in records if r["error_class"] != "unfinished"]
    assert answered and all(f"Invalid API key: {MASKED}" in r["error"] for r in answered)
