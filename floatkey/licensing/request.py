"""Activation requests: what a server proves about itself when it asks for a license file.

A request is a JSON file: its ``content`` (product, the server's hardware ID, each valid
key present with its serial and slot-9A certificate, the public key of the server's
installation key, which signs its usage reports, a fresh nonce, the time) and one
signature per key, made by the key's slot-9A private key over the SHA-256 of the content's
canonical JSON. The vendor binds a license file only to what verifies: a key whose
signature holds and whose certificate chains to the vendor CA. ``installation_key`` came
later: a request without it is still valid (its server's reports cannot be checked).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

from floatkey.errors import FloatkeyError
from floatkey.hardware import piv
from floatkey.licensing.claims import canonical_json
from floatkey.timeutil import format_time, parse_time

FORMAT = "floatkey-activation-request/1"
MAX_REQUEST_SIZE = 256 * 1024


@dataclass(frozen=True)
class KeyProof:
    serial: str
    certificate_pem: str


def content(
    product: str,
    hardware_id: str,
    keys: Sequence[KeyProof],
    nonce: str,
    created_at: datetime,
    installation_key: str | None = None,
) -> dict[str, Any]:
    """``installation_key``: the PEM public key that signs this server's usage reports."""
    body = {
        "product": product,
        "hardware_id": hardware_id,
        "keys": [{"serial": k.serial, "certificate": k.certificate_pem} for k in keys],
        "nonce": nonce,
        "created_at": format_time(created_at),
    }
    if installation_key is not None:
        body["installation_key"] = installation_key
    return body


def digest(request_content: dict[str, Any]) -> bytes:
    """What each key signs: the SHA-256 of the content's canonical JSON."""
    return hashlib.sha256(canonical_json(request_content)).digest()


def assemble(request_content: dict[str, Any], signatures: dict[str, bytes]) -> bytes:
    """The request file: content plus ``serial -> signature`` (DER ECDSA or RSA)."""
    document = {
        "format": FORMAT,
        "content": request_content,
        "signatures": [
            {"serial": serial, "signature": base64.b64encode(sig).decode("ascii")}
            for serial, sig in signatures.items()
        ],
    }
    return canonical_json(document) + b"\n"


@dataclass(frozen=True)
class VerifiedRequest:
    product: str
    hardware_id: str
    nonce: str
    created_at: datetime
    #: Keys whose presence the request proves (signature and chain verified).
    key_serials: tuple[str, ...]
    #: Keys listed without a proof that holds (reported to the vendor, never bound).
    unproven: tuple[str, ...]
    #: The key that signs the server's usage reports (None: an older server's request).
    installation_key: ed25519.Ed25519PublicKey | None = None


def verify(data: bytes, ca_cert: x509.Certificate | None) -> VerifiedRequest:
    """Check a request's signatures (and chains to ``ca_cert``); ``validation_error`` if off."""
    if len(data) > MAX_REQUEST_SIZE:
        raise _bad("it is larger than any activation request")
    try:
        raw = json.loads(data)
    except ValueError:
        raise _bad("it is not JSON") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise _bad(f"its format is not {FORMAT}")
    body = raw.get("content")
    if not isinstance(body, dict):
        raise _bad("it has no content")
    for name in ("product", "hardware_id", "nonce", "created_at"):
        if not isinstance(body.get(name), str) or not body[name]:
            raise _bad(f"content.{name} is missing")
    keys = body.get("keys")
    if not isinstance(keys, list) or not all(
        isinstance(k, dict) and isinstance(k.get("serial"), str) and isinstance(k.get("certificate"), str)
        for k in keys
    ):
        raise _bad("content.keys is not a list of serials with certificates")
    signatures = raw.get("signatures")
    if not isinstance(signatures, list):
        raise _bad("signatures is not a list")
    signed = {s.get("serial"): s.get("signature") for s in signatures if isinstance(s, dict)}
    wanted = digest(body)
    proven, unproven = [], []
    for key in keys:
        serial = key["serial"]
        if _proves(key, signed.get(serial), wanted, ca_cert):
            proven.append(serial)
        else:
            unproven.append(serial)
    try:
        created_at = parse_time(body["created_at"], "created_at")
    except FloatkeyError:
        raise _bad("content.created_at is not a time") from None
    assert created_at is not None
    return VerifiedRequest(
        installation_key=installation_key(body),
        product=body["product"],
        hardware_id=body["hardware_id"],
        nonce=body["nonce"],
        created_at=created_at,
        key_serials=tuple(proven),
        unproven=tuple(unproven),
    )


def _proves(key: dict[str, str], signature: Any, wanted: bytes, ca_cert: x509.Certificate | None) -> bool:
    if not isinstance(signature, str):
        return False
    try:
        cert = x509.load_pem_x509_certificate(key["certificate"].encode("ascii"))
        raw_signature = base64.b64decode(signature, validate=True)
    except (ValueError, UnicodeEncodeError):
        return False
    if ca_cert is not None:
        try:
            piv.check_chain(cert, ca_cert)
        except piv.InvalidKey:
            return False
        named = cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
        if named and named[0].value != key["serial"]:
            return False
    return piv.verify_signature(cert.public_key(), wanted, raw_signature)


def installation_key(body: dict[str, Any]) -> ed25519.Ed25519PublicKey | None:
    """The request content's installation key, if it has one; ``validation_error`` if damaged."""
    pem = body.get("installation_key")
    if pem is None:
        return None
    try:
        key = serialization.load_pem_public_key(pem.encode("ascii")) if isinstance(pem, str) else None
    except (ValueError, UnicodeEncodeError):
        key = None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise _bad("content.installation_key is not an Ed25519 public key")
    return key


def _bad(why: str) -> FloatkeyError:
    return FloatkeyError(
        "validation_error",
        f"This is not a valid floatkey activation request: {why}. Ask the customer to send "
        "the file exactly as `floatkey activation-request` wrote it.",
    )
