"""Configuration: one YAML file validated into frozen, typed settings.

Every setting has an embedded default, so floatkey runs with no file at all. Keys in
the file are camelCase and keep LicenseSpring's names where they exist
(``crashIfNoHardwareKey``, ``userAuthentication``). Errors name the key and the file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from floatkey.app import affinity
from floatkey.auth import client_address
from floatkey.errors import ConfigError
from floatkey.licensing import signer


def setting(
    default: Any,
    *,
    at_least: float | None = None,
    above: float | None = None,
    at_most: float | None = None,
    unit: str = "",
    choices: tuple[str, ...] | None = None,
) -> Any:
    """A setting with its constraint, checked by ``check_bounds`` with an error naming the key.

    ``at_least``/``at_most`` are inclusive bounds, ``above`` exclusive; ``unit`` words the
    error ("seconds", "bytes"); ``choices`` lists the allowed strings (case-insensitive).
    """
    bounds = {"at_least": at_least, "above": above, "at_most": at_most, "unit": unit, "choices": choices}
    return field(default=default, metadata={k: v for k, v in bounds.items() if v not in (None, "")})


@dataclass(frozen=True)
class HardwareKeySettings:
    """How the server finds and trusts hardware keys (see docs/hardware-keys.md)."""

    #: Watch PC/SC for keys. False: floatkey never touches a reader, and every action on a
    #: key-bound license is refused (hardware_key_not_accessible).
    enabled: bool = True
    #: PEM file of the vendor CA that must have signed each key's slot-9A certificate.
    #: Without one, any PIV key counts and the server warns at start-up.
    ca_certificate: Path | None = None
    #: File holding the PIV PIN (owner-only). Read at start-up, never logged.
    pin_file: Path | None = None
    #: Environment variable holding the PIV PIN, used when ``pin_file`` is not set.
    pin_env: str = "FLOATKEY_PIV_PIN"
    #: Serials (decimal) of the only keys that may receive the PIN and be used; empty: any
    #: key whose certificate passes. Name them when no CA is configured.
    pin_serials: tuple[str, ...] = ()
    #: Readers whose name contains one of these strings are ignored.
    ignore_readers: tuple[str, ...] = ()
    #: Seconds between full re-verifications (certificate and signature) of a key.
    verify_interval: float = setting(60.0, above=0, unit="seconds")
    #: Upper bound, in seconds, of any single PC/SC call.
    pcsc_timeout: float = setting(2.0, above=0, unit="seconds")


@dataclass(frozen=True)
class AuthSettings:
    """Authentication mode (``userAuthentication``)."""

    #: Lifetime of a login token, in seconds.
    token_lifetime: int = setting(8 * 3600, at_least=60, unit="seconds")
    #: One-time password of the first admin (user ``admin``), only used while no user exists.
    #: It must be changed at first login.
    initial_admin_password: str | None = None
    #: Failed logins allowed per user and per client address within ``throttle_window``.
    max_failed_logins: int = setting(5, at_least=1)
    #: Seconds a throttle window lasts.
    throttle_window: int = setting(300, at_least=1, unit="seconds")
    #: Reverse proxies (addresses or CIDR networks) whose X-Forwarded-For names the client
    #: address that logins are throttled by; from anyone else the header is ignored.
    trusted_proxies: tuple[str, ...] = ()


@dataclass(frozen=True)
class TlsSettings:
    """HTTPS: both paths set makes the server speak TLS only."""

    certificate: Path | None = None
    private_key: Path | None = None

    @property
    def enabled(self) -> bool:
        return self.certificate is not None and self.private_key is not None


@dataclass(frozen=True)
class MetricsSettings:
    """``GET /metrics`` for Prometheus (docs/operations.md, Monitoring)."""

    #: Serve /metrics and count requests, refusals and commits; false: neither.
    enabled: bool = True
    #: File holding a token Prometheus may read /metrics with in authentication mode,
    #: besides an admin's login token (owner-only, like the PIN file). Never logged.
    scrape_token_file: Path | None = None


@dataclass(frozen=True)
class AuditSettings:
    """The audit trail (docs/operations.md, "Audit trail")."""

    #: Days an audit record is kept; 0 keeps every record forever.
    retention_days: int = setting(0, at_least=0, unit="days")


#: Not a setting: where the settings came from, for the audit trail (never set from YAML).
_INTERNAL = {"internal": True}


@dataclass(frozen=True)
class VendorSettings:
    """The software vendor whose license files this server installs (docs/licensing.md)."""

    #: PEM files of the vendor's license-signing public keys (``license-signing.pub``); a
    #: list, so that a new key can be trusted before the old one is retired.
    public_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class Settings:
    """Everything the server reads from its configuration."""

    #: Folder of the LMDB environment and the token secret, created owner-only.
    data_dir: Path = Path("floatkey-data")
    host: str = "0.0.0.0"
    port: int = setting(8080, at_least=0, at_most=65535)
    #: Host names served (the request's Host header); IP addresses are always served.
    #: Empty: localhost and this machine's host name and FQDN; ``*``: any (no DNS-rebinding guard).
    allowed_hosts: tuple[str, ...] = ()
    #: HTTP worker threads; each request in progress holds one (idle or slow connections don't).
    thread_pool: int = setting(64, at_least=1)
    #: ``auto`` pins the server process to one CPU (the highest-numbered it may use that no
    #: other process is pinned to),
    #: ``all`` lets the kernel place it on any, a number pins to that CPU. See affinity.py.
    cpu_affinity: str | int = field(default="auto", metadata={"expect": "auto, all or a CPU number"})
    #: Largest accepted request body, in bytes.
    max_body_size: int = setting(64 * 1024, at_least=1024, unit="bytes")
    #: Largest request line plus headers, in bytes; more is refused with 431.
    max_header_size: int = setting(16 * 1024, at_least=1024, unit="bytes")
    #: Seconds a request may take to arrive whole (request line, headers and body) from its
    #: first byte; a new connection must also send its first byte within it. Slower: 408, closed.
    request_timeout: float = setting(10.0, above=0, unit="seconds")
    #: Seconds a keep-alive connection may wait for its next request, and a client may leave
    #: its answer unread, before the connection is closed.
    idle_timeout: float = setting(30.0, above=0, unit="seconds")
    #: Open connections per client address. At the limit a new one closes that address's
    #: longest-idle connection, or is refused (429) when none is idle.
    max_connections_per_address: int = setting(256, at_least=1)
    #: Seconds a request waits for an actor before it fails with 503.
    actor_timeout: float = setting(10.0, above=0, unit="seconds")
    #: Seconds between sweeps that free seats whose timeout or borrow has passed.
    expiry_sweep_interval: float = setting(1.0, above=0, unit="seconds")
    #: Largest size, in bytes, the LMDB data file may grow to.
    map_size: int = setting(1 << 30, at_least=1 << 20, unit="bytes")
    log_level: str = setting("INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    #: ``text``: ``TIME LEVEL LOGGER: MESSAGE`` lines; ``json``: one JSON object per line
    #: (floatkey/app/logs.py), with the request id, route, status and client address.
    log_format: str = setting("text", choices=("text", "json"))
    #: Open mode only: the client networks (CIDR) whose requests may use admin routes;
    #: everyone else gets 403. Authentication mode checks the admin role instead.
    admin_networks: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    #: Exit the process (status 75) instead of answering hardware_key_not_accessible.
    crash_if_no_hardware_key: bool = False
    user_authentication: bool = False
    #: Where licenses come from: ``local`` (an administrator creates them from a policy) or
    #: ``vendor`` (only from license files the vendor signed). None: ``vendor`` when
    #: ``vendor.public_keys`` names a key, else ``local``.
    license_source: str | None = None
    #: Seconds the clock may read earlier than the latest time seen before actions on
    #: licenses with an end date are refused (clock_rolled_back).
    clock_rollback_tolerance: float = setting(3600.0, above=0, unit="seconds")
    vendor: VendorSettings = field(default_factory=VendorSettings)
    hardware_key: HardwareKeySettings = field(default_factory=HardwareKeySettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    tls: TlsSettings = field(default_factory=TlsSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    #: The configuration file read, and the SHA-256 of its bytes (None: embedded defaults).
    config_file: Path | None = field(default=None, compare=False, metadata=_INTERNAL)
    config_sha256: str | None = field(default=None, compare=False, metadata=_INTERNAL)

    @property
    def vendor_licenses_only(self) -> bool:
        """True when licenses come only from vendor license files (``licenseSource``)."""
        if self.license_source is None:
            return bool(self.vendor.public_keys)
        return self.license_source == "vendor"


def yaml_key(name: str) -> str:
    """The camelCase key of a settings field: ``crash_if_no_hardware_key`` -> ``crashIfNoHardwareKey``."""
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def load(path: Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Read ``path`` (or nothing) and apply ``overrides`` (field names, from CLI flags)."""
    raw: dict[str, Any] = {}
    source = "embedded defaults"
    digest = None
    if path is not None:
        source = str(path)
        try:
            content = Path(path).read_bytes()
            text = content.decode("utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the configuration file: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: the configuration file is not UTF-8 text") from None
        digest = hashlib.sha256(content).hexdigest()
        try:
            raw = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of settings")
    settings: Settings = _build(Settings, raw, source, prefix="")
    settings = dataclasses.replace(
        settings,
        cpu_affinity=affinity.setting_from_text(settings.cpu_affinity),
        config_file=None if path is None else Path(path).resolve(),
        config_sha256=digest,
    )
    if overrides:
        settings = dataclasses.replace(settings, **{k: v for k, v in overrides.items() if v is not None})
    _check(settings, source)
    return settings


