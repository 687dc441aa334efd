"""Which keys refused which PIN, remembered across restarts, so a wrong PIN is sent only once.

Three wrong PINs block a YubiKey's PIN for good, and a server restarted by a supervisor
(``crashIfNoHardwareKey``) would otherwise send the same wrong PIN at every start. So the
first refusal is written down, per key serial, and the actor checks it before any VERIFY;
a different configured PIN does not match and is tried (once).

What is kept is never the PIN: a random salt and scrypt(PIN, salt) per serial, in a small
owner-only JSON file in the data directory (``refused-pins.json``), replaced atomically.
A PIV PIN is 6 to 8 characters, mostly digits, so a plain salted hash could be reversed by
trying every PIN; scrypt makes that cost hours instead of seconds, and the file is readable
by the server's user only, like the LMDB data next to it. A file rather than LMDB: the
hardware-key actor then needs no storage actor (it starts, and is tested, without one),
and the file is written at most once per refused PIN.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import threading
from pathlib import Path

from floatkey.errors import ConfigError

logger = logging.getLogger(__name__)

FILE_NAME = "refused-pins.json"
_VERSION = 1
#: scrypt cost: about 50 ms and 16 MiB per try on a 2020s CPU (done once per key and PIN).
_N, _R, _P = 1 << 14, 8, 1


def _digest(pin: str, salt: bytes) -> bytes:
    return hashlib.scrypt(pin.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=32)


class RefusedPins:
    """The record of refused PINs; ``path`` None keeps it in memory only (for embedding and tests)."""

    def __init__(self, path: Path | None, read_only: bool = False) -> None:
        """``read_only`` (``floatkey doctor``): consult the server's record, never write it."""
        self.path = path
        self._read_only = read_only
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[bytes, bytes]] = self._load()
        #: scrypt results of (PIN, salt) already computed, so re-checks cost nothing.
        self._memo: dict[tuple[str, bytes], bytes] = {}

    def _load(self) -> dict[str, tuple[bytes, bytes]]:
        if self.path is None:
            return {}
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"{self.path}: cannot read the record of refused hardware-key PINs ({exc}); "
                "fix or delete it (deleting lets floatkey send the configured PIN once more)"
            ) from None
        try:
            if raw.get("version") != _VERSION:
                raise ValueError(f"unknown version {raw.get('version')!r}")
            return {
                str(serial): (bytes.fromhex(entry["salt"]), bytes.fromhex(entry["scrypt"]))
                for serial, entry in raw["keys"].items()
            }
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"{self.path}: not a record of refused hardware-key PINs ({exc}); "
                "fix or delete it (deleting lets floatkey send the configured PIN once more)"
            ) from None

    def _matches(self, serial: str, pin: str) -> bool:
        entry = self._entries.get(serial)
        if entry is None:
            return False
        salt, digest = entry
        key = (pin, salt)
        if key not in self._memo:
            self._memo[key] = _digest(pin, salt)
        return secrets.compare_digest(self._memo[key], digest)

    def refused(self, serial: str, pin: str) -> bool:
        """Whether the key ``serial`` already refused exactly this PIN."""
        with self._lock:
            return self._matches(serial, pin)

    def remember(self, serial: str, pin: str) -> None:
        """Record that ``serial`` refused ``pin`` (replacing an older refused PIN)."""
        with self._lock:
            salt = secrets.token_bytes(16)
            digest = _digest(pin, salt)
            self._memo[(pin, salt)] = digest
            self._entries[serial] = (salt, digest)
            self._save()

    def forget(self, serial: str) -> None:
        """The key accepted a PIN: nothing refused is kept for it any more."""
        with self._lock:
            if self._entries.pop(serial, None) is not None:
                self._save()

    def _save(self) -> None:
        """Write the whole record owner-only, atomically (temporary file, fsync, rename)."""
        if self.path is None or self._read_only:
            return
        body = {
            "version": _VERSION,
            "keys": {s: {"salt": salt.hex(), "scrypt": d.hex()} for s, (salt, d) in self._entries.items()},
        }
        temporary = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(body, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
            directory = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink()
            # Still kept in memory: this process will not send the refused PIN again.
            logger.error(
                "hardware keys: cannot write %s (%s); a refused PIN is remembered only until "
                "floatkey stops, so fix the data directory before restarting",
                self.path,
                exc.strerror,
            )
