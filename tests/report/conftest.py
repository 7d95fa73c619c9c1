"""Real runs against the bundled mock for the HTML report tests, made once per session.

The run's mock is started here (``start_bundled_mock``) so the test knows the secrets it
provisioned: no report may contain any of them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from html_support import GATEPROBE, Load, Run, gateprobe, load_json, only_dir
from support import clean_env

from gateprobe.mock import MockConfig
from gateprobe.provision import MOCK_TARGET, start_bundled_mock


def _run(root: Path, defect: str | None) -> Run:
    config = MockConfig.default()
    if defect:
        config = config.replace(defects=frozenset({defect}))
    server, env = start_bundled_mock(config=config)
    try:
        secrets = {k: v for k, v in env.items() if k != "GATEPROBE_MOCK_URL"}
        result = gateprobe(
            "run",
            "--target",
            str(MOCK_TARGET),
            "--report-dir",
            str(root),
            cwd=root,
            env=clean_env(**env),
        )
    finally:
        server.stop()
    assert result.returncode in (0, 1), result.stdout + result.stderr
    return Run(only_dir(root), secrets, result)


@pytest.fixture(scope="session")
def failing_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The bundled suites against a mock that quotes the presented key in its errors."""
    return _run(tmp_path_factory.mktemp("failing-run"), "key-echoed-in-error")


@pytest.fixture(scope="session")
def second_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The bundled suites against a mock whose OpenAI streams lack ``[DONE]``."""
    return _run(tmp_path_factory.mktemp("second-run"), "missing-done")


@pytest.fixture
def run_copy(failing_run: Run, tmp_path: Path) -> Path:
    """A copy of the failing run's directory that a test may change."""
    target = tmp_path / failing_run.directory.name
    shutil.copytree(failing_run.directory, target)
    return target


def _load(root: Path, ttft_ms: int) -> subprocess.Popen[str]:
    command = [str(GATEPROBE), "load", "--duration", "3s", "--warmup", "1s"]
    command += ["--mock-ttft-ms", str(ttft_ms), "--report-dir", str(root)]
    return subprocess.Popen(
        command,
        cwd=root,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="session")
def load_runs(tmp_path_factory: pytest.TempPathFactory) -> list[Load]:
    """Two load runs of the bundled mock side by side (TTFT 200 ms and 80 ms)."""
    roots = [tmp_path_factory.mktemp(f"load-{ttft}") for ttft in (200, 80)]
    processes = [_load(root, ttft) for root, ttft in zip(roots, (200, 80), strict=True)]
    runs = []
    for root, process in zip(roots, processes, strict=True):
        output, _ = process.communicate(timeout=120)
        assert process.returncode == 0, output
        runs.append(Load(only_dir(root), output))
    return runs


@pytest.fixture(scope="session")
def load_run(load_runs: list[Load]) -> Load:
    return load_runs[0]


@pytest.fixture(scope="session")
def compare_dir(
    tmp_path_factory: pytest.TempPathFactory,
    failing_run: Run,
    second_run: Run,
    load_runs: list[Load],
) -> Path:
    """compare.json of the two runs (and the two load runs) as ``gateprobe compare`` writes it
    (its own builder, gateprobe.compare.matrix), in a directory of its own."""
    from gateprobe.compare.matrix import Column, build_comparison

    columns = [
        Column(
            label=label,
            run_dir=run.directory,
            run_summary=load_json(run.directory / "summary.json"),
            load_dir=load.directory,
            load_summary=load_json(load.directory / "summary.json"),
        )
        for label, run, load in zip(
            ("key-echoed", "missing-done"), (failing_run, second_run), load_runs, strict=True
        )
    ]
    directory = tmp_path_factory.mktemp("compare")
    comparison = build_comparison(columns)
    (directory / "compare.json").write_text(json.dumps(comparison, indent=2), "utf-8")
    return directory
