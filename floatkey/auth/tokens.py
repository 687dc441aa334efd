"""Login tokens: HS256 JWTs signed with the installation's secret.

Claims: ``username``, ``role``, ``iat``, ``exp`` (the issue's four) and ``stamp``, the
user's security stamp (a random value the AuthActor replaces whenever the user's password
or role changes, and that disappears with the user). A token is valid only while its
stamp is the user's current one, so a password change, a role change or a deletion voids
every token issued before it, even one of a user deleted and created again. Rotating the
secret voids every token at once.

The secret is 32 random bytes in ``token.secret`` in the data directory, owner-only,
created at the first start; a new data directory is a new installation.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jwt

from floatkey.errors import StorageError

logger = logging.getLogger(__name__)

SECRET_FILE = "token.secret"
SECRET_BYTES = 32
ALGORITHM = "HS256"
_REQUIRED = ["username", "role", "stamp", "iat", "exp"]


class InvalidToken(Exception):
    """The token is malformed, foreign, tampered with, expired or not yet valid."""


@dataclass(frozen=True, slots=True)
class Claims:
    username: str
    role: str
    stamp: str
    issued_at: int
    expires_at: int


class TokenSigner:
    """Issues and verifies tokens; the secret can be swapped while requests verify."""

    def __init__(self, secret: bytes, lifetime: int, clock: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self.lifetime = lifetime
        self._clock = clock

    def issue(self, username: str, role: str, stamp: str) -> str:
        now = int(self._clock())
        claims = {"username": username, "role": role, "stamp": stamp, "iat": now, "exp": now + self.lifetime}
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> Claims:
        """The claims of a genuine, current token; ``InvalidToken`` for anything else.

        Only HS256 is accepted (no ``none``, no RS256 with the secret taken for a public
        key); ``exp`` and ``iat`` must be present, ``iat`` and ``nbf`` not in the future.
        """
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                options={"require": _REQUIRED, "verify_exp": True, "verify_iat": True, "verify_nbf": True},
            )
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise InvalidToken(str(exc)) from None
        fields = (claims["username"], claims["role"], claims["stamp"])
        if not all(isinstance(v, str) for v in fields) or not isinstance(claims["iat"], int):
            raise InvalidToken("claims of the wrong type")
        return Claims(*fields, issued_at=claims["iat"], expires_at=int(claims["exp"]))

    def replace_secret(self, secret: bytes) -> None:
        self._secret = secret


_file_lock = threading.Lock()


def load_or_create_secret(data_dir: Path) -> bytes:
    """The installation's secret, created (owner-only) if the data directory has none yet."""
    path = Path(data_dir) / SECRET_FILE
    with _file_lock:
        try:
            secret = path.read_bytes()
        except FileNotFoundError:
            secret = _write_secret(path)
            logger.info("token secret created in %s", path)
            return secret
    if len(secret) < SECRET_BYTES:
        raise StorageError(
            f"{path} is too short to be a token secret; remove it to start afresh "
            "(every token becomes invalid)"
        )
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)
        logger.warning("%s was readable by others; made owner-only", path)
    return secret


def rotate_secret(data_dir: Path) -> bytes:
    """Replace the secret with a new one; every token signed before becomes invalid."""
    path = Path(data_dir) / SECRET_FILE
    with _file_lock:
        return _write_secret(path)


def _write_secret(path: Path) -> bytes:
    """Write a new secret atomically: a reader sees the old file or the new one, never half."""
    secret = secrets.token_bytes(SECRET_BYTES)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(secret)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return secret
