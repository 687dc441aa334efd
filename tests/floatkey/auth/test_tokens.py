"""Tokens: what verifies, and every forgery that must not."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import stat
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from floatkey.auth import tokens
from floatkey.auth.tokens import InvalidToken, TokenSigner
from floatkey.errors import StorageError

SECRET = b"s" * 32
NOW = int(time.time())


def signer(now: float = NOW, secret: bytes = SECRET, lifetime: int = 3600) -> TokenSigner:
    return TokenSigner(secret, lifetime, clock=lambda: now)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, Any], payload: dict[str, Any], key: bytes | None) -> str:
    """A JWT assembled by hand, HMAC-SHA256-signed with ``key`` (or unsigned)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = b"" if key is None else hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"username": "alice", "role": "admin", "stamp": "st", "iat": now, "exp": now + 600, **over}


def test_a_fresh_token_verifies_with_every_claim() -> None:
    s = signer(now=time.time())
    found = s.verify(s.issue("alice", "user", "stamp-1"))
    assert (found.username, found.role, found.stamp) == ("alice", "user", "stamp-1")
    assert found.expires_at - found.issued_at == 3600
    header = jwt.get_unverified_header(s.issue("alice", "user", "x"))
    assert header["alg"] == "HS256"


def test_issued_claims_are_exactly_the_documented_ones() -> None:
    token = signer().issue("alice", "user", "stamp-1")
    payload = jwt.decode(token, options={"verify_signature": False})
    assert payload == {"username": "alice", "role": "user", "stamp": "stamp-1", "iat": NOW, "exp": NOW + 3600}


def test_alg_none_is_refused() -> None:
    token = hand_made({"alg": "none", "typ": "JWT"}, claims(), None)
    with pytest.raises(InvalidToken):
        signer().verify(token)


def test_alg_none_with_our_signature_is_refused() -> None:
    token = hand_made({"alg": "none", "typ": "JWT"}, claims(), SECRET)
    with pytest.raises(InvalidToken):
        signer().verify(token)


def test_hs256_with_another_secret_is_refused() -> None:
    token = jwt.encode(claims(), b"o" * 32, algorithm="HS256")
    with pytest.raises(InvalidToken):
        signer().verify(token)


def test_rs256_token_is_refused() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(claims(), key, algorithm="RS256")
    with pytest.raises(InvalidToken):
        signer().verify(token)


def test_rs_hs_confusion_is_refused() -> None:
    """An RS256 header over an HMAC made with our secret, and an HMAC made with a public key."""
    with pytest.raises(InvalidToken):
        signer().verify(hand_made({"alg": "RS256", "typ": "JWT"}, claims(), SECRET))
    public_pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(InvalidToken):
        signer().verify(hand_made({"alg": "HS256", "typ": "JWT"}, claims(), public_pem))


def test_the_hand_made_tokens_would_pass_if_genuine() -> None:
    """Guard against the attack tests passing for a wrong reason: a correct hand-made token verifies."""
    assert signer().verify(hand_made({"alg": "HS256", "typ": "JWT"}, claims(), SECRET)).username == "alice"


def test_tampered_payload_is_refused() -> None:
    token = jwt.encode(claims(role="user"), SECRET, algorithm="HS256")
    head, _, sig = token.split(".")
    forged = f"{head}.{b64(json.dumps(claims(role='admin')).encode())}.{sig}"
    with pytest.raises(InvalidToken):
        signer().verify(forged)


def test_expired_token_is_refused() -> None:
    old = signer(now=NOW - 7200, lifetime=3600)
    token = old.issue("alice", "user", "st")
    with pytest.raises(InvalidToken, match="expired"):
        signer().verify(token)


def test_token_from_the_future_is_refused() -> None:
    future = signer(now=time.time() + 3600)
    with pytest.raises(InvalidToken):
        signer().verify(future.issue("alice", "user", "st"))


def test_not_before_in_the_future_is_refused() -> None:
    token = jwt.encode(claims(nbf=int(time.time()) + 600), SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken):
        signer().verify(token)


@pytest.mark.parametrize("missing", ["exp", "iat", "username", "role", "stamp"])
def test_a_missing_claim_is_refused(missing: str) -> None:
    payload = claims()
    del payload[missing]
    with pytest.raises(InvalidToken):
        signer().verify(jwt.encode(payload, SECRET, algorithm="HS256"))


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "Bearer x", "é.é.é"])
def test_garbage_is_refused(garbage: str) -> None:
    with pytest.raises(InvalidToken):
        signer().verify(garbage)


def test_claims_of_the_wrong_type_are_refused() -> None:
    with pytest.raises(InvalidToken):
        signer().verify(jwt.encode(claims(username=["alice"]), SECRET, algorithm="HS256"))


def test_replacing_the_secret_voids_earlier_tokens() -> None:
    s = signer(now=time.time())
    token = s.issue("alice", "user", "st")
    s.replace_secret(b"n" * 32)
    with pytest.raises(InvalidToken):
        s.verify(token)
    assert s.verify(s.issue("alice", "user", "st")).username == "alice"


def test_secret_file_is_created_once_owner_only(tmp_path: Path) -> None:
    first = tokens.load_or_create_secret(tmp_path)
    path = tmp_path / tokens.SECRET_FILE
    assert len(first) == tokens.SECRET_BYTES
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert tokens.load_or_create_secret(tmp_path) == first
    other = tmp_path / "other"
    other.mkdir()
    assert tokens.load_or_create_secret(other) != first


def test_rotation_writes_a_new_secret(tmp_path: Path) -> None:
    first = tokens.load_or_create_secret(tmp_path)
    second = tokens.rotate_secret(tmp_path)
    assert second != first
    assert tokens.load_or_create_secret(tmp_path) == second
    assert stat.S_IMODE((tmp_path / tokens.SECRET_FILE).stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [tokens.SECRET_FILE]


def test_a_secret_readable_by_others_is_made_private(tmp_path: Path) -> None:
    tokens.load_or_create_secret(tmp_path)
    path = tmp_path / tokens.SECRET_FILE
    path.chmod(0o644)
    tokens.load_or_create_secret(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_truncated_secret_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / tokens.SECRET_FILE).write_bytes(b"short")
    with pytest.raises(StorageError, match="too short"):
        tokens.load_or_create_secret(tmp_path)
