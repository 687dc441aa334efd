"""The PIV PIN the server presents to its keys, from a file or an environment variable."""

from __future__ import annotations

import os

from floatkey.app.config import HardwareKeySettings
from floatkey.errors import ConfigError


def read_pin(settings: HardwareKeySettings) -> str | None:
    """The PIV PIN from ``pinFile`` or the ``pinEnv`` variable; None when neither is set."""
    if settings.pin_file is not None:
        try:
            return settings.pin_file.read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            raise ConfigError(
                f"hardwareKey.pinFile: cannot read {settings.pin_file}: {exc.strerror}"
            ) from None
    return os.environ.get(settings.pin_env) or None
