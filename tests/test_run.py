"""``gateprobe run`` as a user runs it: the real console script in a subprocess.

Every run has cwd=tmp_path, so its reports/<run-id>/ lands there. Covered: the bundled suites
against the bundled mock (reports: junit.xml, summary.json, allure-results/), a broken mock,
-k and -n; hostile targets (small TCP servers that hang, answer garbage, reset, send 50 MB or
cut a stream) that must fail cleanly and in time; and that no secret reaches any report file or
the console.
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import clean_env

from gateprobe.mock import MockConfig
from gateprobe.provision import MOCK_TARGET, start_bundled_mock
from gateprobe.report.summary import RESULT_PROPERTY

GATEPROBE = Path(sys.executable).parent / "gateprobe"
RUN_TIMEOUT = 120.0  # the subprocess's hard limit; the assertions use tighter bounds
AREAS = ("auth", "errors", "models", "streaming")


def gateprobe(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(GATEPROBE), *args],
        cwd=cwd,
        env=env if env is not None else clean_env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )


def report_dir(cwd: Path) -> Path:
    """The one reports/<run-id>/ of a run made in ``cwd``."""
    runs = [p for p in (cwd / "reports").iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def load_summary(directory: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((directory / "summary.json").read_text("utf-8"))
    return data


def junit_cases(directory: Path) -> list[ET.Element]:
    return list(ET.parse(directory / "junit.xml").getroot().iter("testcase"))


# -- the bundled suites against the bundled mock ----------------------------------------------


@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    cwd = tmp_path_factory.mktemp("default-run")
    return cwd, gateprobe("run", cwd=cwd)


def test_run_without_target_passes_and_prints_the_area_table(
    default_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    cwd, result = default_run
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    columns = ["area", "pass", "fail", "skip", "deviation"]
    header = next(i for i, line in enumerate(lines) if line.split() == columns)
    summary = load_summary(report_dir(cwd))
    areas = summary["areas"]
    rows = [line.split() for line in lines[header + 2 : header + 2 + len(areas)]]
    assert rows == [
        [a["area"], str(a["pass"]), str(a["fail"]), str(a["skip"]), str(a["deviation"])]
        for a in areas
    ]
    assert set(AREAS) <= {a["area"] for a in areas}
    totals = summary["totals"]
    assert totals["fail"] == 0 and totals["pass"] > 0
    assert f"{totals['pass']} passed, 0 failed, {totals['skip']} skipped" in result.stdout
    assert f"reports: {report_dir(cwd)}" in result.stdout


def test_run_writes_junit_and_summary(
    default_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    cwd, _ = default_run
    directory = report_dir(cwd)
    names = {p.name for p in directory.iterdir()}
    assert names == {"junit.xml", "summary.json", "allure-results", "report.html"}
    summary = load_summary(directory)
    scenarios = summary["scenarios"]
    cases = junit_cases(directory)
    assert len(cases) == len(scenarios) == sum(summary["totals"].values()) >= 12
    assert sorted(c.get("name") or "" for c in cases) == sorted(s["name"] for s in scenarios)
    assert all(c.find("failure") is None for c in cases)
    skipped = sum(c.find("skipped") is not None for c in cases)
    assert skipped == summary["totals"]["skip"] + summary["totals"]["deviation"]

    target = summary["target"]
    assert target["name"] == "bundled-mock"
    assert target["base_url"].startswith("http://127.0.0.1:")
    assert target["source"] == str(MOCK_TARGET)
    assert "openai.chat" in target["capabilities"] and "valid" in target["key_kinds"]
    assert summary["totals"]["fail"] == 0
    assert summary["finished"] >= summary["started"]
    assert set(AREAS) <= {a["area"] for a in summary["areas"]}
    for record in scenarios:
        assert record["verdict"] in ("pass", "skip", "deviation")
        assert record["area"] == Path(record["file"]).parent.name
        assert record["duration_ms"] >= 0
        assert all(isinstance(v, str) for v in record["params"].values())
        assert Path(record["file"]).is_file() and record["line"] >= 1
        if record["verdict"] != "pass":
            assert record["reason"]
            continue
        assert record["duration_ms"] > 0
        for step in record["steps"]:
            assert isinstance(step["status"], int)
            assert step["elapsed_ms"] > 0 and step["ttfb_ms"] is not None
            assert step["checks"] and step["failures"] == []


def test_run_writes_allure_results_with_labels_and_attachments(
    default_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    cwd, _ = default_run
    allure = report_dir(cwd) / "allure-results"
    results = [json.loads(p.read_text("utf-8")) for p in allure.glob("*-result.json")]
    summary = load_summary(report_dir(cwd))
    assert len(results) == len(summary["scenarios"])
    areas_by_id = {s["id"]: s["area"] for s in summary["scenarios"]}
    params_by_id = {s["id"]: set(s["params"]) for s in summary["scenarios"]}
    for result in results:
        labels: dict[str, list[str]] = {}
        for label in result["labels"]:
            labels.setdefault(label["name"], []).append(label["value"])
        story = labels["story"][0]
        assert story in areas_by_id
        assert labels["feature"] == [areas_by_id[story]]
        assert labels["target"] == ["bundled-mock"]
        params = {p["name"]: p["value"] for p in result["parameters"]}
        assert params["target"].strip("'") == "bundled-mock"
        assert set(params) == {"target"} | params_by_id[story]
        if result["status"] != "passed":
            continue
        assert result["attachments"], result["name"]
        exchanges = [a for a in result["attachments"] if a["type"] == "application/json"]
        for attachment in exchanges:
            body = json.loads((allure / attachment["source"]).read_text("utf-8"))
            assert body["request"]["method"] in ("GET", "POST")
            assert isinstance(body["status"], int)
        # each exchange with its curl reproduction (text)
        curls = [a for a in result["attachments"] if a["name"].endswith(": curl reproduction")]
        assert len(curls) == len(exchanges) and all(a["type"] == "text/plain" for a in curls)
    properties = (allure / "environment.properties").read_text("utf-8").splitlines()
    assert "target=bundled-mock" in properties
    assert any(line.startswith("base_url=http://127.0.0.1:") for line in properties)
    categories = json.loads((allure / "categories.json").read_text("utf-8"))
    assert any(c["name"].startswith("Transport") for c in categories)
    assert all({"name", "matchedStatuses", "messageRegex"} <= set(c) for c in categories)


def test_run_against_a_broken_mock_exits_1(tmp_path: Path) -> None:
    result = gateprobe("run", "--defect", "html-error-page", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    summary = load_summary(report_dir(tmp_path))
    failed = [s for s in summary["scenarios"] if s["verdict"] == "fail"]
    # The error scenarios meet the HTML page; the successful calls still pass.
    errors = [s for s in failed if s["id"] in ("auth.missing_key", "errors.unknown_model")]
    assert len(errors) == 6
    assert all("text/html" in s["reason"] for s in errors)
    assert any(s["verdict"] == "pass" for s in summary["scenarios"])
    totals = summary["totals"]
    assert totals["fail"] == len(failed)
    assert f"{totals['pass']} passed, {totals['fail']} failed" in result.stdout
    cases = junit_cases(report_dir(tmp_path))
    failures = [c for c in cases if c.find("failure") is not None]
    assert len(failures) == len(failed)
    # the record a worker hands the controller is in summary.json, not a second time in junit
    assert not [p for c in cases for p in c.iter("property") if p.get("name") == RESULT_PROPERTY]


def test_run_k_selects_scenarios(
    tmp_path: Path, default_run: tuple[Path, subprocess.CompletedProcess[str]]
) -> None:
    result = gateprobe("run", "-k", "models", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    selected = load_summary(report_dir(tmp_path))["scenarios"]
    everything = load_summary(report_dir(default_run[0]))["scenarios"]
    names = {s["name"] for s in selected}
    # All of the models area, and only scenarios whose name or file says "models".
    assert {s["name"] for s in everything if s["area"] == "models"} <= names
    assert {"models.list[openai]", "models.list[anthropic]", "models.list[gemini]"} <= names
    assert all("models" in s["name"] or "models" in s["file"] for s in selected)
    assert len(selected) < len(everything)
    assert len(junit_cases(report_dir(tmp_path))) == len(selected)


def test_run_with_two_workers_matches_the_serial_run(
    tmp_path: Path, default_run: tuple[Path, subprocess.CompletedProcess[str]]
) -> None:
    result = gateprobe("run", "-n", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    parallel = load_summary(report_dir(tmp_path))
    serial = load_summary(report_dir(default_run[0]))

    def verdicts(summary: dict[str, Any]) -> dict[str, str]:
        return {s["name"]: s["verdict"] for s in summary["scenarios"]}

    assert verdicts(parallel) == verdicts(serial)
    count = len(serial["scenarios"])
    cases = junit_cases(report_dir(tmp_path))
    assert len(cases) == count
    assert not [p for c in cases for p in c.iter("property") if p.get("name") == RESULT_PROPERTY]
    assert len(list((report_dir(tmp_path) / "allure-results").glob("*-result.json"))) == count


# -- hostile targets ---------------------------------------------------------------------------

Behaviour = Callable[[socket.socket, threading.Event], None]


def hang(conn: socket.socket, stop: threading.Event) -> None:
    stop.wait(20)


def garbage(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"\x00\xff\x13THIS IS NOT HTTP AT ALL\r\n\r\n")


def reset(conn: socket.socket, stop: threading.Event) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def huge(conn: socket.socket, stop: threading.Event) -> None:
    size = 50 * 1024 * 1024
    conn.sendall(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        + f"content-length: {size}\r\n\r\n".encode()
    )
    block = b"[" + b"0," * 32767 + b"0"
    sent = 0
    while sent < size and not stop.is_set():
        conn.sendall(block)
        sent += len(block)


def cut_stream(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    parts = (b'data: {"id":"c1","choices":[]}\n\n', b'data: {"id":"c1","cho')
    for part in parts:
        conn.sendall(f"{len(part):x}\r\n".encode() + part + b"\r\n")
        time.sleep(0.02)


@pytest.fixture
def hostile() -> Iterator[Callable[[Behaviour], str]]:
    """TCP servers on 127.0.0.1 that answer every connection with one behaviour."""
    servers: list[tuple[socket.socket, threading.Event, list[threading.Thread]]] = []

    def start(behaviour: Behaviour) -> str:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        listener.settimeout(0.1)
        stop = threading.Event()
        threads: list[threading.Thread] = []

        def serve(conn: socket.socket) -> None:
            try:
                conn.settimeout(10)
                conn.recv(65536)
                behaviour(conn, stop)
            except OSError:
                pass
            finally:
                conn.close()

        def loop() -> None:
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except OSError:
                    continue
                thread = threading.Thread(target=serve, args=(conn,), daemon=True)
                thread.start()
                threads.append(thread)

        accept = threading.Thread(target=loop, daemon=True)
        accept.start()
        threads.append(accept)
        servers.append((listener, stop, threads))
        return f"http://127.0.0.1:{listener.getsockname()[1]}"

    yield start
    for _, stop, _ in servers:
        stop.set()
    for listener, _, threads in servers:
        for thread in threads:
            thread.join(timeout=5)
        listener.close()


HOSTILE_SUITE = """\
id: hostile.models
title: The model list answers
steps:
  - request: {protocol: openai, operation: models}
    expect: {status: 200, content_type: application/json}
