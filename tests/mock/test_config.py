"""MockConfig: the embedded default, YAML files merged over it, errors that name file/line/field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from gateprobe.mock.config import (
    AccountConfig,
    ChannelConfig,
    ConfigError,
    KeyConfig,
    MockConfig,
    ModelConfig,
)
from gateprobe.mock.defects import DEFECTS


def write(tmp_path: Path, text: str, name: str = "gateway.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, "utf-8")
    return path


def load_error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        MockConfig.load(path)
    assert type(info.value) is ConfigError
    return str(info.value)


# -- the embedded default -------------------------------------------------------------------


def test_default_loads() -> None:
    cfg = MockConfig.default()
    assert cfg.mode == "gateway"
    assert cfg.admin_token == "gp-admin-token"
    assert cfg.defects == frozenset()
    assert {a.name for a in cfg.accounts} >= {"main", "second", "poor"}
    keys = {k.name: k for k in cfg.keys}
    assert keys["valid"].account == "main" and keys["valid"].status == "enabled"
    assert keys["disabled"].status == "disabled"
    assert keys["expired"].status == "expired"
    assert keys["low_quota"].quota == 10
    assert keys["restricted"].models == ("gpt-4o-mini",)
    assert keys["limited_rate"].rpm == 3
    models = {m.id: m for m in cfg.models}
    assert "chat" in models["gpt-4o-mini"].capabilities
    assert models["gpt-image-1"].per_call == 20000
    assert models["gpt-4o-pro"].variants == ("pro",)
    assert [c.id for c in cfg.channels] == ["primary", "premium"]
    # Every key names an existing account, and secrets are unique.
    assert all(k.account in {a.name for a in cfg.accounts} for k in cfg.keys)
    assert len({k.secret for k in cfg.keys}) == len(cfg.keys)


def test_default_is_equal_each_time() -> None:
    assert MockConfig.default() == MockConfig.default()


# -- loading files --------------------------------------------------------------------------


def test_load_merges_over_the_default(tmp_path: Path) -> None:
    path = write(tmp_path, "seed: 7\nitl_ms: 5\nrpm: 100\ndefects: [missing-done]\n")
    cfg = MockConfig.load(path)
    default = MockConfig.default()
    assert cfg.seed == 7
    assert cfg.itl_ms == 5.0
    assert cfg.rpm == 100
    assert cfg.defects == frozenset({"missing-done"})
    # What the file leaves out keeps the default's values.
    assert cfg.keys == default.keys
    assert cfg.models == default.models
    assert cfg.accounts == default.accounts
    assert cfg.channels == default.channels
    assert cfg.max_output_tokens == default.max_output_tokens
    assert cfg == default.replace(seed=7, itl_ms=5.0, rpm=100, defects=frozenset({"missing-done"}))


def test_load_replaces_whole_lists(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
accounts:
  - {name: solo, balance: 123}
keys:
  - {name: only, secret: sk-only, account: solo, quota: 50, models: [m1]}
models:
  - {id: m1, protocols: [openai], capabilities: [chat, tools], per_call: 3}
channels:
  - {id: c1, multiplier: 1.5}
""",
    )
    cfg = MockConfig.load(path)
    assert cfg.accounts == (AccountConfig("solo", 123),)
    assert cfg.keys == (KeyConfig("only", "sk-only", "solo", quota=50, models=("m1",)),)
    assert cfg.models == (
        ModelConfig("m1", protocols=("openai",), capabilities=("chat", "tools"), per_call=3),
    )
    assert cfg.channels == (ChannelConfig("c1", ("*",), 1.5),)


@pytest.mark.parametrize("text", ["", "# nothing but a comment\n", "---\n"])
def test_empty_file_is_the_default(tmp_path: Path, text: str) -> None:
    assert MockConfig.load(write(tmp_path, text)) == MockConfig.default()


def test_load_accepts_str_paths(tmp_path: Path) -> None:
    assert MockConfig.load(str(write(tmp_path, "seed: 3\n"))).seed == 3


# -- errors name the file, the line and the field -------------------------------------------

KEY_BLOCK = """\
seed: 1
keys:
  - name: a
    secret: sk-a
    account: main
  - name: b
    secret: sk-b
    account: main
"""

