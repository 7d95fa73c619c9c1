"""Target profiles: defaults, ${VAR} expansion, keys from the environment, errors with lines."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gateprobe.errors import UsageError
from gateprobe.http import Limits
from gateprobe.target import DEFAULT_PATHS, Deviation, Dialect, Target, load_target

MINIMAL = "name: gw\nbase_url: http://127.0.0.1:3000\n"


def write(tmp_path: Path, text: str, name: str = "target.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), "utf-8")
    return path


def error_of(path: Path, env: dict[str, str] | None = None) -> UsageError:
    with pytest.raises(UsageError) as info:
        load_target(path, env or {})
    return info.value


# -- defaults ---------------------------------------------------------------------------------


def test_a_minimal_profile_gets_every_default(tmp_path: Path) -> None:
    target = load_target(write(tmp_path, MINIMAL), {})
    assert target.name == "gw"
    assert target.base_url == "http://127.0.0.1:3000"
    assert target.source == str(tmp_path / "target.yaml")
    assert (
        dict(target.paths)
        == DEFAULT_PATHS
        == {
            "openai": "/v1",
            "anthropic": "/v1",
            "gemini": "/v1beta",
        }
    )
    assert dict(target.headers) == {}
    assert dict(target.keys) == {} and dict(target.key_env) == {}
    assert dict(target.models) == {}
    assert target.capabilities == frozenset()
    assert target.dialect == Dialect()
    assert target.dialect.insufficient_quota_status == 402
    assert target.dialect.unknown_model_status == 404
    assert target.dialect.auth_error_status == 401
    assert dict(target.dialect.error_envelope) == {
        "openai": "openai",
        "anthropic": "anthropic",
        "gemini": "gemini",
    }
    assert target.dialect.usage_chunk_by_default is False
    assert target.dialect.request_id_header == "x-request-id"
    assert target.deviations == ()
    assert target.quota_probe == "none"
    assert target.limits == Limits(connect=5.0, read=30.0, total=60.0)
    assert dict(target.slo) == {}
    assert target.provision == "none"
    assert target.description == ""


def test_a_full_profile_is_read_field_by_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        name: full
        description: every field
        base_url: https://gw.example/
        provision: none
        paths: {openai: /api/v1, anthropic: /claude/v1}
        headers: {X-Portkey-Provider: openai}
        keys: {valid: GW_VALID, disabled: GW_DISABLED}
        models:
          chat: {openai: gpt-4o-mini, gemini: gemini-2.5-flash}
          embeddings: text-embedding-3-small
        capabilities: [openai.chat, openai.chat.stream]
        dialect:
          insufficient_quota_status: 403
          unknown_model_status: 503
          auth_error_status: 400
          error_envelope: {anthropic: openai}
          usage_chunk_by_default: true
          request_id_header: X-Oneapi-Request-Id
        deviations:
          - {scenario: "auth.*", check: error_envelope, reason: no param}
          - {scenario: models.list, reason: bare gemini ids}
        quota_probe: {kind: new-api}
        timeouts: {connect: 1.5, read: 7, total: 9}
        slo: {ttft_p99_ms: 1500, error_ratio: 0.02}
        """,
    )
    target = load_target(path, {"GW_VALID": "sk-valid-1", "GW_DISABLED": "sk-disabled-1"})
    assert target.base_url == "https://gw.example"  # the trailing slash is dropped
    assert target.description == "every field"
    # Given prefixes replace the defaults; the others stay.
    assert dict(target.paths) == {
        "openai": "/api/v1",
        "anthropic": "/claude/v1",
        "gemini": "/v1beta",
    }
    assert dict(target.headers) == {"X-Portkey-Provider": "openai"}
    assert dict(target.keys) == {"valid": "sk-valid-1", "disabled": "sk-disabled-1"}
    assert dict(target.key_env) == {"valid": "GW_VALID", "disabled": "GW_DISABLED"}
    assert target.key("valid") == "sk-valid-1"
    assert target.key("expired") is None
    assert target.model("chat", "openai") == "gpt-4o-mini"
    assert target.model("chat", "anthropic") is None
    assert target.model("embeddings", "openai") == "text-embedding-3-small"
    assert target.model("embeddings", "gemini") == "text-embedding-3-small"
    assert target.model("images", "openai") is None
    assert target.capabilities == {"openai.chat", "openai.chat.stream"}
    assert target.dialect.insufficient_quota_status == 403
    assert target.dialect.unknown_model_status == 503
    assert target.dialect.auth_error_status == 400
    # A partial envelope map is merged over "each protocol answers in its own envelope".
    assert dict(target.dialect.error_envelope) == {
        "openai": "openai",
        "anthropic": "openai",
        "gemini": "gemini",
    }
    assert target.dialect.usage_chunk_by_default is True
    assert target.dialect.request_id_header == "x-oneapi-request-id"  # lower-cased
    assert target.deviations == (
        Deviation("auth.*", "error_envelope", "no param"),
        Deviation("models.list", None, "bare gemini ids"),
    )
    assert target.quota_probe == "new-api"
    assert target.limits == Limits(connect=1.5, read=7.0, total=9.0)
    assert dict(target.slo) == {"ttft_p99_ms": 1500, "error_ratio": 0.02}


