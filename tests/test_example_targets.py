"""The example target profiles in fixtures/targets/ load, validate and state the documented facts.

Facts checked here come from shared/reference/gateway-behaviour.md (cited as §N in the
profiles' comments).
"""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gateprobe._files import load_documents
from gateprobe.checks import REGISTRY
from gateprobe.errors import UsageError
from gateprobe.scenario import load_scenarios, scenario_files
from gateprobe.target import Target, load_target

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ROOT / "fixtures" / "targets"
SUITES = ROOT / "suites"
EXAMPLES = ("new-api", "one-api", "litellm", "portkey")
PREFIX = {"new-api": "NEWAPI", "one-api": "ONEAPI", "litellm": "LITELLM", "portkey": "PORTKEY"}
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")


def profile_files() -> list[Path]:
    return sorted(TARGETS.glob("*.yaml"))


def variables_of(path: Path) -> set[str]:
    """Every environment variable a profile reads: its key variables and its ${VAR}s."""
    data = load_documents(path)[0].data
    return set((data.get("keys") or {}).values()) | set(_VARIABLE.findall(path.read_text("utf-8")))


def fake_value(variable: str) -> str:
    return "http://127.0.0.1:9" if variable.endswith("_URL") else f"fake-{variable.lower()}"


@pytest.fixture
def fake_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for path in profile_files():
        for variable in variables_of(path):
            monkeypatch.setenv(variable, fake_value(variable))


def example(name: str) -> Target:
    """The profile with only its key variables set: every ${VAR} takes its default."""
    path = TARGETS / f"{name}.yaml"
    keys = load_documents(path)[0].data.get("keys") or {}
    return load_target(path, {variable: fake_value(variable) for variable in keys.values()})


def mock_capabilities() -> set[str]:
    data = load_documents(TARGETS / "mock.yaml")[0].data
    return set(data["capabilities"])


def scenario_ids() -> set[str]:
    return {s.id for path in scenario_files(SUITES) for s in load_scenarios(path, SUITES)}


def test_the_examples_are_there() -> None:
    assert {p.stem for p in profile_files()} >= {"mock", *EXAMPLES}


@pytest.mark.usefixtures("fake_env")
@pytest.mark.parametrize("path", profile_files(), ids=lambda p: p.name)
def test_every_profile_loads_from_the_environment(path: Path) -> None:
    target = load_target(path)  # os.environ, with the fake variables set
    assert target.name and target.base_url.startswith("http")
    for kind, variable in target.key_env.items():
        assert target.key(kind) == fake_value(variable)
    assert target.capabilities
    assert target.model("chat", "openai")


@pytest.mark.parametrize("name", EXAMPLES)
def test_without_the_key_variables_the_profile_names_the_missing_one(name: str) -> None:
    path = TARGETS / f"{name}.yaml"
    with pytest.raises(UsageError) as info:
        load_target(path, {})
    assert f"environment variable {PREFIX[name]}_KEY_VALID is not set" in str(info.value)
    assert str(info.value).startswith(f"{path}:")


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_conventions(name: str) -> None:
    target = example(name)
    text = (TARGETS / f"{name}.yaml").read_text("utf-8")
    # Key variables are <GATEWAY>_KEY_<KIND>.
    for kind, variable in target.key_env.items():
        assert variable == f"{PREFIX[name]}_KEY_{kind.upper()}"
    # The same capability vocabulary as the mock's profile.
    assert target.capabilities <= mock_capabilities() - {"mock.faults"}
    # Base URL from <GATEWAY>_URL with a local default.
    assert f"${{{PREFIX[name]}_URL:-http://127.0.0.1:" in text
    # Non-obvious values cite the fact sheet.
    assert len(re.findall(r"§\d", text)) >= 5


@pytest.mark.parametrize("name", EXAMPLES)
def test_deviations_name_real_scenarios_and_checks_and_give_a_reason(name: str) -> None:
    ids = scenario_ids()
    for deviation in example(name).deviations:
        assert any(fnmatch.fnmatchcase(i, deviation.scenario) for i in ids), deviation
        assert deviation.check is None or deviation.check in REGISTRY, deviation
        assert "§" in deviation.reason, deviation


def test_new_api_facts() -> None:
    target = example("new-api")
    assert target.base_url == "http://127.0.0.1:3000"
    assert dict(target.paths) == {"openai": "/v1", "anthropic": "/v1", "gemini": "/v1beta"}
    assert target.dialect.insufficient_quota_status == 403
    assert target.dialect.unknown_model_status == 503
    assert target.dialect.auth_error_status == 401
    # OpenAI-shaped auth errors on /v1/messages and /v1beta too.
    assert dict(target.dialect.error_envelope) == {
        "openai": "openai",
        "anthropic": "openai",
        "gemini": "openai",
    }
    assert target.dialect.usage_chunk_by_default is True
    assert target.dialect.request_id_header == "x-oneapi-request-id"
    assert target.quota_probe == "new-api"
    assert {"anthropic.chat", "gemini.chat.stream", "openai.responses"} <= target.capabilities
    assert target.deviation("auth.missing_key", "error_envelope") is not None
    assert target.deviation("models.list", "json_schema") is not None


def test_one_api_facts() -> None:
    target = example("one-api")
    assert not any(c.startswith(("anthropic.", "gemini.")) for c in target.capabilities)
    assert not {"openai.responses", "openai.rerank"} & target.capabilities
    assert target.dialect.insufficient_quota_status == 403
    assert target.dialect.unknown_model_status == 503
    assert target.dialect.error_envelope["openai"] == "openai"
    assert target.dialect.usage_chunk_by_default is False
    assert target.quota_probe == "one-api"
    assert target.deviation("errors.unknown_model", "error_envelope") is not None


def test_litellm_facts() -> None:
    target = example("litellm")
    assert target.dialect.insufficient_quota_status == 422  # budget_exceeded in 1.109.1
    assert target.dialect.error_envelope["anthropic"] == "openai"  # auth errors
    assert target.dialect.error_envelope["gemini"] == "openai"
    assert target.dialect.request_id_header == "x-litellm-call-id"
    assert target.quota_probe == "litellm"
    assert target.key("rate_limited") is not None
    assert target.deviation("errors.unknown_model", "error_envelope") is not None


def test_portkey_facts() -> None:
    target = example("portkey")
    assert dict(target.headers) == {"x-portkey-provider": "openai"}
    assert set(target.keys) == {"valid"}  # no gateway-issued keys
    assert target.quota_probe == "none"
    assert not any(c.startswith("quota.") for c in target.capabilities)
    env = {"PORTKEY_KEY_VALID": "sk-x", "PORTKEY_PROVIDER": "anthropic"}
    provider = load_target(TARGETS / "portkey.yaml", env)
    assert provider.headers["x-portkey-provider"] == "anthropic"


def _script() -> str:
    beside = Path(sys.executable).parent / "gateprobe"
    assert beside.exists(), "the gateprobe console script is not installed"
    return str(beside)


def test_gateprobe_validate_accepts_every_profile() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(tuple(PREFIX.values()))}
    env = {k: v for k, v in env.items() if not k.startswith("GATEPROBE_MOCK_")}
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [_script(), "validate", str(TARGETS)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    for path in profile_files():
        assert f"ok  {path}" in result.stdout
    assert f"{len(profile_files())} file(s) valid" in result.stdout
