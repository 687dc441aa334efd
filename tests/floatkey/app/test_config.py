import hashlib
import re
from pathlib import Path

import pytest

from floatkey.app import config
from floatkey.app.config import Settings
from floatkey.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[3] / "conf" / "floatkey.yaml"


def test_the_commented_example_holds_exactly_the_embedded_defaults():
    assert config.load(EXAMPLE) == Settings()


def test_no_file_means_embedded_defaults():
    settings = config.load(None)
    assert settings.port == 8080 and settings.user_authentication is False
    assert settings.data_dir == Path("floatkey-data")


def test_flags_override_the_file(tmp_path):
    path = tmp_path / "f.yaml"
    path.write_text("port: 9000\ncrashIfNoHardwareKey: true\nhardwareKey:\n  pcscTimeout: 1\n")
    settings = config.load(path, {"port": 9100, "crash_if_no_hardware_key": None})
    assert settings.port == 9100
    assert settings.crash_if_no_hardware_key is True
    assert settings.hardware_key.pcsc_timeout == 1.0


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("prot: 80\n", "prot: unknown setting"),
        ("port: eighty\n", "port: must be a whole number"),
        ("port: 70000\n", "port: must be between"),
        ("crashIfNoHardwareKey: yes please\n", "crashIfNoHardwareKey: must be true or false"),
        ("hardwareKey:\n  pinFiel: x\n", "hardwareKey.pinFiel: unknown setting"),
        ("hardwareKey: 3\n", "hardwareKey: must be a mapping"),
        ("hardwareKey:\n  ignoreReaders: Virtual\n", "hardwareKey.ignoreReaders: must be a list"),
        ("hardwareKey:\n  pinSerials: [12345678]\n", "hardwareKey.pinSerials: must be a list of strings"),
        ("hardwareKey:\n  pinSerials: ['0123']\n", "hardwareKey.pinSerials: '0123' is not a key serial"),
        ("hardwareKey:\n  pinSerials: ['yubi']\n", "hardwareKey.pinSerials: 'yubi' is not a key serial"),
        ("tls:\n  certificate: c.pem\n", "tls: set both"),
        ("logLevel: LOUD\n", "logLevel: must be one of"),
        ("cpuAffinity: off\n", "cpuAffinity: must be auto, all or a CPU number, not False"),
        ("cpuAffinity: 1.5\n", "cpuAffinity: must be auto, all or a CPU number, not 1.5"),
        ("cpuAffinity: fastest\n", "cpuAffinity: must be auto, all or a CPU number, not 'fastest'"),
        ("cpuAffinity: -1\n", "cpuAffinity: must be auto, all or a CPU number, not -1"),
        ("cpuAffinity: [0, 1]\n", "cpuAffinity: must be auto, all or a CPU number, not [0, 1]"),
        (
            "auth:\n  trustedProxies: [10.0.0.1, proxy.lan]\n",
            "auth.trustedProxies: 'proxy.lan' is not an IP address or network",
        ),
        ("auth:\n  trustedProxies: 10.0.0.1\n", "auth.trustedProxies: must be a list"),
        ("allowedHosts: [http://lic.example]\n", "allowedHosts: 'http://lic.example' is not a host name"),
        ("allowedHosts: ['lic.example:8080']\n", "allowedHosts: 'lic.example:8080' is not a host name"),
        ("allowedHosts: ['']\n", "allowedHosts: '' is not a host name"),
        ("allowedHosts: lic.example\n", "allowedHosts: must be a list"),
        ("audit:\n  retentionDays: -1\n", "audit.retentionDays: must be at least 0 days"),
        ("configFile: other.yaml\n", "configFile: unknown setting"),
        ("- a\n- b\n", "the top level must be a mapping"),
        ("port: [\n", "not valid YAML"),
    ],
)
def test_errors_name_the_key_and_the_file(tmp_path, text, names):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        config.load(path)
    assert str(path) in str(err.value)
    assert names in str(err.value)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("cpuAffinity: auto\n", "auto"),
        ("cpuAffinity: all\n", "all"),
        ("cpuAffinity: 1\n", 1),
        ("cpuAffinity: '1'\n", 1),
    ],
)
def test_cpu_affinity_takes_a_word_or_a_cpu_number(tmp_path, text, value):
    path = tmp_path / "f.yaml"
    path.write_text(text)
    assert config.load(path).cpu_affinity == value


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the configuration file"):
        config.load(tmp_path / "nope.yaml")


def test_trusted_proxies_take_addresses_and_networks(tmp_path):
    path = tmp_path / "f.yaml"
    path.write_text("auth:\n  trustedProxies: [127.0.0.1, 'fd00::/8']\n")
    assert config.load(path).auth.trusted_proxies == ("127.0.0.1", "fd00::/8")


def test_allowed_hosts_take_names_and_a_star(tmp_path):
    path = tmp_path / "f.yaml"
    path.write_text("allowedHosts: [licenses.example.com, lic-1, 'fk.local.', '*']\n")
    assert config.load(path).allowed_hosts == ("licenses.example.com", "lic-1", "fk.local.", "*")


def test_every_numeric_setting_declares_its_bounds_on_its_field():
    """Constraints live on the fields (``setting``), so none can be forgotten in a list."""
    import dataclasses

    def numeric(cls, prefix=""):
        for f in dataclasses.fields(cls):
            if dataclasses.is_dataclass(f.type) or f.name in ("hardware_key", "auth", "tls"):
                continue
            if f.type in ("int", "float") and f.name != "cpu_affinity":
                yield prefix + f.name, f

    for name, f in [
        *numeric(config.Settings),
        *numeric(config.HardwareKeySettings, "hardwareKey."),
        *numeric(config.AuthSettings, "auth."),
        *numeric(config.AuditSettings, "audit."),
    ]:
        assert {"at_least", "above", "at_most"} & set(f.metadata), f"{name} has no bounds"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hardwareKey:\n  pcscTimeout: 0\n", "hardwareKey.pcscTimeout: must be more than 0 seconds, not 0"),
        ("auth:\n  tokenLifetime: 59\n", "auth.tokenLifetime: must be at least 60 seconds, not 59"),
        ("logLevel: loud\n", "logLevel: must be one of DEBUG, INFO, WARNING, ERROR, not 'loud'"),
        ("mapSize: 1000\n", "mapSize: must be at least 1048576 bytes, not 1000"),
    ],
)
def test_bounds_of_nested_settings_name_the_full_key(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        config.load(path)


def test_the_file_read_and_its_hash_are_kept_for_the_audit_trail(tmp_path):
    path = tmp_path / "f.yaml"
    path.write_bytes(b"port: 9000\n")
    settings = config.load(path)
    assert settings.config_file == path.resolve()
    assert settings.config_sha256 == hashlib.sha256(b"port: 9000\n").hexdigest()
    assert config.load(None).config_file is None and config.load(None).config_sha256 is None