def test_template_view_and_metadata_never_carry_the_secrets(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "keys: {valid: GW_VALID}\nmodels: {chat: m1}\n")
    target = load_target(path, {"GW_VALID": "sk-very-secret-value"})
    view, meta = target.template_view(), target.metadata()
    assert "sk-very-secret-value" not in repr(view) + repr(meta)
    assert view["key_kinds"] == meta["key_kinds"] == ["valid"]
    assert view["models"] == {"chat": "m1"}
    assert view["dialect"]["unknown_model_status"] == 404
    assert meta["source"] == str(path)
    assert target.redactor().text("key sk-very-secret-value") != "key sk-very-secret-value"


# -- ${VAR} expansion -------------------------------------------------------------------------


def test_a_variable_in_base_url_is_read_from_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "name: gw\nbase_url: ${GW_URL}/\n")
    assert load_target(path, {"GW_URL": "http://10.0.0.7:3000"}).base_url == "http://10.0.0.7:3000"


def test_a_default_applies_when_the_variable_is_unset_or_empty(tmp_path: Path) -> None:
    path = write(tmp_path, "name: gw\nbase_url: ${GW_URL:-http://127.0.0.1:8787}\n")
    assert load_target(path, {}).base_url == "http://127.0.0.1:8787"
    assert load_target(path, {"GW_URL": ""}).base_url == "http://127.0.0.1:8787"
    assert load_target(path, {"GW_URL": "https://set.example"}).base_url == "https://set.example"


def test_an_empty_default_is_allowed(tmp_path: Path) -> None:
    path = write(tmp_path, "name: gw\nbase_url: http://h${PORT_SUFFIX:-}\n")
    assert load_target(path, {}).base_url == "http://h"
    assert load_target(path, {"PORT_SUFFIX": ":81"}).base_url == "http://h:81"


def test_several_variables_in_one_value(tmp_path: Path) -> None:
    path = write(tmp_path, "name: gw\nbase_url: ${SCHEME:-http}://${HOST}:${PORT:-80}\n")
    assert load_target(path, {"HOST": "gw.local"}).base_url == "http://gw.local:80"


def test_an_unset_variable_without_default_names_file_line_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, "# a comment\nname: gw\nbase_url: ${GW_URL}\n")
    error = error_of(path)
    assert str(error) == f"{path}:3: base_url: environment variable GW_URL is not set"
    assert (error.file, error.line, error.field) == (str(path), 3, "base_url")
    # Set but empty counts as unset.
    assert "GW_URL is not set" in str(error_of(path, {"GW_URL": ""}))


