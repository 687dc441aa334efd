"""The PIV PIN the server presents to its keys, from a file or an environment variable."""

from __future__ import annotations

import os
from pathlib import Path

from floatkey.app.config import HardwareKeySettings
from floatkey.errors import ConfigError


def read_pin(settings: HardwareKeySettings, pin_file: Path | None = None) -> str | None:
    """The PIV PIN from ``pin_file`` (else ``pinFile``) or the ``pinEnv`` variable; None when
    none is set. The server, ``floatkey doctor`` and the virtual key all read it here, so a
    PIN file means the same to each (its line end is not part of the PIN)."""
    path = pin_file or settings.pin_file
    if path is not None:
        return read_pin_file(path, "hardwareKey.pinFile") or None
    return os.environ.get(settings.pin_env) or None


def read_pin_file(path: Path, what: str = "PIN file") -> str:
    """The PIN in ``path``: its first line, without the line end or surrounding blanks."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(f"{what}: cannot read {path}: {why}") from None
    return text.strip()
