"""The installation key: the Ed25519 key a server signs usage reports with when no hardware
key binds the license.

Made in the data directory on first need (an activation request carries its public key,
a report is signed with it), owner-only, and never logged; ``floatkey backup`` copies it,
since a restored server must keep signing with the key the vendor learned.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from floatkey.errors import FloatkeyError
from floatkey.licensing import signer

logger = logging.getLogger(__name__)

FILE_NAME = "installation.key"
_lock = threading.Lock()


def load_or_create(data_dir: Path) -> ed25519.Ed25519PrivateKey:
    """The installation key of ``data_dir``, made (0600) if it has none yet.

    A file that is there but cannot be read as the key is refused (``service_unavailable``,
    logged), never replaced: the vendor trusts this key, and a new one would make every
    later report look like another installation's.
    """
    path = Path(data_dir) / FILE_NAME
    with _lock:
        if not os.path.lexists(path):
            try:
                _create(path)
            except FileExistsError:  # another process made it first: use that one
                pass
            else:
                key = _load(path)
                logger.info(
                    "installation key %s made in the data directory (back it up with floatkey backup)",
                    signer.key_id(key.public_key()),
                )
                return key
        return _load(path)


def _create(path: Path) -> None:
    """Write a new key whole or not at all: a crash or a full disk while writing must not
    leave a damaged key behind, which would then refuse every report."""
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    part = path.with_name(f".{FILE_NAME}.{os.getpid()}.{threading.get_ident()}")
    try:
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
            out.flush()
            os.fsync(out.fileno())
        os.link(part, path)  # FileExistsError if another process made one meanwhile
    except FileExistsError:
        raise
    except OSError as exc:
        logger.error("installation key could not be made in the data directory: %s", exc.strerror)
        raise FloatkeyError(
            "service_unavailable",
            f"The server could not write its installation key ({FILE_NAME} in the data "
            f"directory): {exc.strerror}. Free space or fix the permissions, then try again.",
        ) from None
    finally:
        part.unlink(missing_ok=True)


def _load(path: Path) -> ed25519.Ed25519PrivateKey:
    try:
        key = signer.load_private_key(path)
        if path.stat().st_mode & 0o077:  # whoever can read it can sign this server's reports
            os.chmod(path, 0o600)
            logger.warning("the installation key (%s) was readable by others; made owner-only", FILE_NAME)
        return key
    except OSError as exc:
        why = exc.strerror or "it cannot be read"
    except (ValueError, TypeError, UnsupportedAlgorithm):
        why = "it is not an Ed25519 private key"  # the content itself is never logged
    logger.error("the installation key (%s in the data directory) cannot be read: %s", FILE_NAME, why)
    raise FloatkeyError(
        "service_unavailable",
        f"The server's installation key ({FILE_NAME} in the data directory) cannot be read: {why}. "
        "Restore it from your backup (floatkey backup copies it). The server does not make a new "
        "one: the vendor verifies this installation's reports with the key it has.",
    )


def public_pem(data_dir: Path) -> str:
    """The installation key's public key, PEM (activation requests carry it)."""
    return signer.public_pem(load_or_create(data_dir).public_key()).decode("ascii")
