"""PIV protocol code against the virtual card's APDU processor: no PC/SC, no threads."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from floatkey.hardware import ca, piv
from floatkey.hardware.virtual_key import VirtualCard, make_card

PIN = "135790"


def transmitter(card: VirtualCard, log: list[bytes] | None = None) -> piv.Transmit:
    def transmit(command: bytes) -> tuple[bytes, int]:
        if log is not None:
            log.append(command)
        answer = card.process(command)
        return answer[:-2], int.from_bytes(answer[-2:], "big")

    return transmit


@pytest.fixture(scope="module")
def vendor() -> tuple[ec.EllipticCurvePrivateKey, object]:
    return ca.make_ca("piv test CA")


def test_apdu_bytes_match_the_protocol_table() -> None:
    assert piv.select_apdu() == bytes.fromhex("00A4040005A000000308")
    assert piv.get_data_apdu(0x5FC105) == bytes.fromhex("00CB3FFF055C035FC105")
    assert piv.verify_pin_apdu("1234") == bytes.fromhex("002000800831323334FFFFFFFF")
    digest = bytes(range(32))
    (sign,) = piv.sign_apdus(digest, piv.ALG_ECC_P256)
    assert sign == bytes.fromhex("0087119A267C2482008120") + digest


def test_status_words_map_to_errors() -> None:
    with pytest.raises(piv.WrongPin) as wrong:
        piv.check_sw(b"", 0x63C2, "verify")
    assert wrong.value.tries_left == 2
    with pytest.raises(piv.PinRequired):
        piv.check_sw(b"", 0x6982, "sign")
    with pytest.raises(piv.PinBlocked):
        piv.check_sw(b"", 0x6983, "verify")
    with pytest.raises(piv.PivError, match="6A 82"):
        piv.check_sw(b"", 0x6A82, "get data")
    assert piv.check_sw(b"ok", 0x9000, "x") == b"ok"


def test_tlv_round_trip_with_long_lengths() -> None:
    big = bytes(300)
    encoded = piv.tlv(0x53, piv.tlv(0x70, big) + piv.tlv(0xFE, b""))
    assert encoded[:4] == bytes([0x53, 0x82, 0x01, 0x32])
    assert dict(piv.parse_tlv(piv.find_tlv(encoded, 0x53))) == {0x70: big, 0xFE: b""}
    with pytest.raises(piv.PivError):
        piv.parse_tlv(bytes([0x53, 0x05, 0x00]))


def test_serial_and_certificate_read_through_get_response_chaining(vendor) -> None:
    card = make_card(7654321, PIN, *vendor)
    log: list[bytes] = []
    transmit = transmitter(card, log)
    piv.select(transmit)
    assert piv.read_serial(transmit) == 7654321
    assert piv.read_certificate(transmit) == card.cert
    assert any(c[1] == 0xC0 for c in log), "a >256-byte object must need GET RESPONSE"


def test_valid_key(vendor) -> None:
    verdict = piv.validate(transmitter(make_card(11, PIN, *vendor)), vendor[1], PIN)
    assert verdict == piv.Verdict("11", True)


def test_key_from_another_ca_is_invalid(vendor) -> None:
    other = ca.make_ca("someone else")
    verdict = piv.validate(transmitter(make_card(12, PIN, *other)), vendor[1], PIN)
    assert not verdict.valid
    assert verdict.reason == "certificate not signed by the configured CA"


def test_without_ca_any_piv_key_counts() -> None:
    assert piv.validate(transmitter(make_card(13, PIN)), None, PIN).valid


def test_bad_signature_is_invalid(vendor) -> None:
    card = make_card(14, PIN, *vendor, bad_signature=True)
    verdict = piv.validate(transmitter(card), vendor[1], PIN)
    assert not verdict.valid
    assert "signature does not verify" in (verdict.reason or "")


def test_wrong_pin_reports_tries_and_is_not_sent_again(vendor) -> None:
    card = make_card(15, PIN, *vendor)
    verdict = piv.validate(transmitter(card), vendor[1], "000000")
    assert (verdict.valid, verdict.pin_refused, verdict.release) == (False, True, True)
    assert verdict.reason == piv.refused_pin_reason(2)
    assert "(2 tries left)" in verdict.reason and "will not try it again" in verdict.reason
    log: list[bytes] = []
    again = piv.validate(transmitter(card, log), vendor[1], "000000", refused_pin={"15"}.__contains__)
    assert (again.reason, again.pin_refused) == (piv.refused_pin_reason(2), False)
    assert card.tries_left == 2
    assert all(len(c) <= 5 for c in log if c[1] == 0x20), "no PIN may be sent"


def test_pin_goes_only_to_listed_serials(vendor) -> None:
    card = make_card(21, PIN)
    log: list[bytes] = []
    verdict = piv.validate(transmitter(card, log), None, PIN, pin_serials={"22"})
    assert (verdict.serial, verdict.valid, verdict.release) == ("21", False, True)
    assert verdict.reason == "serial not in hardwareKey.pinSerials"
    assert not [c for c in log if c[1] == 0x20]
    assert piv.validate(transmitter(card), None, PIN, pin_serials={"21"}).valid


def test_key_from_another_ca_gets_no_pin_and_is_released(vendor) -> None:
    card = make_card(23, PIN, *ca.make_ca("another CA"))
    log: list[bytes] = []
    verdict = piv.validate(transmitter(card, log), vendor[1], PIN)
    assert (verdict.valid, verdict.release) == (False, True)
    assert not [c for c in log if c[1] == 0x20]


def test_no_pin_on_a_pin_key_is_pin_required(vendor) -> None:
    verdict = piv.validate(transmitter(make_card(16, PIN, *vendor)), vendor[1], None)
    assert verdict.reason == "PIN required"


def test_no_pin_on_a_key_without_pin_policy(vendor) -> None:
    card = make_card(17, PIN, *vendor, require_pin=False)
    assert piv.validate(transmitter(card), vendor[1], None).valid


def test_blocked_pin(vendor) -> None:
    card = make_card(18, PIN, *vendor)
    card.tries_left = 0
    assert piv.validate(transmitter(card), vendor[1], PIN).reason == "PIN blocked"


def test_not_a_piv_card() -> None:
    def transmit(command: bytes) -> tuple[bytes, int]:
        return b"", 0x6A82

    verdict = piv.validate(transmit, None, None)
    assert (verdict.serial, verdict.valid) == (None, False)
    assert verdict.reason is not None and verdict.reason.startswith("not a PIV key")


def test_rsa_2048_key_signs_through_command_chaining(vendor) -> None:
    key = rsa.generate_private_key(65537, 2048)
    cert = ca.issue(vendor[0], vendor[1], key.public_key(), 19)
    card = VirtualCard(19, cert, key, pin=PIN)
    log: list[bytes] = []
    assert piv.validate(transmitter(card, log), vendor[1], PIN).valid
    assert any(c[0] == 0x10 and c[1] == 0x87 for c in log)


def test_verify_signature_rejects_other_digest() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    card = VirtualCard(20, ca.self_signed(key, 20), key, pin=PIN, require_pin=False)
    transmit = transmitter(card)
    piv.select(transmit)
    digest = hashlib.sha256(b"challenge").digest()
    signature = piv.sign_digest(transmit, digest, key.public_key())
    assert piv.verify_signature(key.public_key(), digest, signature)
    assert not piv.verify_signature(key.public_key(), hashlib.sha256(b"x").digest(), signature)
