"""The server's side of license files: make activation requests, install license files.

The imperative shell around the pure parts (request.py, envelope.py, validation.py): it
asks the hardware-key actor to sign, the directory actor to store nonces and to install,
and maps their failures to the refusals of docs/licensing.md.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

import pykka
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding

from floatkey import inputs
from floatkey.errors import FloatkeyError, overloaded
from floatkey.hardware.gate import KeyChecker
from floatkey.hardware.states import STATE_VALID
from floatkey.licensing import envelope, request
from floatkey.licensing.claims import LicenseClaims
from floatkey.rules.policy import Policy, policy_from_fields
from floatkey.timeutil import utcnow

if TYPE_CHECKING:
    from floatkey.actors.directory import DirectoryProxy
    from floatkey.actors.hardware_key import HardwareKeyProxy

logger = logging.getLogger(__name__)

T = TypeVar("T")
INSTALL_ACTION = "installing a license file"


def make_request(
    product: Any,
    hardware_id: str,
    key_actor: HardwareKeyProxy | None,
    key_states: list[dict[str, Any]],
    directory: DirectoryProxy,
    timeout: float,
    installation_key: str | None = None,
) -> dict[str, Any]:
    """A signed activation request; its nonce is stored before the request is returned.
    ``installation_key`` (PEM) tells the vendor the key that signs this server's reports."""
    code = inputs.text({"product": product}, "product", required=True, max_length=64)
    assert code is not None
    policy_from_fields({"product": code})  # the product code's shape, as a license would need
    proofs: list[request.KeyProof] = []
    valid = [k["serial"] for k in key_states if k["state"] == STATE_VALID and k["serial"]]
    if key_actor is not None:
        for serial in valid:
            der = _get(key_actor.key_certificate(serial), timeout)
            pem = x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM).decode("ascii")
            proofs.append(request.KeyProof(serial, pem))
    nonce = secrets.token_hex(16)
    body = request.content(code, hardware_id, proofs, nonce, utcnow(), installation_key)
    signatures: dict[str, bytes] = {}
    if key_actor is not None:
        wanted = request.digest(body)
        for proof in proofs:
            signatures[proof.serial] = _get(key_actor.sign_with_key(proof.serial, wanted), timeout)
    _get(directory.open_request(nonce, code), timeout)
    logger.info("activation request made for product %r (keys: %s)", code, ", ".join(signatures) or "none")
    document: dict[str, Any] = json.loads(request.assemble(body, signatures))
    return document


def install(
    data: bytes | str,
    trusted: Mapping[str, ed25519.Ed25519PublicKey],
    directory: DirectoryProxy,
    hardware_ids: frozenset[str],
    keys: KeyChecker,
    timeout: float,
) -> dict[str, Any]:
    """Verify ``data`` and have the directory install it; a refusal changes nothing."""
    if not trusted:
        raise FloatkeyError(
            "license_file_unknown_signer",
            "This server trusts no vendor key, so it cannot install license files: add the "
            "vendor's license-signing.pub to vendor.publicKeys in the configuration and restart.",
        )
    claims = envelope.open_file(data, trusted)
    policy = _policy(claims)
    valid_keys: frozenset[str] = frozenset()
    if claims.key_serials:
        try:
            valid_keys = frozenset({keys.check(claims.key_serials, INSTALL_ACTION)})
        except FloatkeyError as exc:
            if exc.code == "hardware_key_reader_busy":
                raise
            valid_keys = frozenset()
        policy = replace(policy, is_hardware_key_auth=True, hardware_key_serial=claims.key_serials[0])
    text = data.decode("ascii") if isinstance(data, bytes) else data
    answer: dict[str, Any] = _get(directory.install(claims, policy, text, hardware_ids, valid_keys), timeout)
    return answer


def _policy(claims: LicenseClaims) -> Policy:
    try:
        return policy_from_fields(claims.policy_fields())
    except FloatkeyError as exc:
        raise FloatkeyError(
            "license_file_invalid",
            f"The license file's policy is not one this server can install ({exc.message}) "
            "Ask the vendor for a corrected file.",
        ) from None


def _get(future: pykka.Future[T], timeout: float) -> T:
    try:
        return future.get(timeout=timeout)
    except pykka.Timeout:
        raise overloaded() from None
