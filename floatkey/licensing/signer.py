"""The vendor's Ed25519 signing key: files, key ids (``kid``) and the trusted set.

``kid`` is the first 16 hex digits of the SHA-256 of the raw public key: a server that
trusts several keys (rotation) finds the one a file names without trying each.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

SIGNING_KEY_FILE = "license-signing.key"
PUBLIC_KEY_FILE = "license-signing.pub"


def key_id(public_key: ed25519.Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def write_private_key(path: Path, key: ed25519.Ed25519PrivateKey) -> None:
    """Write ``key`` owner-only (0600); refuses to overwrite an existing file."""
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    os.chmod(path, 0o600)


def public_pem(key: ed25519.Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_private_key(path: Path) -> ed25519.Ed25519PrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), None)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 private key (make one with `floatkey vendor init`)")
    return key


def load_public_key(path: Path) -> ed25519.Ed25519PublicKey:
    data = Path(path).read_bytes()
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        raise ValueError(f"{path}: not a PEM public key") from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise ValueError(f"{path}: not an Ed25519 public key (the vendor's {PUBLIC_KEY_FILE})")
    return key


def trusted_keys(paths: Iterable[Path]) -> dict[str, ed25519.Ed25519PublicKey]:
    """``kid`` -> public key of every configured vendor key."""
    keys = (load_public_key(p) for p in paths)
    return {key_id(k): k for k in keys}