def _build(cls: type, raw: dict[str, Any], source: str, prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {yaml_key(f.name): f for f in dataclasses.fields(cls) if "internal" not in f.metadata}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        where = f"{source}: {prefix}{key}"
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(f"{where}: unknown setting (known here: {known})")
        f = fields[key]
        try:
            values[f.name] = _convert(hints[f.name], value, where, source, f"{prefix}{key}.")
        except ConfigError:
            if "expect" not in f.metadata:
                raise
            raise ConfigError(f"{where}: must be {f.metadata['expect']}, not {value!r}") from None
    return cls(**values)


def _convert(hint: Any, value: Any, where: str, source: str, prefix: str) -> Any:
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if value is None:
            return hint()
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: must be a mapping")
        return _build(hint, value, source, prefix)
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        *earlier, hint = [a for a in args if a is not type(None)]
        for choice in earlier:  # the first type the value fits; else the last one's error
            try:
                return _convert(choice, value, where, source, prefix)
            except ConfigError:
                continue
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: must be true or false, not {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: must be a whole number, not {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: must be a number, not {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: must be a string, not {value!r}")
        return value
    if hint is Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where}: must be a file or folder path")
        return Path(value).expanduser()
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: must be a list of strings")
        return tuple(value)
    raise ConfigError(f"{where}: unsupported setting type {hint!r}")


_HOST_NAME = re.compile(
    r"[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?"
)


def check_bounds(settings: Any, source: str, prefix: str = "") -> None:
    """Check every setting against the constraint its field declares (``setting``)."""
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        key = prefix + yaml_key(f.name)
        if dataclasses.is_dataclass(value):
            check_bounds(value, source, key + ".")
            continue
        why = _out_of_bounds(value, f.metadata)
        if why is not None:
            raise ConfigError(f"{source}: {key}: {why}")


def _out_of_bounds(value: Any, meta: Any) -> str | None:
    unit = f" {meta['unit']}" if "unit" in meta else ""
    if "choices" in meta and str(value).lower() not in [c.lower() for c in meta["choices"]]:
        return f"must be one of {', '.join(meta['choices'])}, not {value!r}"
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    if "at_least" in meta and "at_most" in meta and not meta["at_least"] <= value <= meta["at_most"]:
        return (
            f"must be between {_num(meta['at_least'])} and {_num(meta['at_most'])}{unit}, not {_num(value)}"
        )
    if "at_least" in meta and value < meta["at_least"]:
        return f"must be at least {_num(meta['at_least'])}{unit}, not {_num(value)}"
    if "above" in meta and value <= meta["above"]:
        return f"must be more than {_num(meta['above'])}{unit}, not {_num(value)}"
    if "at_most" in meta and value > meta["at_most"]:
        return f"must be at most {_num(meta['at_most'])}{unit}, not {_num(value)}"
    return None


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _check(s: Settings, source: str) -> None:
    """The constraints no single field can state: formats, and settings that go together."""

    def bad(key: str, why: str) -> ConfigError:
        return ConfigError(f"{source}: {key}: {why}")

    check_bounds(s, source)

    if not re.fullmatch(r"[0-9A-Za-z.:\-\[\]]+", s.host):
        raise bad("host", f"{s.host!r} is not a host name or address")
    for name in s.allowed_hosts:
        if name != "*" and not _HOST_NAME.fullmatch(name):
            raise bad("allowedHosts", f"{name!r} is not a host name (no scheme, port or path; '*' for any)")
    if isinstance(s.cpu_affinity, str) and s.cpu_affinity not in ("auto", "all"):
        raise bad("cpuAffinity", f"must be auto, all or a CPU number, not {s.cpu_affinity!r}")
    if isinstance(s.cpu_affinity, int) and s.cpu_affinity < 0:
        raise bad("cpuAffinity", f"must be auto, all or a CPU number, not {s.cpu_affinity}")
    for serial in s.hardware_key.pin_serials:
        if not serial.isdigit() or serial != str(int(serial)):
            raise bad(
                "hardwareKey.pinSerials", f"{serial!r} is not a key serial (decimal digits, no leading 0)"
            )
    try:
        client_address.networks(s.admin_networks)
    except ValueError as exc:
        raise bad("adminNetworks", f"{exc} (write CIDR networks such as 10.0.0.0/8)") from None
    try:
        client_address.networks(s.auth.trusted_proxies)
    except ValueError as exc:
        raise bad("auth.trustedProxies", str(exc)) from None
    if s.license_source not in (None, "local", "vendor"):
        raise bad("licenseSource", f"must be local or vendor, not {s.license_source!r}")
    if s.license_source == "vendor" and not s.vendor.public_keys:
        raise bad("licenseSource", "vendor needs at least one key in vendor.publicKeys")
    for i, key_file in enumerate(s.vendor.public_keys):
        try:
            signer.load_public_key(Path(key_file).expanduser())
        except (OSError, ValueError) as exc:
            raise bad(f"vendor.publicKeys[{i}]", str(exc)) from None
    if (s.tls.certificate is None) != (s.tls.private_key is None):
        raise bad("tls", "set both certificate and privateKey, or neither")
