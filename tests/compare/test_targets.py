"""What --target names: a profile file or a bundled-mock variant; bad ones are usage errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gateprobe.compare.targets import parse_target, unique_labels, write_mock_profile
from gateprobe.errors import UsageError
from gateprobe.provision import MOCK_TARGET


def test_a_mock_variant_carries_its_defects_and_dialect() -> None:
    spec = parse_target(
        "mock:defect=stream-usage-zero,defect=auth-bypass,insufficient-quota-status=403"
    )
    assert spec.is_mock
    assert spec.defects == ("stream-usage-zero", "auth-bypass")
    config = spec.mock_config()
    assert {"stream-usage-zero", "auth-bypass"} <= config.defects
    assert config.insufficient_quota_status == 403
    assert spec.default_label() == (
        "mock[defect=stream-usage-zero,defect=auth-bypass,insufficient-quota-status=403]"
    )
    assert parse_target("mock:label=new-api-like,path-style=prefixed").default_label() == (
        "new-api-like"
    )


def test_the_variant_profile_declares_its_dialect(tmp_path: Path) -> None:
    spec = parse_target("mock:insufficient-quota-status=403,path-style=prefixed")
    path = write_mock_profile(spec, "variant", tmp_path)
    data = yaml.safe_load(path.read_text("utf-8"))
    base = yaml.safe_load(MOCK_TARGET.read_text("utf-8"))
    assert data["name"] == "variant"
    assert data["dialect"]["insufficient_quota_status"] == 403
    assert data["paths"] == {"openai": "/v1", "anthropic": "/claude/v1", "gemini": "/gemini/v1beta"}
    assert data["keys"] == base["keys"] and data["capabilities"] == base["capabilities"]
    # a defect is not declared: the suites must find it
    defect = write_mock_profile(parse_target("mock:defect=auth-bypass"), "d", tmp_path / "d")
    assert yaml.safe_load(defect.read_text("utf-8"))["dialect"] == base["dialect"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mock:defect=no-such-bug", "unknown defect 'no-such-bug'"),
        ("mock:insufficient-quota-status=200", "must be a 4xx or 5xx status"),
        ("mock:insufficient-quota-status=four", "takes an integer, not 'four'"),
        ("mock:path-style=sideways", "path-style must be one of standard, prefixed, both"),
        ("mock:colour=blue", "unknown mock option 'colour'"),
        ("mock:defect", "'defect' is not OPTION=VALUE"),
        ("no/such/profile.yaml", "target file not found"),
    ],
)
def test_a_bad_target_is_a_usage_error_naming_it(text: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_target(text)
    assert message in str(caught.value)


def test_labels_are_unique() -> None:
    specs = [parse_target("mock"), parse_target("mock"), parse_target(str(MOCK_TARGET))]
    assert unique_labels(specs) == ["mock", "mock#2", "bundled-mock"]