---
id: hostile.stream
title: A streamed chat answer arrives whole
steps:
  - request: {protocol: openai, operation: chat, stream: true}
    expect: {status: 200, stream: true}
"""

HOSTILE_TARGET = """\
name: hostile-{name}
base_url: {url}
keys: {{valid: GP_HOSTILE_KEY}}
models: {{chat: gpt-4o-mini}}
capabilities: [openai.models, openai.chat, openai.chat.stream]
timeouts: {{connect: 1, read: 1, total: 3}}
"""


@pytest.mark.parametrize(
    ("behaviour", "words"),
    [
        (hang, ("no response",)),
        (garbage, ("transport",)),
        (reset, ("transport",)),
        (huge, ("larger than",)),
        (cut_stream, ("cut", "incomplete")),
    ],
    ids=lambda v: v.__name__ if callable(v) else None,
)
def test_hostile_target_fails_every_scenario_cleanly_and_in_time(
    tmp_path: Path,
    hostile: Callable[[Behaviour], str],
    behaviour: Behaviour,
    words: tuple[str, ...],
) -> None:
    url = hostile(behaviour)
    target = tmp_path / "hostile.yaml"
    target.write_text(HOSTILE_TARGET.format(name=behaviour.__name__, url=url), "utf-8")
    suites = tmp_path / "suites"
    (suites / "hostile").mkdir(parents=True)
    (suites / "hostile" / "calls.yaml").write_text(HOSTILE_SUITE, "utf-8")

    started = time.monotonic()
    result = gateprobe(
        "run",
        "--target",
        str(target),
        "--suites",
        str(suites),
        cwd=tmp_path,
        env=clean_env(GP_HOSTILE_KEY="sk-hostile-0123456789abcdef"),
    )
    elapsed = time.monotonic() - started

    assert result.returncode == 1, result.stdout + result.stderr
    assert elapsed < 60, f"the run took {elapsed:.1f} s"
    assert "Traceback" not in result.stdout + result.stderr
    directory = report_dir(tmp_path)
    summary = load_summary(directory)
    assert summary["target"]["name"] == f"hostile-{behaviour.__name__}"
    records = summary["scenarios"]
    assert sorted(r["id"] for r in records) == ["hostile.models", "hostile.stream"]
    for record in records:
        assert record["verdict"] == "fail", record
        details = record["reason"] + " ".join(
            f["message"] for step in record["steps"] for f in step["failures"]
        )
        assert any(word in details for word in words), (words, record)
        # Each exchange ended within the profile's total limit (3 s) plus some slack.
        assert record["duration_ms"] < 10_000
    assert len(junit_cases(directory)) == 2
    assert len(list((directory / "allure-results").glob("*-result.json"))) == 2
    assert "0 passed, 2 failed" in result.stdout


# -- secrets -----------------------------------------------------------------------------------

# {valid}, {valid2} and {admin} are replaced by the provisioned secrets before the run: a
# scenario file may carry a secret, and the reports must still not.
LEAK_SUITE = """\
id: leak.echoed_key
title: The broken mock quotes the presented key in its error
steps:
  - name: call with the valid key plus a suffix the mock does not know
    request: {{protocol: openai, operation: chat, key: valid, auth: "raw:Bearer {{key}}-x"}}
    expect: {{no_secret_echo: true, status: 200}}
