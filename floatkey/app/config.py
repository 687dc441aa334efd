"""Configuration: one YAML file validated into frozen, typed settings.

Every setting has an embedded default, so floatkey runs with no file at all. Keys in
the file are camelCase and keep LicenseSpring's names where they exist
(``crashIfNoHardwareKey``, ``userAuthentication``). Errors name the key and the file.
"""

from __future__ import annotations

import dataclasses
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
    #: Readers whose name contains one of these strings are ignored.
    ignore_readers: tuple[str, ...] = ()
    #: Seconds between full re-verifications (certificate and signature) of a key.
    verify_interval: float = 60.0
    #: Upper bound, in seconds, of any single PC/SC call.
    pcsc_timeout: float = 2.0


@dataclass(frozen=True)
class AuthSettings:
    """Authentication mode (``userAuthentication``)."""

    #: Lifetime of a login token, in seconds.
    token_lifetime: int = 8 * 3600
    #: One-time password of the first admin (user ``admin``), only used while no user exists.
    #: It must be changed at first login.
    initial_admin_password: str | None = None
    #: Failed logins allowed per user and per client address within ``throttle_window``.
    max_failed_logins: int = 5
    #: Seconds a throttle window lasts.
    throttle_window: int = 300
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
class Settings:
    """Everything the server reads from its configuration."""

    #: Folder of the LMDB environment and the token secret, created owner-only.
    data_dir: Path = Path("floatkey-data")
    host: str = "0.0.0.0"
    port: int = 8080
    #: Host names served (the request's Host header); IP addresses are always served.
    #: Empty: localhost and this machine's host name and FQDN; ``*``: any (no DNS-rebinding guard).
    allowed_hosts: tuple[str, ...] = ()
    #: HTTP worker threads; each request in progress holds one (idle keep-alive connections don't).
    thread_pool: int = 64
    #: ``auto`` pins the server process to one CPU (the highest-numbered it may use that no
    #: other process is pinned to),
    #: ``all`` lets the kernel place it on any, a number pins to that CPU. See affinity.py.
    cpu_affinity: str | int = field(default="auto", metadata={"expect": "auto, all or a CPU number"})
    #: Largest accepted request body, in bytes.
    max_body_size: int = 64 * 1024
    #: Seconds a request waits for an actor before it fails with 503.
    actor_timeout: float = 10.0
    #: Seconds between sweeps that free seats whose timeout or borrow has passed.
    expiry_sweep_interval: float = 1.0
    #: Largest size, in bytes, the LMDB data file may grow to.
    map_size: int = 1 << 30
    log_level: str = "INFO"
    #: ``text``: ``TIME LEVEL LOGGER: MESSAGE`` lines; ``json``: one JSON object per line
    #: (floatkey/app/logs.py), with the request id, route, status and client address.
    log_format: str = "text"
    #: Open mode only: the client networks (CIDR) whose requests may use admin routes;
    #: everyone else gets 403. Authentication mode checks the admin role instead.
    admin_networks: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    #: Exit the process (status 75) instead of answering hardware_key_not_accessible.
    crash_if_no_hardware_key: bool = False
    user_authentication: bool = False
    hardware_key: HardwareKeySettings = field(default_factory=HardwareKeySettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    tls: TlsSettings = field(default_factory=TlsSettings)


def yaml_key(name: str) -> str:
    """The camelCase key of a settings field: ``crash_if_no_hardware_key`` -> ``crashIfNoHardwareKey``."""
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def load(path: Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Read ``path`` (or nothing) and apply ``overrides`` (field names, from CLI flags)."""
    raw: dict[str, Any] = {}
    source = "embedded defaults"
    if path is not None:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the configuration file: {exc.strerror}") from None
        try:
            raw = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of settings")
    settings: Settings = _build(Settings, raw, source, prefix="")
    settings = dataclasses.replace(settings, cpu_affinity=affinity.setting_from_text(settings.cpu_affinity))
    if overrides:
        settings = dataclasses.replace(settings, **{k: v for k, v in overrides.items() if v is not None})
    _check(settings, source)
    return settings


def _build(cls: type, raw: dict[str, Any], source: str, prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {yaml_key(f.name): f for f in dataclasses.fields(cls)}
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


_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_LOG_FORMATS = ("text", "json")
_HOST_NAME = re.compile(
    r"[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?"
)


def _check(s: Settings, source: str) -> None:
    def bad(key: str, why: str) -> ConfigError:
        return ConfigError(f"{source}: {key}: {why}")

    if not 0 <= s.port <= 65535:
        raise bad("port", f"must be between 0 and 65535, not {s.port}")
    if not re.fullmatch(r"[0-9A-Za-z.:\-\[\]]+", s.host):
        raise bad("host", f"{s.host!r} is not a host name or address")
    for name in s.allowed_hosts:
        if name != "*" and not _HOST_NAME.fullmatch(name):
            raise bad("allowedHosts", f"{name!r} is not a host name (no scheme, port or path; '*' for any)")
    if s.thread_pool < 1:
        raise bad("threadPool", "must be at least 1")
    if isinstance(s.cpu_affinity, str) and s.cpu_affinity not in ("auto", "all"):
        raise bad("cpuAffinity", f"must be auto, all or a CPU number, not {s.cpu_affinity!r}")
    if isinstance(s.cpu_affinity, int) and s.cpu_affinity < 0:
        raise bad("cpuAffinity", f"must be auto, all or a CPU number, not {s.cpu_affinity}")
    if s.max_body_size < 1024:
        raise bad("maxBodySize", "must be at least 1024 bytes")
    if s.actor_timeout <= 0:
        raise bad("actorTimeout", "must be more than 0 seconds")
    if s.expiry_sweep_interval <= 0:
        raise bad("expirySweepInterval", "must be more than 0 seconds")
    if s.map_size < 1 << 20:
        raise bad("mapSize", "must be at least 1 MiB")
    if s.log_level.upper() not in _LOG_LEVELS:
        raise bad("logLevel", f"must be one of {', '.join(_LOG_LEVELS)}")
    if s.log_format not in _LOG_FORMATS:
        raise bad("logFormat", f"must be one of {', '.join(_LOG_FORMATS)}, not {s.log_format!r}")
    try:
        client_address.networks(s.admin_networks)
    except ValueError as exc:
        raise bad("adminNetworks", f"{exc} (write CIDR networks such as 10.0.0.0/8)") from None
    if s.hardware_key.pcsc_timeout <= 0:
        raise bad("hardwareKey.pcscTimeout", "must be more than 0 seconds")
    if s.hardware_key.verify_interval <= 0:
        raise bad("hardwareKey.verifyInterval", "must be more than 0 seconds")
    if s.auth.token_lifetime < 60:
        raise bad("auth.tokenLifetime", "must be at least 60 seconds")
    if s.auth.max_failed_logins < 1:
        raise bad("auth.maxFailedLogins", "must be at least 1")
    if s.auth.throttle_window < 1:
        raise bad("auth.throttleWindow", "must be at least 1 second")
    try:
        client_address.networks(s.auth.trusted_proxies)
    except ValueError as exc:
        raise bad("auth.trustedProxies", str(exc)) from None
    if (s.tls.certificate is None) != (s.tls.private_key is None):
        raise bad("tls", "set both certificate and privateKey, or neither")
