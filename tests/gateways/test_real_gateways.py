"""Real gateways in front of the mock: LiteLLM proxy 1.106.2 and Portkey gateway 1.15.2.

Each gateway runs on loopback in front of ``gateprobe mock --mode upstream`` (started as a user
starts it), through the recipes in ../shared/gateways/. ``gateprobe run`` is driven with the
shipped, verified profile, as a subprocess, and every scenario's verdict is compared with the
verdict established by hand with curl (tests/gateways/expected/<profile>.yaml, the table in
docs/gateways.md): the right verdict for the right reason.

The gateways are installed by ``.ci/gateways`` (called by ``.ci/run``), which sets
GATEPROBE_GATEWAYS_HOME; without it these tests are skipped with that reason.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT.parent / "shared" / "gateways"
PROFILES = ROOT / "fixtures" / "targets"
EXPECTED = Path(__file__).parent / "expected"
HOME = os.environ.get("GATEPROBE_GATEWAYS_HOME", "")
GATEPROBE = [sys.executable, "-m", "gateprobe.cli"]
MASTER_KEY = "sk-master-gateprobe-ci-0123456789"

pytestmark = [
    pytest.mark.gateway,
    pytest.mark.skipif(
        not HOME, reason="real gateways not installed: .ci/gateways installs them (see .ci/run)"
    ),
]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LITELLM_", "PORTKEY_"))}
    env.update(NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost", **extra)
    return env


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    """``gateprobe mock --mode upstream`` on a free loopback port, as the recipes use it."""
    process = subprocess.Popen(
        [*GATEPROBE, "mock", "--mode", "upstream", "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=_env(),
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert "listening on http://127.0.0.1:" in line, line
    yield line.rsplit(" ", 1)[1].strip()
    process.terminate()
    process.wait(timeout=15)


class Gateway:
    def __init__(self, name: str, run_dir: Path, **settings: str) -> None:
        self.name, self.run_dir, self.settings = name, run_dir, settings
        self.info: dict[str, str] = {}

    def env(self) -> dict[str, str]:
        return _env(GATEWAYS_HOME=HOME, GATEWAYS_RUN_DIR=str(self.run_dir), **self.settings)

    def start(self, upstream: str) -> None:
        done = subprocess.run(
            ["bash", str(RECIPES / "start.sh"), self.name, upstream],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"start.sh {self.name} failed:\n{done.stderr[-3000:]}"
        self.info = dict(
            line.split("=", 1) for line in done.stdout.splitlines() if "=" in line.strip()
        )

    def stop(self) -> None:
        subprocess.run(
            ["bash", str(RECIPES / "stop.sh"), self.name],
            env=self.env(),
            capture_output=True,
            timeout=60,
        )


@pytest.fixture(scope="module")
def litellm(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gateway = Gateway(
        "litellm", tmp_path_factory.mktemp("litellm-run"), LITELLM_MASTER_KEY=MASTER_KEY
    )
    gateway.start(upstream)
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def portkey(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gateway = Gateway("portkey", tmp_path_factory.mktemp("portkey-run"))
    gateway.start(upstream)
    yield gateway
    gateway.stop()


def run_suites(profile: Path, env: dict[str, str], report_dir: Path) -> dict[str, Any]:
    """``gateprobe run --target PROFILE`` as a user runs it; its summary.json."""
    done = subprocess.run(
        [*GATEPROBE, "run", "--target", str(profile), "--report-dir", str(report_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=report_dir,
    )
    assert done.returncode in (0, 1), f"exit {done.returncode}:\n{done.stdout[-3000:]}"
    (summary,) = report_dir.glob("*/summary.json")
    result: dict[str, Any] = json.loads(summary.read_text("utf-8"))
    result["stdout"] = done.stdout
    return result


def expected_verdicts(name: str) -> list[tuple[str, str, str]]:
    """(name glob, verdict, reason fragment) in order; the first matching row applies."""
    rows = yaml.safe_load((EXPECTED / f"{name}.yaml").read_text("utf-8"))
    return [(row["scenario"], row["verdict"], row.get("reason", "")) for row in rows["verdicts"]]


def matches(name: str, pattern: str) -> bool:
    """A glob where ``*`` is the only wildcard: the scenario names' brackets are literal."""
    return fnmatch.fnmatchcase(name, pattern.replace("[", "[[]"))


