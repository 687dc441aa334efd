"""A license file on disk: the readable claims, then a detached JWS over their exact bytes.

The JWS is EdDSA (Ed25519) with an unencoded payload (RFC 7797, ``b64: false``); its header
names the signing key (``kid``). :func:`open_file` verifies the signature before anything
reads the claims for meaning: a license file is hostile input until then.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ed25519

from floatkey.errors import FloatkeyError
from floatkey.licensing.claims import LicenseClaims, claims_from_json, invalid
from floatkey.licensing.signer import key_id

BEGIN_CLAIMS = "-----BEGIN FLOATKEY LICENSE-----"
END_CLAIMS = "-----END FLOATKEY LICENSE-----"
BEGIN_SIGNATURE = "-----BEGIN FLOATKEY LICENSE SIGNATURE-----"
END_SIGNATURE = "-----END FLOATKEY LICENSE SIGNATURE-----"
TYPE = "floatkey-license"
#: Larger input is not a license file (a policy with 256 features fits many times over).
MAX_FILE_SIZE = 1 << 20


def seal(claims: LicenseClaims, private_key: ed25519.Ed25519PrivateKey) -> str:
    """The license file text of ``claims``, signed by ``private_key``."""
    if claims.kid != key_id(private_key.public_key()):
        raise ValueError("claims.kid must name the signing key")
    payload = claims.to_json()
    token = jwt.api_jws.encode(
        payload,
        private_key,
        algorithm="EdDSA",
        headers={"kid": claims.kid, "typ": TYPE},
        is_payload_detached=True,
    )
    return (
        f"floatkey license {claims.license_uid}, sequence {claims.sequence}, product {claims.product}.\n"
        "The claims below are signed: any change voids the file. "
        "Install it with `floatkey licenses import FILE`.\n"
        f"{BEGIN_CLAIMS}\n{payload.decode('ascii')}\n{END_CLAIMS}\n"
        f"{BEGIN_SIGNATURE}\n{token}\n{END_SIGNATURE}\n"
    )


def open_file(data: bytes | str, trusted: Mapping[str, ed25519.Ed25519PublicKey]) -> LicenseClaims:
    """Verify a license file against the ``trusted`` vendor keys (kid -> key), then parse it.

    ``license_file_invalid`` when it is not a license file or the signature does not match
    its content; ``license_file_unknown_signer`` when its key is not trusted here.
    """
    payload, token, header = unwrap(
        data,
        (BEGIN_CLAIMS, END_CLAIMS, BEGIN_SIGNATURE, END_SIGNATURE),
        MAX_FILE_SIZE,
        "license file",
        invalid,
    )
    kid = header.get("kid")
    if header.get("alg") != "EdDSA" or header.get("typ") != TYPE or not isinstance(kid, str):
        raise invalid("its signature is not a floatkey license signature")
    key = trusted.get(kid)
    if key is None:
        raise FloatkeyError(
            "license_file_unknown_signer",
            f"The license file is signed by vendor key {kid!r}, which this server does not trust. "
            "Add the vendor's public key to vendor.publicKeys in the configuration, or ask "
            "the vendor for a file signed with a key listed there.",
        )
    try:
        jwt.api_jws.decode_complete(token, key, algorithms=["EdDSA"], detached_payload=payload)
    except jwt.PyJWTError:
        raise invalid("its signature does not match its content (was it edited?)") from None
    claims = claims_from_json(payload)
    if claims.kid != kid:
        raise invalid("the key named in its claims is not the key that signed it")
    return claims


def unwrap(
    data: bytes | str,
    lines: tuple[str, str, str, str],
    max_size: int,
    what: str,
    invalid: Callable[[str], Exception],
) -> tuple[bytes, str, dict[str, Any]]:
    """The signed content, the JWS and its header (not yet trusted) of a file made of
    content between two ``lines`` and a signature between two more: a license file or a
    usage report (``what``). Too large, not ASCII, or not in that shape: ``invalid(why)``."""
    if len(data) > max_size:
        raise invalid(f"it is larger than any {what}")
    if isinstance(data, bytes):
        try:
            data = data.decode("ascii")
        except UnicodeDecodeError:
            raise invalid(f"it holds characters a {what} never has") from None
    if not data.isascii():
        raise invalid(f"it holds characters a {what} never has")
    text = data.replace("\r\n", "\n")
    begin_content, end_content, begin_signature, end_signature = lines
    try:
        payload = between(text, begin_content, end_content).encode("ascii")
        token = between(text, begin_signature, end_signature).strip()
    except ValueError as exc:
        raise invalid(str(exc)) from None
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise invalid("its signature block is damaged") from None
    return payload, token, header


def between(text: str, begin: str, end: str) -> str:
    """The text between the line ``begin`` and the line ``end``."""
    start = text.find(begin + "\n")
    stop = text.find("\n" + end, start)
    if start < 0 or stop < 0:
        raise ValueError(f"the line {begin} or {end} is missing")
    return text[start + len(begin) + 1 : stop]
