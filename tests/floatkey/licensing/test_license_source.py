"""licenseSource and vendor.publicKeys in the configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from floatkey.app import config
from floatkey.errors import ConfigError
from floatkey.licensing import vendor
from floatkey.licensing.signer import PUBLIC_KEY_FILE


@pytest.fixture
def public_key(tmp_path: Path) -> Path:
    vendor.init(tmp_path / "v")
    return tmp_path / "v" / PUBLIC_KEY_FILE


def load(tmp_path: Path, text: str) -> config.Settings:
    path = tmp_path / "f.yaml"
    path.write_text(text)
    return config.load(path)


def test_local_without_vendor_keys_and_vendor_once_a_key_is_configured(
    tmp_path: Path, public_key: Path
) -> None:
    assert config.load(None).vendor_licenses_only is False
    settings = load(tmp_path, f"vendor:\n  publicKeys: [{public_key}]\n")
    assert settings.vendor_licenses_only is True
    both = load(tmp_path, f"licenseSource: local\nvendor:\n  publicKeys: [{public_key}]\n")
    assert both.vendor_licenses_only is False


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("licenseSource: cloud\n", "licenseSource: must be local or vendor"),
        ("licenseSource: vendor\n", "licenseSource: vendor needs at least one key"),
        ("vendor:\n  publicKeys: [/nonexistent/key.pub]\n", "vendor.publicKeys[0]"),
    ],
)
def test_errors_name_the_setting(tmp_path: Path, text: str, names: str) -> None:
    with pytest.raises(ConfigError, match=names.replace("[", r"\[").replace("]", r"\]")):
        load(tmp_path, text)


def test_a_key_that_is_not_an_ed25519_public_key_is_refused_at_start(tmp_path: Path) -> None:
    wrong = tmp_path / "ca.pem"
    vendor.init(tmp_path / "v")
    wrong.write_bytes((tmp_path / "v" / "ca.pem").read_bytes())
    with pytest.raises(ConfigError, match=r"vendor\.publicKeys"):
        load(tmp_path, f"vendor:\n  publicKeys: [{wrong}]\n")
