"""The license file format and the validation of its claims, without threads or servers."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from floatkey.errors import FloatkeyError
from floatkey.licensing import envelope, validation
from floatkey.licensing.claims import LicenseClaims
from floatkey.licensing.signer import key_id

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def vendor_key() -> tuple[ed25519.Ed25519PrivateKey, dict[str, ed25519.Ed25519PublicKey]]:
    key = ed25519.Ed25519PrivateKey.generate()
    return key, {key_id(key.public_key()): key.public_key()}


def claims_for(key: ed25519.Ed25519PrivateKey, **changes: object) -> LicenseClaims:
    base = LicenseClaims(
        license_uid="L-0001",
        sequence=1,
        product="cad",
        policy={"floating_users": 3, "features": [{"code": "pro", "is_floating": True}]},
        issued_at=NOW - timedelta(hours=1),
        not_before=NOW - timedelta(hours=1),
        kid=key_id(key.public_key()),
        hardware_id="machine-a",
        expires=NOW + timedelta(days=30),
        nonce="n1",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def here(**changes: object) -> validation.Installation:
    base = validation.Installation(
        now=NOW,
        hardware_ids={"machine-a"},
        valid_keys=set(),
        installed_sequence=None,
        open_nonces={"n1"},
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def refused(code: str, call: object, *args: object) -> FloatkeyError:
    with pytest.raises(FloatkeyError) as caught:
        call(*args)  # type: ignore[operator]
    assert caught.value.code == code, caught.value.message
    assert caught.value.message.endswith(".")
    return caught.value


def test_a_sealed_file_is_readable_and_opens_to_the_same_claims() -> None:
    key, trusted = vendor_key()
    claims = claims_for(key)
    text = envelope.seal(claims, key)
    assert '"floating_users": 3' in text  # a person can read the policy
    assert envelope.open_file(text.encode(), trusted) == claims
    validation.check(claims, here())


def test_crlf_line_ends_from_mail_still_verify() -> None:
    key, trusted = vendor_key()
    text = envelope.seal(claims_for(key), key).replace("\n", "\r\n")
    assert envelope.open_file(text.encode(), trusted).license_uid == "L-0001"


def test_one_changed_byte_in_the_claims_voids_the_file() -> None:
    key, trusted = vendor_key()
    text = envelope.seal(claims_for(key), key)
    tampered = text.replace('"floating_users": 3', '"floating_users": 9')
    assert tampered != text
    refused("license_file_invalid", envelope.open_file, tampered.encode(), trusted)


def test_a_damaged_signature_voids_the_file() -> None:
    key, trusted = vendor_key()
    text = envelope.seal(claims_for(key), key)
    token_line = text.splitlines()[-2]
    flipped = token_line[:-3] + ("A" if token_line[-3] != "A" else "B") + token_line[-2:]
    refused("license_file_invalid", envelope.open_file, text.replace(token_line, flipped).encode(), trusted)


@pytest.mark.parametrize("junk", [b"", b"hello", b"\xff\xfe", b"-----BEGIN FLOATKEY LICENSE-----\n{}\n"])
def test_what_is_not_a_license_file_is_invalid(junk: bytes) -> None:
    _, trusted = vendor_key()
    refused("license_file_invalid", envelope.open_file, junk, trusted)


def test_text_with_characters_no_license_file_has_is_invalid() -> None:
    key, trusted = vendor_key()
    text = envelope.seal(claims_for(key), key).replace('"cad"', '"cäd"')
    refused("license_file_invalid", envelope.open_file, text, trusted)


def test_another_vendors_file_has_an_unknown_signer() -> None:
    key, _ = vendor_key()
    _, other_trusted = vendor_key()
    text = envelope.seal(claims_for(key), key)
    error = refused("license_file_unknown_signer", envelope.open_file, text.encode(), other_trusted)
    assert key_id(key.public_key()) in error.message


def test_a_key_id_claimed_by_another_key_does_not_verify() -> None:
    key, trusted = vendor_key()
    forger = ed25519.Ed25519PrivateKey.generate()
    payload = claims_for(key).to_json()  # names the trusted key's id
    headers = {"kid": key_id(key.public_key()), "typ": envelope.TYPE}
    token = jwt.api_jws.encode(payload, forger, algorithm="EdDSA", headers=headers, is_payload_detached=True)
    forged = (
        f"{envelope.BEGIN_CLAIMS}\n{payload.decode()}\n{envelope.END_CLAIMS}\n"
        f"{envelope.BEGIN_SIGNATURE}\n{token}\n{envelope.END_SIGNATURE}\n"
    )
    refused("license_file_invalid", envelope.open_file, forged.encode(), trusted)


def test_another_machine_is_the_wrong_hardware() -> None:
    key, _ = vendor_key()
    refused("license_file_wrong_hardware", validation.check, claims_for(key, hardware_id="machine-b"), here())


def test_a_key_bound_file_needs_one_of_its_keys_valid_here() -> None:
    key, _ = vendor_key()
    claims = claims_for(key, hardware_id=None, key_serials=("111", "222"))
    refused("license_file_wrong_hardware", validation.check, claims, here(valid_keys={"333"}))
    validation.check(claims, here(valid_keys={"222"}))  # a standby key of the set counts


def test_outside_its_own_validity_a_file_is_refused() -> None:
    key, _ = vendor_key()
    refused(
        "license_file_not_yet_valid",
        validation.check,
        claims_for(key, not_before=NOW + timedelta(minutes=1)),
        here(),
    )
    refused("license_file_expired", validation.check, claims_for(key, expires=NOW), here())


def test_a_sequence_not_above_the_installed_one_is_outdated() -> None:
    key, _ = vendor_key()
    refresh = claims_for(key, sequence=2, nonce=None)
    refused("license_file_outdated", validation.check, refresh, here(installed_sequence=2))
    refused("license_file_outdated", validation.check, refresh, here(installed_sequence=5))
    validation.check(refresh, here(installed_sequence=1))


def test_a_nonce_is_answered_once_and_only_if_issued_here() -> None:
    key, _ = vendor_key()
    refused("activation_request_used", validation.check, claims_for(key, nonce="n2"), here())
    refused("activation_request_used", validation.check, claims_for(key), here(open_nonces=set()))


def test_a_refresh_file_for_a_license_not_installed_is_refused() -> None:
    key, _ = vendor_key()
    refused("license_file_invalid", validation.check, claims_for(key, sequence=2, nonce=None), here())


def test_a_file_bound_to_nothing_is_invalid() -> None:
    key, trusted = vendor_key()
    text = envelope.seal(claims_for(key, hardware_id=None), key)
    refused("license_file_invalid", envelope.open_file, text.encode(), trusted)
