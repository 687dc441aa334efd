"""The virtual card against Yubico's own library, yubikit, in process: no PC/SC, no threads.

yubikit is what ``ykman`` runs; these tests drive the card through it the way ``ykman``
does over USB (extended APDUs, ``61 xx`` response chaining), one command at a time.
"""

from __future__ import annotations

import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from yubikit.core import PID, TRANSPORT
from yubikit.core.smartcard import ApduError, SmartCardConnection
from yubikit.management import CAPABILITY, FORM_FACTOR
from yubikit.piv import (
    DEFAULT_MANAGEMENT_KEY,
    KEY_TYPE,
    MANAGEMENT_KEY_TYPE,
    PIN_POLICY,
    SLOT,
    InvalidPinError,
    PivSession,
)
from yubikit.support import read_info

from floatkey.hardware import ca, piv
from floatkey.hardware.virtual_key import VirtualCard, make_card

AES192_KEY = bytes(range(24))


class CardConnection(SmartCardConnection):
    """A yubikit connection to a virtual card, as over a YubiKey's USB CCID interface."""

    def __init__(self, card: VirtualCard) -> None:
        self.card = card
        self.sent: list[bytes] = []

    @property
    def transport(self) -> TRANSPORT:
        return TRANSPORT.USB

    def close(self) -> None:
        self.card.power_off()

    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]:
        self.sent.append(apdu)
        answer = self.card.process(apdu)
        return answer[:-2], int.from_bytes(answer[-2:], "big")


def test_management_application_identifies_a_yubikey() -> None:
    info = read_info(CardConnection(VirtualCard(20240601)), PID.YK4_CCID)
    assert info.serial == 20240601
    assert tuple(info.version) == (5, 4, 3)
    assert info.form_factor == FORM_FACTOR.USB_A_KEYCHAIN
    assert info.supported_capabilities[TRANSPORT.USB] == CAPABILITY.PIV
    assert info.config.enabled_capabilities[TRANSPORT.USB] == CAPABILITY.PIV
    assert not info.is_locked


def test_fresh_key_reports_defaults_in_its_metadata() -> None:
    session = PivSession(CardConnection(VirtualCard(1)))
    assert tuple(session.version) == (5, 4, 3)
    assert session.get_serial() == 1
    assert session.management_key_type == MANAGEMENT_KEY_TYPE.TDES
    assert session.get_management_key_metadata().default_value
    pin = session.get_pin_metadata()
    assert (pin.default_value, pin.total_attempts, pin.attempts_remaining) == (True, 3, 3)
    assert session.get_puk_metadata().default_value
    with pytest.raises(ApduError) as empty:
        session.get_slot_metadata(SLOT.AUTHENTICATION)
    assert empty.value.sw == 0x6A88


def test_provisioning_with_yubikit_makes_a_valid_floatkey_key() -> None:
    """What ``ykman piv keys generate``, ``certificates import`` and ``change-pin`` send."""
    card = VirtualCard(424242)
    session = PivSession(CardConnection(card))
    session.authenticate(DEFAULT_MANAGEMENT_KEY)
    public_key = session.generate_key(SLOT.AUTHENTICATION, KEY_TYPE.ECCP256, PIN_POLICY.ONCE)
    metadata = session.get_slot_metadata(SLOT.AUTHENTICATION)
    assert (metadata.key_type, metadata.pin_policy, metadata.generated) == (
        KEY_TYPE.ECCP256,
        PIN_POLICY.ONCE,
        True,
    )
    assert metadata.public_key == public_key
    vendor_key, vendor_cert = ca.make_ca("yubikit test CA")
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    cert = ca.issue(vendor_key, vendor_cert, public_key, 424242)
    session.put_certificate(SLOT.AUTHENTICATION, cert)
    assert session.get_certificate(SLOT.AUTHENTICATION) == cert
    session.change_pin("123456", "97531864")
    assert not session.get_pin_metadata().default_value

    verdict = piv.validate(_transmitter(card), vendor_cert, "97531864")
    assert verdict == piv.Verdict("424242", True)
    assert not piv.validate(_transmitter(VirtualCard(424242, pin="97531864")), vendor_cert, "97531864").valid