---
id: leak.key_in_body
title: A secret sent in the request body
steps:
  - name: send the key as the prompt
    request:
      protocol: openai
      operation: chat
      body:
        messages: [{{role: user, content: "my key is {valid} and the admin's is {admin}"}}]
    expect: {{status: 418}}
---
id: leak.key_in_query
title: A literal key sent in the query string
steps:
  - name: call Gemini with ?key=
    request: {{protocol: gemini, operation: chat, key: "literal:{valid2}", auth: query}}
    expect: {{status: 418}}
---
id: leak.admin_token
title: The admin API called with the admin token
steps:
  - name: read the mock's state
    request: {{method: GET, path: /_gateprobe/state, key: admin, auth: bearer}}
    expect: {{status: 418}}
---
id: leak.claude_stream
title: A Claude stream with x-api-key that fails a check
steps:
  - name: stream with the valid key
    request: {{protocol: anthropic, operation: chat, stream: true}}
    expect: {{status: 200, headers: {{x-never-sent: true}}}}
---
id: leak.literal_key
title: A literal key the profile does not know, quoted back by the broken mock
steps:
  - name: call with the literal key
    request: {{protocol: openai, operation: chat, key: "literal:{literal}"}}
    expect: {{no_secret_echo: true, status: 200}}
---
id: leak.passes
title: A passing call with the second key
steps:
  - request: {{protocol: openai, operation: models, key: valid2, auth: "raw:Bearer {{key}}"}}
    expect: {{status: 200}}