def test_headers_are_expanded_too(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        name: gw
        base_url: http://h
        headers:
          x-portkey-provider: ${PROVIDER:-openai}
          x-tenant: team-${TEAM}
        """,
    )
    target = load_target(path, {"TEAM": "blue"})
    assert dict(target.headers) == {"x-portkey-provider": "openai", "x-tenant": "team-blue"}
    error = error_of(path)
    assert str(error) == f"{path}:5: headers.x-tenant: environment variable TEAM is not set"


def test_base_url_must_be_http_after_expansion(tmp_path: Path) -> None:
    path = write(tmp_path, "name: gw\nbase_url: ${GW_URL:-localhost:3000}\n")
    error = error_of(path)
    assert str(error) == (
        f"{path}:2: base_url: must start with http:// or https://, got 'localhost:3000'"
    )


def test_env_defaults_to_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "name: gw\nbase_url: ${GP_TEST_URL}\nkeys: {valid: GP_TEST_KEY}\n")
    monkeypatch.setenv("GP_TEST_URL", "http://from-env:1")
    monkeypatch.setenv("GP_TEST_KEY", "sk-from-env")
    target = load_target(path)
    assert target.base_url == "http://from-env:1"
    assert target.key("valid") == "sk-from-env"


# -- keys from the environment ----------------------------------------------------------------


def test_keys_are_read_from_the_variables_the_profile_names(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "keys:\n  valid: K_VALID\n  admin: K_ADMIN\n")
    target = load_target(path, {"K_VALID": "sk-1", "K_ADMIN": "adm-2", "UNRELATED": "x"})
    assert dict(target.keys) == {"valid": "sk-1", "admin": "adm-2"}


@pytest.mark.parametrize("value", [None, ""])
def test_a_missing_key_variable_names_its_line_and_kind(tmp_path: Path, value: str | None) -> None:
    path = write(tmp_path, MINIMAL + "keys:\n  valid: K_VALID\n  disabled: K_DISABLED\n")
    env = {"K_VALID": "sk-1"} if value is None else {"K_VALID": "sk-1", "K_DISABLED": value}
    error = error_of(path, env)
    assert str(error) == (
        f"{path}:5: keys.disabled: environment variable K_DISABLED is not set (key kind 'disabled')"
    )


def test_only_the_needed_keys_must_be_set_when_the_run_names_them(tmp_path: Path) -> None:
    """A load run sends with the valid key: the profile's other kinds may be unset."""
    path = write(tmp_path, MINIMAL + "keys:\n  valid: K_VALID\n  disabled: K_DISABLED\n")
    target = load_target(path, {"K_VALID": "sk-1"}, needed_keys={"valid"})
    assert dict(target.keys) == {"valid": "sk-1"}
    with pytest.raises(UsageError, match=r":4: keys.valid: environment variable K_VALID"):
        load_target(path, {"K_DISABLED": "sk-2"}, needed_keys={"valid"})


# -- validation errors: file:line: field ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "field", "message"),
    [
        (MINIMAL + "bogus: 1\n", 3, "bogus", "unknown field 'bogus'"),
        ("base_url: http://h\n", 1, "<document>", "'name' is a required property"),
        ("name: gw\n", 1, "<document>", "'base_url' is a required property"),
        (MINIMAL + "keys:\n  valid: A\n  weird: B\n", 5, "keys.weird", "'weird' is not one of"),
        (MINIMAL + "keys:\n  valid: 1BAD\n", 4, "keys.valid", "does not match"),
        (MINIMAL + "paths:\n  openai: /v1/\n", 4, "paths.openai", "'/v1/' does not match"),
        (MINIMAL + "paths:\n  cohere: /v1\n", 4, "paths.cohere", "unknown field 'cohere'"),
        (
            MINIMAL + "dialect:\n  insufficient_quota_status: 700\n",
            4,
            "dialect.insufficient_quota_status",
            "700 is greater than the maximum of 599",
        ),
        (
            MINIMAL + "dialect:\n  error_envelope:\n    anthropic: soap\n",
            5,
            "dialect.error_envelope.anthropic",
            "'soap' is not one of",
        ),
        (
            MINIMAL + "dialect:\n  quota_status: 403\n",
            4,
            "dialect.quota_status",
            "unknown field 'quota_status'",
        ),
        (
            MINIMAL + "deviations:\n  - scenario: auth.*\n    check: status\n",
            4,
            "deviations[0]",
            "'reason' is a required property",
        ),
        (MINIMAL + "capabilities: [Openai.Chat]\n", 3, "capabilities[0]", "does not match"),
        (MINIMAL + "quota_probe: {kind: magic}\n", 3, "quota_probe.kind", "'magic' is not one"),
        (MINIMAL + "timeouts: {read: 0}\n", 3, "timeouts.read", "less than or equal"),
        (MINIMAL + "provision: always\n", 3, "provision", "'always' is not one of"),
        (MINIMAL + "models:\n  chat: {cohere: x}\n", 4, "models.chat", "not valid under any"),
        (MINIMAL + "slo: {ttft_p99_ms: -1}\n", 3, "slo.ttft_p99_ms", "less than the minimum"),
    ],
)
def test_every_validation_error_names_file_line_and_field(
    tmp_path: Path, text: str, line: int, field: str, message: str
) -> None:
    path = write(tmp_path, text)
    error = error_of(path)
    assert (error.file, error.line, error.field) == (str(path), line, field)
    assert str(error).startswith(f"{path}:{line}: {field}: ")
    assert message in str(error)