def mismatches(summary: dict[str, Any], expected: list[tuple[str, str, str]]) -> list[str]:
    out = []
    for scenario in summary["scenarios"]:
        name, verdict, reason = scenario["name"], scenario["verdict"], scenario["reason"]
        row = next((r for r in expected if matches(name, r[0])), None)
        if row is None:
            out.append(f"{name}: no expected verdict (got {verdict}: {reason})")
        elif verdict != row[1] or row[2] not in reason:
            out.append(f"{name}: expected {row[1]} ({row[2]!r}), got {verdict}: {reason}")
    unused = [
        r[0] for r in expected if not any(matches(s["name"], r[0]) for s in summary["scenarios"])
    ]
    out += [f"expected-verdict row {glob!r} matches no scenario" for glob in unused]
    return out


def check_run(profile: str, env: dict[str, str], tmp_path: Path) -> dict[str, Any]:
    summary = run_suites(PROFILES / f"{profile}.yaml", env, tmp_path)
    problems = mismatches(summary, expected_verdicts(profile))
    assert not problems, "\n".join(problems)
    assert MASTER_KEY not in json.dumps(summary) and MASTER_KEY not in summary["stdout"]
    return summary


def test_litellm_verdicts_are_those_established_by_hand(litellm: Gateway, tmp_path: Path) -> None:
    env = _env(LITELLM_URL=litellm.info["URL"], LITELLM_MASTER_KEY=MASTER_KEY)
    summary = check_run("litellm-1.106.2", env, tmp_path)
    assert summary["totals"]["pass"] > 0 and summary["totals"]["fail"] > 0


def test_a_fault_litellm_does_not_forward_is_a_skip_not_a_failure(
    litellm: Gateway, tmp_path: Path
) -> None:
    """The same LiteLLM told to carry faults in a header it drops: every fault scenario skips."""
    profile = yaml.safe_load((PROFILES / "litellm-1.106.2.yaml").read_text("utf-8"))
    profile["directives"] = "header"
    path = tmp_path / "litellm-header.yaml"
    path.write_text(yaml.safe_dump(profile), "utf-8")
    env = _env(LITELLM_URL=litellm.info["URL"], LITELLM_MASTER_KEY=MASTER_KEY)
    summary = run_suites(path, env, tmp_path)
    expected = expected_verdicts("litellm-1.106.2")
    faulty = [s for s in summary["scenarios"] if s["id"] in FAULT_SCENARIOS]
    assert len(faulty) >= 20
    undelivered = 0
    for scenario in faulty:
        name, reason = scenario["name"], scenario["reason"]
        row = next(r for r in expected if matches(name, r[0]))
        assert scenario["verdict"] == "skip", (name, scenario["verdict"], reason)
        if row[1] == "skip" and "could not be delivered" not in row[2]:
            # skipped before any request with the model-name delivery too, for the same reason
            assert row[2] in reason, (name, reason)
        else:
            assert "could not be delivered through this gateway" in reason, (name, reason)
            assert "does not forward the header" in reason, (name, reason)
            undelivered += 1
    assert undelivered >= 15


def _fault_scenarios() -> set[str]:
    """Ids of the bundled scenarios with a step that injects a fault."""
    from gateprobe.scenario import load_scenarios

    return {
        scenario.id
        for path in sorted((ROOT / "suites").rglob("*.yaml"))
        for scenario in load_scenarios(path)
        if any("fault" in step.request for step in scenario.steps)
    }


FAULT_SCENARIOS = _fault_scenarios()


@pytest.mark.parametrize("profile", ["portkey-1.15.2", "portkey-1.15.2-forward-headers"])
def test_portkey_verdicts_are_those_established_by_hand(
    portkey: Gateway, profile: str, tmp_path: Path
) -> None:
    env = _env(
        PORTKEY_URL=portkey.info["URL"],
        PORTKEY_CUSTOM_HOST=portkey.info["CUSTOM_HOST"],
        PORTKEY_PROVIDER_KEY=MASTER_KEY,
    )
    summary = check_run(profile, env, tmp_path)
    auth = [s for s in summary["scenarios"] if s["area"] == "auth" and s["verdict"] == "skip"]
    assert any("does not authenticate" in s["reason"] for s in auth)


def test_the_recipes_are_beside_the_project() -> None:
    assert (RECIPES / "start.sh").is_file(), f"no gateway recipes in {RECIPES}"
    assert shutil.which("bash")