"""
# A literal key (``key: "literal:..."``) is no key of the profile's: only the step knows it.
LITERAL = "sk-gp-literal-0123456789abcdef"
LITERAL_MASKED = "sk-…cdef"


def test_no_secret_reaches_reports_or_console(tmp_path: Path) -> None:
    config = MockConfig.default().replace(defects=frozenset({"key-echoed-in-error"}))
    server, env = start_bundled_mock(config=config)
    try:
        secrets = {k: v for k, v in env.items() if k != "GATEPROBE_MOCK_URL"}
        assert "GATEPROBE_MOCK_ADMIN_TOKEN" in secrets and len(secrets) == 10
        suites = tmp_path / "suites"
        (suites / "leak").mkdir(parents=True)
        (suites / "leak" / "secrets.yaml").write_text(
            LEAK_SUITE.format(
                valid=env["GATEPROBE_MOCK_KEY_VALID"],
                valid2=env["GATEPROBE_MOCK_KEY_VALID2"],
                admin=env["GATEPROBE_MOCK_ADMIN_TOKEN"],
                literal=LITERAL,
            ),
            "utf-8",
        )
        result = gateprobe(
            "run",
            "-v",  # the whole failure text on the console too
            "--target",
            str(MOCK_TARGET),
            "--suites",
            str(suites),
            cwd=tmp_path,
            env=clean_env(**env),
        )
    finally:
        server.stop()

    assert result.returncode == 1, result.stdout + result.stderr
    directory = report_dir(tmp_path)
    summary = load_summary(directory)
    verdicts = {s["id"]: s["verdict"] for s in summary["scenarios"]}
    assert verdicts == {
        "leak.echoed_key": "fail",
        "leak.key_in_body": "fail",
        "leak.key_in_query": "fail",
        "leak.admin_token": "fail",
        "leak.claude_stream": "fail",
        "leak.literal_key": "fail",
        "leak.passes": "pass",
    }
    echoed = next(s for s in summary["scenarios"] if s["id"] == "leak.echoed_key")
    assert "no_secret_echo" in echoed["reason"]  # the mock did quote the key

    files = [p for p in directory.rglob("*") if p.is_file()]
    assert any(p.name.endswith("-attachment.json") for p in files)
    texts = {str(p): p.read_bytes().decode("utf-8", errors="replace") for p in files}
    texts["stdout"] = result.stdout
    texts["stderr"] = result.stderr
    secrets["literal key"] = LITERAL
    leaks = [
        f"{variable} in {Path(where).name}: …{text[max(0, at - 60) : at + 40]!r}…"
        for where, text in texts.items()
        for variable, secret in secrets.items()
        if (at := text.find(secret)) >= 0
    ]
    assert leaks == [], "\n".join(leaks)
    # The masked forms are there: the reports did record the exchanges.
    valid = env["GATEPROBE_MOCK_KEY_VALID"]
    masked = f"{valid[:3]}…{valid[-4:]}"
    attached = [
        json.loads(p.read_text("utf-8")) for p in files if p.name.endswith("-attachment.json")
    ]
    bodies = " ".join(f"{a['request']['body']} {a['body']}" for a in attached)
    assert f"my key is {masked}" in bodies
    assert f"Invalid API key: {masked}-x" in bodies
    query_key = "key=sk-…" + env["GATEPROBE_MOCK_KEY_VALID2"][-4:]
    assert any(a["request"]["url"].endswith(query_key) for a in attached)
    assert f"my key is {masked}" in result.stdout  # the failure text, masked
    assert f"Invalid API key: {LITERAL_MASKED}" in bodies


# The embedded mock quotes the unknown key back (key-echoed-in-error); the scenarios send it
# in each credential form, set it in a header of their own, and carry one in a step the run
# never reaches (shown in the failure text's YAML only).
UNSENT = "sk-gp-unsent-fedcba9876543210"
LITERAL_SUITE = f"""\
id: literal.openai
title: A literal key the gateway does not know, quoted back in its error
steps:
  - name: call with the literal key
    request: {{protocol: openai, operation: chat, key: "literal:{LITERAL}"}}
    expect: {{no_secret_echo: true, status: 200}}