def test_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    error = error_of(tmp_path / "nope.yaml")
    assert str(error) == f"{tmp_path / 'nope.yaml'}: target file not found"


def test_a_yaml_syntax_error_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: gw\nbase_url: [http://h\n")
    error = error_of(path)
    assert error.line == 3 and "invalid YAML" in str(error)


def test_the_top_level_must_be_one_mapping(tmp_path: Path) -> None:
    listed = write(tmp_path, "- a\n- b\n", "list.yaml")
    assert str(error_of(listed)) == f"{listed}:1: the top level must be a mapping"
    two = write(tmp_path, MINIMAL + "---\n" + MINIMAL, "two.yaml")
    assert str(error_of(two)) == f"{two}:4: a target file holds exactly one YAML document"
    empty = write(tmp_path, "# nothing\n", "empty.yaml")
    assert "exactly one YAML document" in str(error_of(empty))


# -- deviations -------------------------------------------------------------------------------


def test_deviations_match_scenarios_by_glob_and_checks_by_name() -> None:
    target = Target(
        name="gw",
        base_url="http://h",
        deviations=(
            Deviation("auth.*", "error_envelope", "no param on auth errors"),
            Deviation("models.list", None, "bare gemini ids"),
            Deviation("streaming.?ttft", "max_ttft_ms", "slow first token"),
        ),
    )
    found = target.deviation("auth.missing_key", "error_envelope")
    assert found is not None and found.reason == "no param on auth errors"
    assert target.deviation("auth.missing_key", "status") is None  # another check
    assert target.deviation("errors.auth_x", "error_envelope") is None  # glob is anchored
    assert target.deviation("xauth.missing", "error_envelope") is None
    # No check given: any check of that scenario.
    for check in ("json_schema", "status", "stream"):
        found = target.deviation("models.list", check)
        assert found is not None and found.reason == "bare gemini ids"
    assert target.deviation("models.list_more", "status") is None
    assert target.deviation("streaming.xttft", "max_ttft_ms") is not None
    assert target.deviation("streaming.ttft", "max_ttft_ms") is None


def test_the_first_matching_deviation_wins() -> None:
    target = Target(
        name="gw",
        base_url="http://h",
        deviations=(Deviation("auth.*", None, "first"), Deviation("auth.x", "status", "second")),
    )
    found = target.deviation("auth.x", "status")
    assert found is not None and found.reason == "first"
    assert Deviation("*", None, "all").matches("anything.at_all", "json")


# -- profile vocabulary: authentication, credentials, directives, per-protocol headers -------


def test_auth_credentials_and_directives_are_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        MINIMAL
        + textwrap.dedent(
            """\
        auth:
          required: false
          credentials: {anthropic: [x-api-key]}
        directives: header
        headers: {x-portkey-provider: openai}
        protocol_headers:
          anthropic: {X-Portkey-Provider: anthropic}
        """
        ),
    )
    target = load_target(path, {})
    assert target.auth_required is False and target.directives == "header"
    assert target.credentials["anthropic"] == ("x-api-key",)
    assert target.credentials["gemini"] == ("x-goog-api-key", "query")  # the default stays
    assert not target.claims("auth.keys")
    assert target.claims("auth.anthropic.x-api-key")
    assert not target.claims("auth.anthropic.bearer")
    assert target.headers_for("anthropic") == {"x-portkey-provider": "anthropic"}
    assert target.headers_for("openai") == {"x-portkey-provider": "openai"}


def test_a_default_profile_authenticates_and_takes_the_documented_forms(tmp_path: Path) -> None:
    target = load_target(write(tmp_path, MINIMAL), {})
    assert target.auth_required and target.directives == "model"
    assert target.claims("auth.keys") and target.claims("auth.anthropic.bearer")
    assert "auth.keys" in target.template_view()["capabilities"]


def test_an_unknown_capability_names_file_line_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "capabilities: [openai.chat, openai.chat.strem]\n")
    error = error_of(path)
    assert f"{path}:3: capabilities: unknown capability 'openai.chat.strem'" in str(error)


def test_an_unknown_directive_delivery_is_refused(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, MINIMAL + "directives: body\n"))
    assert "directives" in str(error) and str(error).startswith(str(tmp_path))