ERROR_CASES: dict[str, tuple[str, int | None, str, str]] = {
    # case: (file text, expected line, field path, a phrase of the message)
    "unknown top-level field": ("seed: 1\nitl_ms: 2\nbogus: 3\n", 3, "bogus", "unknown field"),
    "unknown key field": (KEY_BLOCK + "    colour: red\n", 9, "keys[1].colour", "unknown field"),
    "unknown account field": (
        "accounts:\n  - name: main\n    balance: 5\n    owner: me\n",
        4,
        "accounts[0].owner",
        "unknown field",
    ),
    "key with a missing account": (
        KEY_BLOCK.replace("account: main\n  - name: b", "account: nobody\n  - name: b"),
        5,
        "keys[0].account",
        "no account named 'nobody'",
    ),
    "duplicate key secret": (
        KEY_BLOCK.replace("sk-b", "sk-a"),
        7,
        "keys[1].secret",
        "duplicate secret",
    ),
    "duplicate key name": (KEY_BLOCK.replace("name: b", "name: a"), 2, "keys", "duplicate name"),
    "string for an integer": ("seed: 1\nmax_body_bytes: lots\n", 2, "max_body_bytes", "integer"),
    "float for an integer": ("seed: 1.5\n", 1, "seed", "integer"),
    "bool for an integer": ("ledger_size: true\n", 1, "ledger_size", "integer"),
    "negative integer": ("\n\nusage_log_size: -1\n", 3, "usage_log_size", "integer >= 0"),
    "string for a number": ("ttft_ms: slow\n", 1, "ttft_ms", "number"),
    "negative number": ("itl_ms: -2\n", 1, "itl_ms", "number >= 0"),
    "zero rpm": ("rpm: 0\n", 1, "rpm", "integer >= 1"),
    "bad mode": ("mode: proxy\n", 1, "mode", "gateway, upstream"),
    "bad path style": ("path_style: weird\n", 1, "path_style", "standard"),
    "empty admin token": ("admin_token: ''\n", 1, "admin_token", "non-empty string"),
    "keys not a list": ("keys: {a: 1}\n", 1, "keys", "must be a list"),
    "key not a mapping": ("keys:\n  - just-a-string\n", 2, "keys[0]", "must be a mapping"),
    "key quota wrong type": (
        KEY_BLOCK + "    quota: plenty\n",
        9,
        "keys[1].quota",
        "integer",
    ),
    "key status unknown": (
        KEY_BLOCK + "    status: paused\n",
        9,
        "keys[1].status",
        "enabled, disabled, expired",
    ),
    "key models not a list": (
        KEY_BLOCK + "    models: gpt-4o-mini\n",
        9,
        "keys[1].models",
        "list of strings",
    ),
    "account balance wrong type": (
        "accounts:\n  - {name: main, balance: 1.5}\n",
        2,
        "accounts[0].balance",
        "integer",
    ),
    "model id with --": (
        "models:\n  - id: gpt--x\n    capabilities: [chat]\n",
        2,
        "models[0].id",
        "'--'",
    ),
    "model id with /": ("models:\n  - id: org/model\n", 2, "models[0].id", "'/'"),
    "unknown capability": (
        "models:\n  - id: m\n    capabilities: [chat, telepathy]\n",
        3,
        "models[0].capabilities",
        "unknown capability 'telepathy'",
    ),
    "unknown protocol": (
        "models:\n  - id: m\n    protocols: [openai, grpc]\n",
        3,
        "models[0].protocols",
        "unknown protocol 'grpc'",
    ),
    "model ratio wrong type": (
        "models:\n  - id: m\n  - id: n\n    input_ratio: cheap\n",
        4,
        "models[1].input_ratio",
        "number",
    ),
    "model max_output_tokens zero": (
        "models:\n  - id: m\n    max_output_tokens: 0\n",
        3,
        "models[0].max_output_tokens",
        "integer >= 1",
    ),
    "unknown defect": ("seed: 0\ndefects: [missing-done, typo-defect]\n", 2, "defects", "typo"),
    "defects not a list": ("defects: missing-done\n", 1, "defects", "list of strings"),
    "no channels": ("channels: []\n", 1, "channels", "at least one channel"),
    "channel multiplier wrong type": (
        "channels:\n  - id: c\n    multiplier: [2]\n",
        3,
        "channels[0].multiplier",
        "number",
    ),
    "min above max output tokens": (
        "min_output_tokens: 40\nmax_output_tokens: 10\n",
        1,
        "min_output_tokens",
        "must not exceed",
    ),
}


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_errors_name_file_line_and_field(tmp_path: Path, case: str) -> None:
    text, line, field, phrase = ERROR_CASES[case]
    path = write(tmp_path, text)
    message = load_error(path)
    assert message.startswith(f"{path}:{line}: {field}: "), message
    assert phrase in message, message


def test_missing_account_line_falls_back_when_the_key_comes_from_the_default(
    tmp_path: Path,
) -> None:
    # The file replaces the accounts; the default keys then reference a missing account.
    # The key is not in the file, so the message names the file and the field only.
    path = write(tmp_path, "accounts:\n  - {name: other, balance: 1}\n")
    message = load_error(path)
    assert re.match(
        rf"{re.escape(str(path))}: keys\[0\]\.account: no account named 'main'", message
    )


def test_bad_yaml_syntax(tmp_path: Path) -> None:
    path = write(tmp_path, "seed: 1\nkeys: [a, b\nmode: gateway\n")
    message = load_error(path)
    assert re.match(rf"{re.escape(str(path))}:\d+: invalid YAML", message), message
    line = int(message[len(str(path)) + 1 :].split(":", 1)[0])
    assert line >= 2