def test_key_operations_need_the_management_key() -> None:
    card = VirtualCard(2)
    session = PivSession(CardConnection(card))
    with pytest.raises(ApduError) as refused:
        session.generate_key(SLOT.AUTHENTICATION, KEY_TYPE.ECCP256)
    assert refused.value.sw == 0x6982
    with pytest.raises(ApduError):
        session.put_object(0x5FC105, b"\x70\x00")
    with pytest.raises(Exception):  # noqa: B017 - yubikit raises BadResponseError or ApduError
        session.authenticate(bytes(24))
    assert not card.authenticated
    assert card.keys == {} and card.objects == {}


def test_aes192_management_key_as_on_newer_yubikeys() -> None:
    card = VirtualCard(3, management_key=AES192_KEY, management_key_algorithm=0x0A)
    session = PivSession(CardConnection(card))
    assert session.management_key_type == MANAGEMENT_KEY_TYPE.AES192
    assert not session.get_management_key_metadata().default_value
    session.authenticate(AES192_KEY)
    session.set_management_key(MANAGEMENT_KEY_TYPE.TDES, DEFAULT_MANAGEMENT_KEY)
    fresh = PivSession(CardConnection(card))
    assert fresh.management_key_type == MANAGEMENT_KEY_TYPE.TDES
    fresh.authenticate(DEFAULT_MANAGEMENT_KEY)


def test_wrong_pin_on_change_counts_down_and_blocks() -> None:
    card = VirtualCard(4)
    session = PivSession(CardConnection(card))
    for left in (2, 1, 0):
        with pytest.raises(InvalidPinError) as wrong:
            session.change_pin("000000", "654321")
        assert wrong.value.attempts_remaining == left
    assert card.pin == "123456"
    assert session.get_pin_metadata().attempts_remaining == 0
    session.unblock_pin("12345678", "654321")
    session.verify_pin("654321")
    assert session.get_pin_metadata().attempts_remaining == 3


def test_new_pin_must_be_six_to_eight_bytes() -> None:
    card = VirtualCard(5)
    session = PivSession(CardConnection(card))
    with pytest.raises(ApduError):
        session.change_pin("123456", "12345")
    assert card.pin == "123456"


def test_rsa2048_generation_and_signature_through_chaining() -> None:
    card = VirtualCard(6)
    connection = CardConnection(card)
    session = PivSession(connection)
    session.authenticate(DEFAULT_MANAGEMENT_KEY)
    public_key = session.generate_key(SLOT.SIGNATURE, KEY_TYPE.RSA2048)
    assert any(apdu[1] == 0xC0 for apdu in connection.sent), "a 2048-bit key needs GET RESPONSE"
    assert isinstance(public_key, rsa.RSAPublicKey)
    session.verify_pin("123456")
    signature = session.sign(SLOT.SIGNATURE, KEY_TYPE.RSA2048, b"data", hashes.SHA256(), padding.PKCS1v15())
    public_key.verify(signature, b"data", padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(ApduError) as again:  # slot 9C's default PIN policy is "always"
        session.sign(SLOT.SIGNATURE, KEY_TYPE.RSA2048, b"data", hashes.SHA256(), padding.PKCS1v15())
    assert again.value.sw == 0x6982


def test_prebuilt_card_keeps_its_certificate_and_key() -> None:
    vendor_key, vendor_cert = ca.make_ca("prebuilt")
    card = make_card(7, "246813", vendor_key, vendor_cert)
    session = PivSession(CardConnection(card))
    cert = session.get_certificate(SLOT.AUTHENTICATION)
    assert isinstance(cert, x509.Certificate) and cert == card.cert
    assert session.get_slot_metadata(SLOT.AUTHENTICATION).pin_policy == PIN_POLICY.ONCE
    session.verify_pin("246813")
    digest = hashlib.sha256(b"challenge").digest()
    signature = session.sign(SLOT.AUTHENTICATION, KEY_TYPE.ECCP256, b"challenge", hashes.SHA256())
    assert piv.verify_signature(cert.public_key(), digest, signature)


def _transmitter(card: VirtualCard) -> piv.Transmit:
    def transmit(command: bytes) -> tuple[bytes, int]:
        answer = card.process(command)
        return answer[:-2], int.from_bytes(answer[-2:], "big")

    return transmit