---
id: literal.claude_stream
title: A Claude stream with a literal x-api-key
steps:
  - name: stream with the literal key
    request: {{protocol: anthropic, operation: chat, stream: true, key: "literal:{LITERAL}"}}
    expect: {{status: 200}}
---
id: literal.gemini_query
title: A literal key in Gemini's ?key=
steps:
  - name: call with ?key=
    request: {{protocol: gemini, operation: chat, key: "literal:{LITERAL}", auth: query}}
    expect: {{status: 200}}
---
id: literal.own_header
title: A key the scenario sets in a header of its own
steps:
  - name: list the models with the header
    request:
      protocol: openai
      operation: models
      key: null
      headers: {{authorization: "Bearer {LITERAL}"}}
    expect: {{status: 200}}
---
id: literal.not_reached
title: A literal key in a step the run never reaches
steps:
  - name: fail first
    request: {{protocol: openai, operation: models}}
    expect: {{status: 418}}
  - name: never sent
    request: {{protocol: openai, operation: models, key: "literal:{UNSENT}"}}
    expect: {{status: 200}}
"""


def test_a_literal_key_never_reaches_reports_or_console(tmp_path: Path) -> None:
    suites = tmp_path / "suites"
    (suites / "literal").mkdir(parents=True)
    (suites / "literal" / "keys.yaml").write_text(LITERAL_SUITE, "utf-8")
    result = gateprobe(  # -v: the whole failure text on the console too
        "run", "-v", "--suites", str(suites), "--defect", "key-echoed-in-error", cwd=tmp_path
    )

    assert result.returncode == 1, result.stdout + result.stderr
    directory = next(tmp_path.glob("reports/*/summary.json")).parent
    summary = load_summary(directory)
    assert {s["id"]: s["verdict"] for s in summary["scenarios"]} == {
        "literal.openai": "fail",
        "literal.claude_stream": "fail",
        "literal.gemini_query": "fail",
        "literal.own_header": "fail",
        "literal.not_reached": "fail",
    }
    openai = next(s for s in summary["scenarios"] if s["id"] == "literal.openai")
    assert "no_secret_echo" in openai["reason"]  # the mock did quote the literal key

    # every file the run wrote (the suites directory holds the keys by design)
    files = [p for p in tmp_path.rglob("*") if p.is_file() and suites not in p.parents]
    assert any(p.name == "junit.xml" for p in files)
    assert any(p.name.endswith("-attachment.json") for p in files)
    texts = {str(p.relative_to(tmp_path)): p.read_text("utf-8", errors="replace") for p in files}
    texts["stdout"] = result.stdout
    texts["stderr"] = result.stderr
    leaks = [
        f"{secret} in {where}: …{text[max(0, at - 60) : at + 40]!r}…"
        for where, text in texts.items()
        for secret in (LITERAL, UNSENT, LITERAL[:-4], UNSENT[:-4])
        if (at := text.find(secret)) >= 0
    ]
    assert leaks == [], "\n".join(leaks)
    # masked, not dropped: each form the key took is there, in the reports and the console
    attached = " ".join(
        json.dumps(json.loads(p.read_text("utf-8")), ensure_ascii=False)
        for p in files
        if p.name.endswith("-attachment.json")
    )
    assert f"Invalid API key: {LITERAL_MASKED}" in attached
    assert f"Bearer {LITERAL_MASKED}" in attached
    assert f"key={LITERAL_MASKED}" in attached
    assert f'key: "literal:{LITERAL_MASKED}"' in result.stdout  # the scenario's YAML
    assert "literal:sk-…3210" in result.stdout  # the step never reached
    assert f"Invalid API key: {LITERAL_MASKED}" in result.stdout
