"""The installation key: the Ed25519 key a server signs usage reports with when no hardware
key binds the license.

Made in the data directory on first need (an activation request carries its public key,
a report is signed with it), owner-only, and never logged; ``floatkey backup`` copies it,
since a restored server must keep signing with the key the vendor learned.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from floatkey.licensing import signer

logger = logging.getLogger(__name__)

FILE_NAME = "installation.key"
_lock = threading.Lock()


def load_or_create(data_dir: Path) -> ed25519.Ed25519PrivateKey:
    """The installation key of ``data_dir``, made (0600) if it has none yet."""
    path = Path(data_dir) / FILE_NAME
    with _lock:
        if not path.exists():
            try:
                signer.write_private_key(path, ed25519.Ed25519PrivateKey.generate())
            except FileExistsError:  # another process made it first: use that one
                pass
            else:
                key = signer.load_private_key(path)
                logger.info(
                    "installation key %s made in the data directory (back it up with floatkey backup)",
                    signer.key_id(key.public_key()),
                )
                return key
        return signer.load_private_key(path)


def public_pem(data_dir: Path) -> str:
    """The installation key's public key, PEM (activation requests carry it)."""
    return signer.public_pem(load_or_create(data_dir).public_key()).decode("ascii")