def test_bad_yaml_indentation(tmp_path: Path) -> None:
    path = write(tmp_path, "seed: 1\n  mode: gateway\n bad\n")
    assert f"{path}:2: invalid YAML" in load_error(path)


@pytest.mark.parametrize(("text", "kind"), [("- a\n- b\n", "list"), ("just text\n", "scalar")])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str, kind: str) -> None:
    path = write(tmp_path, text)
    assert load_error(path) == f"{path}:1: the top level must be a mapping", kind


def test_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    message = load_error(missing)
    assert message.startswith(f"{missing}: cannot read")
    message = load_error(tmp_path)  # a directory
    assert message.startswith(f"{tmp_path}: cannot read")


def test_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("admin_token: caf\xe9\n".encode("latin-1"))
    assert load_error(path).startswith(str(path))


def test_unsafe_yaml_tags_are_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, "seed: !!python/object/apply:os.getpid []\n")
    assert "invalid YAML" in load_error(path)


@pytest.mark.parametrize(
    "text",
    [
        "1: 2\n",
        "1: 2\nbogus: 3\n",
        "true: 1\n",
        "null: 1\n",
        "keys:\n  - {1: a}\n",
        "keys:\n  - null\n",
        "keys: 5\n",
        "accounts:\n  - name: [main]\n",
        "accounts:\n  - {name: main, balance: null}\n",
        "models:\n  - {id: 5}\n",
        "models:\n  - {id: m, variants: pro}\n",
        "models:\n  - {id: m, input_ratio: .nan}\n",
        "models:\n  - {id: m, completion_ratio: .inf}\n",
        "hang_seconds: .nan\n",
        "channels:\n  - {id: c, models: '*'}\n",
        "channels: {id: c}\n",
        "mode: [gateway]\n",
        "path_style: {a: b}\n",
        "rpm: '5'\n",
        "defects: [[missing-done]]\n",
        "seed: 99999999999999999999999999\nmin_output_tokens: 100\n",
        "embedding_dimensions: 1e3\n",
    ],
)
def test_only_config_errors_escape(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    message = load_error(path)
    assert message.startswith(str(path)), message


def test_from_mapping_errors_name_the_source() -> None:
    with pytest.raises(ConfigError) as info:
        MockConfig.from_mapping({"seed": "x"}, source="reset request")
    assert str(info.value).startswith("reset request: seed: ")
    with pytest.raises(ConfigError) as info:
        MockConfig.from_mapping(["not", "a", "mapping"])  # type: ignore[arg-type]
    assert str(info.value).startswith("<config>: <top>: must be a mapping")


def test_every_known_defect_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, yaml.safe_dump({"defects": sorted(DEFECTS)}))
    assert MockConfig.load(path).defects == frozenset(DEFECTS)


# -- to_mapping round-trips -----------------------------------------------------------------


def test_to_mapping_round_trips_the_default() -> None:
    cfg = MockConfig.default()
    data = cfg.to_mapping()
    assert data["keys"][0]["name"] == "valid"
    assert data["defects"] == []
    assert MockConfig.from_mapping(data) == cfg


def test_to_mapping_round_trips_through_a_yaml_file(tmp_path: Path) -> None:
    cfg = MockConfig.default().replace(
        seed=42,
        mode="upstream",
        path_style="both",
        rpm=7,
        itl_ms=2.5,
        defects=frozenset({"double-charge", "no-rollback"}),
        accounts=(AccountConfig("x", 9), AccountConfig("y", 0)),
        keys=(
            KeyConfig("k1", "sk-1", "x", status="disabled", quota=5, models=("m1",), rpm=2),
            KeyConfig("k2", "sk-2", "y", variant="pro"),
        ),
        models=(
            ModelConfig(
                "m1",
                protocols=("openai", "gemini"),
                capabilities=("chat", "json"),
                variants=("pro",),
                input_ratio=0.5,
                completion_ratio=3.0,
                max_output_tokens=64,
                ttft_ms=10.0,
                itl_ms=1.0,
                owned_by="me",
            ),
            ModelConfig("m2", capabilities=("images",), per_call=100),
        ),
        channels=(ChannelConfig("c1", ("m1",), 2.0), ChannelConfig("c2")),
    )
    data = cfg.to_mapping()
    assert data["defects"] == ["double-charge", "no-rollback"]
    assert MockConfig.from_mapping(data) == cfg
    path = write(tmp_path, yaml.safe_dump(data, sort_keys=False))
    assert MockConfig.load(path) == cfg


def test_replace_returns_a_new_config() -> None:
    cfg = MockConfig.default()
    changed = cfg.replace(seed=5)
    assert changed.seed == 5 and cfg.seed == 0
    assert changed.keys is cfg.keys
