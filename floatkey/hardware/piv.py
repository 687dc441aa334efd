"""PIV smart-card protocol, as spoken by YubiKeys: APDUs, answers, certificates, signatures.

Pure code: nothing here talks to PC/SC. Functions that exchange APDUs take a
``transmit(apdu) -> (data, sw)`` callable, so the same code runs against a real card
(through the hardware-key actor), the virtual key, or a list of canned answers in a test.
The facts come from NIST SP 800-73-4 part 2 and Yubico's PIV documentation.
"""

from __future__ import annotations

import datetime
import gzip
import secrets
from collections.abc import Callable, Container
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

Transmit = Callable[[bytes], tuple[bytes, int]]

PIV_AID = bytes.fromhex("A000000308")
SLOT_AUTHENTICATION = 0x9A
#: BER-TLV object tags of the certificates in the four main key slots.
CERT_OBJECT_TAGS = {0x9A: 0x5FC105, 0x9C: 0x5FC10A, 0x9D: 0x5FC10B, 0x9E: 0x5FC101}
PIN_REFERENCE = 0x80

ALG_RSA_2048 = 0x07
ALG_ECC_P256 = 0x11
ALG_ECC_P384 = 0x14

SW_OK = 0x9000
SW_SECURITY_STATUS = 0x6982
SW_AUTH_BLOCKED = 0x6983
SW_WRONG_DATA = 0x6A80
SW_NOT_FOUND = 0x6A82
SW_WRONG_P1P2 = 0x6A86
SW_INS_NOT_SUPPORTED = 0x6D00
SW_CLA_NOT_SUPPORTED = 0x6E00

_SW_MEANING = {
    SW_SECURITY_STATUS: "security status not satisfied (PIN required)",
    SW_AUTH_BLOCKED: "PIN blocked",
    SW_WRONG_DATA: "incorrect data",
    SW_NOT_FOUND: "not found",
    SW_WRONG_P1P2: "wrong algorithm or slot",
    SW_INS_NOT_SUPPORTED: "instruction not supported",
    SW_CLA_NOT_SUPPORTED: "class not supported",
}


class PivError(Exception):
    """A card answered with a status word other than 90 00 (or answered nonsense)."""

    def __init__(self, message: str, sw: int | None = None) -> None:
        super().__init__(message)
        self.sw = sw


class PinRequired(PivError):
    """The card refused to sign before a PIN was verified (``69 82``)."""


class WrongPin(PivError):
    """VERIFY failed (``63 Cx``); ``tries_left`` more attempts before the PIN blocks."""

    def __init__(self, tries_left: int) -> None:
        super().__init__(f"wrong PIN, {tries_left} tries left", 0x63C0 | tries_left)
        self.tries_left = tries_left


class PinBlocked(PivError):
    """The PIN is blocked (``69 83``): only the PUK can unblock it."""


class InvalidKey(Exception):
    """A key answered but failed a validity rule; the message says which, for a person."""


def describe_sw(sw: int) -> str:
    """``6A 82 (not found)``: a status word for logs and reasons."""
    meaning = _SW_MEANING.get(sw)
    if meaning is None and sw & 0xFFF0 == 0x63C0:
        meaning = f"{sw & 0x0F} tries left"
    text = f"{sw >> 8:02X} {sw & 0xFF:02X}"
    return f"{text} ({meaning})" if meaning else text


def check_sw(data: bytes, sw: int, what: str) -> bytes:
    """Return ``data`` when ``sw`` is 90 00, else raise the PivError that fits it."""
    if sw == SW_OK:
        return data
    if sw == SW_SECURITY_STATUS:
        raise PinRequired(f"{what}: PIN required", sw)
    if sw == SW_AUTH_BLOCKED:
        raise PinBlocked(f"{what}: PIN blocked", sw)
    if sw & 0xFFF0 == 0x63C0:
        raise WrongPin(sw & 0x0F)
    raise PivError(f"{what}: card answered {describe_sw(sw)}", sw)


# --- BER-TLV ---------------------------------------------------------------------------


def encode_length(length: int) -> bytes:
    """BER length: one byte below 128, else 81 xx or 82 xx xx."""
    if length < 0x80:
        return bytes([length])
    if length <= 0xFF:
        return bytes([0x81, length])
    if length <= 0xFFFF:
        return bytes([0x82]) + length.to_bytes(2, "big")
    raise ValueError(f"TLV length {length} too large")


def tlv(tag: int, value: bytes) -> bytes:
    """Encode one BER-TLV element (tags of one to three bytes)."""
    size = (tag.bit_length() + 7) // 8 or 1
    return tag.to_bytes(size, "big") + encode_length(len(value)) + value


def parse_tlv(data: bytes) -> list[tuple[int, bytes]]:
    """Decode a run of BER-TLV elements into ``(tag, value)`` pairs."""
    items: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data):
        tag, pos = _read_tag(data, pos)
        length, pos = _read_length(data, pos)
        if pos + length > len(data):
            raise PivError(f"TLV element {tag:X} runs past the end of the data")
        items.append((tag, data[pos : pos + length]))
        pos += length
    return items


def _read_tag(data: bytes, pos: int) -> tuple[int, int]:
    tag = data[pos]
    pos += 1
    if tag & 0x1F == 0x1F:
        while True:
            if pos >= len(data):
                raise PivError("truncated TLV tag")
            tag = (tag << 8) | data[pos]
            pos += 1
            if not data[pos - 1] & 0x80:
                break
    return tag, pos


def _read_length(data: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(data):
        raise PivError("truncated TLV length")
    first = data[pos]
    pos += 1
    if first < 0x80:
        return first, pos
    count = first & 0x7F
    if count not in (1, 2, 3) or pos + count > len(data):
        raise PivError("bad TLV length")
    return int.from_bytes(data[pos : pos + count], "big"), pos + count


def find_tlv(data: bytes, tag: int) -> bytes:
    """The value of the first element tagged ``tag``; PivError when absent."""
    for found, value in parse_tlv(data):
        if found == tag:
            return value
    raise PivError(f"TLV element {tag:X} missing")


# --- APDU builders ---------------------------------------------------------------------


def apdu(cla: int, ins: int, p1: int, p2: int, data: bytes = b"", le: int | None = None) -> bytes:
    """A short command APDU (data up to 255 bytes; ``le`` 0 means 256)."""
    if len(data) > 255:
        raise ValueError("short APDUs carry at most 255 bytes; use chained_apdus()")
    out = bytes([cla, ins, p1, p2])
    if data:
        out += bytes([len(data)]) + data
    if le is not None:
        out += bytes([le & 0xFF])
    return out


def chained_apdus(ins: int, p1: int, p2: int, data: bytes) -> list[bytes]:
    """Command chaining (CLA 10) for data longer than one short APDU, as Yubico's tools do."""
    chunks = [data[i : i + 255] for i in range(0, len(data), 255)] or [b""]
    last = len(chunks) - 1
    return [apdu(0x10 if i < last else 0x00, ins, p1, p2, c) for i, c in enumerate(chunks)]


def select_apdu() -> bytes:
    return apdu(0x00, 0xA4, 0x04, 0x00, PIV_AID)


def serial_apdu() -> bytes:
    """YubiKey (firmware 5+) GET SERIAL."""
    return bytes([0x00, 0xF8, 0x00, 0x00])


def version_apdu() -> bytes:
    """YubiKey GET VERSION of the PIV applet."""
    return bytes([0x00, 0xFD, 0x00, 0x00])


def get_data_apdu(object_tag: int) -> bytes:
    return apdu(0x00, 0xCB, 0x3F, 0xFF, tlv(0x5C, object_tag.to_bytes(3, "big")))


def get_response_apdu(le: int) -> bytes:
    return bytes([0x00, 0xC0, 0x00, 0x00, le & 0xFF])


def pin_block(pin: str) -> bytes:
    """The PIN as VERIFY carries it: its bytes padded with FF to 8."""
    raw = pin.encode("utf-8")
    if not 1 <= len(raw) <= 8:
        raise ValueError("a PIV PIN is 1 to 8 bytes long")
    return raw.ljust(8, b"\xff")


def verify_pin_apdu(pin: str | None) -> bytes:
    """VERIFY; with ``pin`` None it asks for the tries left without spending one."""
    if pin is None:
        return bytes([0x00, 0x20, 0x00, PIN_REFERENCE])
    return apdu(0x00, 0x20, 0x00, PIN_REFERENCE, pin_block(pin))


def sign_apdus(payload: bytes, algorithm: int, slot: int = SLOT_AUTHENTICATION) -> list[bytes]:
    """GENERAL AUTHENTICATE asking the card to sign ``payload`` with the key in ``slot``."""
    body = tlv(0x7C, tlv(0x82, b"") + tlv(0x81, payload))
    return chained_apdus(0x87, algorithm, slot, body)


# --- exchanges -------------------------------------------------------------------------


def transceive(transmit: Transmit, command: bytes) -> tuple[bytes, int]:
    """Send one command and follow ``61 xx`` with GET RESPONSE until the last piece."""
    data, sw = transmit(command)
    out = bytearray(data)
    while sw >> 8 == 0x61:
        data, sw = transmit(get_response_apdu(sw & 0xFF))
        out += data
    return bytes(out), sw


def transceive_chain(transmit: Transmit, commands: list[bytes]) -> tuple[bytes, int]:
    """Send a command chain; every link but the last must answer 90 00."""
    for command in commands[:-1]:
        _, sw = transmit(command)
        if sw != SW_OK:
            return b"", sw
    return transceive(transmit, commands[-1])


def select(transmit: Transmit) -> None:
    data, sw = transceive(transmit, select_apdu())
    check_sw(data, sw, "select PIV")


def read_serial(transmit: Transmit) -> int:
    data, sw = transceive(transmit, serial_apdu())
    check_sw(data, sw, "read serial")
    if len(data) != 4:
        raise PivError(f"read serial: expected 4 bytes, got {len(data)}")
    return int.from_bytes(data, "big")


def read_certificate(transmit: Transmit, slot: int = SLOT_AUTHENTICATION) -> x509.Certificate:
    data, sw = transceive(transmit, get_data_apdu(CERT_OBJECT_TAGS[slot]))
    check_sw(data, sw, f"read certificate of slot {slot:02X}")
    return parse_certificate_object(data)


def pin_tries_left(transmit: Transmit) -> int | None:
    """Tries left before the PIN blocks (None when already verified in this session)."""
    _, sw = transmit(verify_pin_apdu(None))
    if sw == SW_OK:
        return None
    if sw == SW_AUTH_BLOCKED:
        return 0
    if sw & 0xFFF0 == 0x63C0:
        return sw & 0x0F
    raise PivError(f"PIN status: card answered {describe_sw(sw)}", sw)


def verify_pin(transmit: Transmit, pin: str) -> None:
    """VERIFY the PIN; raises WrongPin / PinBlocked. Spends a try when wrong: call once."""
    data, sw = transmit(verify_pin_apdu(pin))
    check_sw(data, sw, "verify PIN")


def sign_digest(transmit: Transmit, digest: bytes, public_key: object) -> bytes:
    """Ask the card to sign a SHA-256 ``digest`` with slot 9A; returns the signature."""
    algorithm = algorithm_for(public_key)
    payload = digest
    if algorithm == ALG_RSA_2048:
        assert isinstance(public_key, rsa.RSAPublicKey)
        payload = pkcs1_v15_block(digest, public_key.key_size // 8)
    data, sw = transceive_chain(transmit, sign_apdus(payload, algorithm))
    check_sw(data, sw, "sign")
    return find_tlv(find_tlv(data, 0x7C), 0x82)


# --- certificates and signatures -------------------------------------------------------


def certificate_object(cert_der: bytes) -> bytes:
    """The PIV data object of a certificate, as the card stores it."""
    return tlv(0x53, tlv(0x70, cert_der) + tlv(0x71, b"\x00") + tlv(0xFE, b""))


def parse_certificate_object(data: bytes) -> x509.Certificate:
    """Parse ``53 {70 cert} {71 info} {FE}`` (gzip-compressed when info is 01)."""
    inner = find_tlv(data, 0x53)
    items = dict(parse_tlv(inner))
    if 0x70 not in items:
        raise PivError("certificate object has no certificate (tag 70)")
    der = items[0x70]
    if items.get(0x71, b"\x00")[:1] == b"\x01":
        der = gzip.decompress(der)
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise PivError(f"certificate does not parse: {exc}") from None


def algorithm_for(public_key: object) -> int:
    """The PIV algorithm id of a public key; PivError for key types the server cannot use."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if isinstance(public_key.curve, ec.SECP256R1):
            return ALG_ECC_P256
        if isinstance(public_key.curve, ec.SECP384R1):
            return ALG_ECC_P384
    if isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size == 2048:
        return ALG_RSA_2048
    raise PivError(f"unsupported key type {type(public_key).__name__}")


_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def pkcs1_v15_block(digest: bytes, size: int) -> bytes:
    """The padded block a PIV card signs with raw RSA for a PKCS#1 v1.5 SHA-256 signature."""
    info = _SHA256_DIGEST_INFO + digest
    return b"\x00\x01" + b"\xff" * (size - len(info) - 3) + b"\x00" + info


def verify_signature(public_key: object, digest: bytes, signature: bytes) -> bool:
    """True when ``signature`` is the key's signature over the SHA-256 ``digest``."""
    prehashed = Prehashed(hashes.SHA256())
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, digest, ec.ECDSA(prehashed))
        elif isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, digest, padding.PKCS1v15(), prehashed)
        else:
            return False
    except InvalidSignature:
        return False
    return True


def check_chain(cert: x509.Certificate, ca_cert: x509.Certificate) -> None:
    """Raise InvalidKey unless ``cert`` was signed by ``ca_cert`` and is within its dates."""
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        raise InvalidKey("certificate not signed by the configured CA") from None
    now = datetime.datetime.now(datetime.UTC)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise InvalidKey("certificate expired or not yet valid")


# --- the whole validity check ----------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """What a full validity check found. ``serial`` is None when the card never told."""

    serial: str | None
    valid: bool
    reason: str | None = None
    #: The configured PIN was refused in this check: remember it, never send it again.
    pin_refused: bool = False
    #: Not a key floatkey can use until it is plugged in again (not a PIV card, serial not
    #: allowed, certificate not from the CA, PIN refused or blocked): let go of the card.
    release: bool = False


def refused_pin_reason(tries_left: int) -> str:
    """The reason shown for a key that refused the configured PIN."""
    return (
        f"the configured PIN was refused by this key ({tries_left} tries left); change "
        "hardwareKey.pinFile (or the variable named by pinEnv) - floatkey will not try it again"
    )


def never_refused(serial: str) -> bool:
    """The default ``refused_pin`` of :func:`validate`: no key has refused the PIN."""
    return False


def validate(
    transmit: Transmit,
    ca_cert: x509.Certificate | None,
    pin: str | None,
    refused_pin: Callable[[str], bool] = never_refused,
    pin_serials: Container[str] | None = None,
) -> Verdict:
    """Check a key: valid as docs/hardware-keys.md defines it.

    The PIN is sent last, and only to a key that earned it: a PIV key whose serial is in
    ``pin_serials`` (None: any serial) and whose certificate parses and, with a CA,
    chains to it. ``refused_pin(serial)`` says the key already refused this PIN: it is then
    not sent again (three wrong PINs block a YubiKey), and the key stays invalid.
    Card I/O errors of the transport propagate; PIV errors become an invalid verdict.
    """
    serial: str | None = None
    try:
        select(transmit)
        serial = str(read_serial(transmit))
        if pin_serials is not None and serial not in pin_serials:
            return Verdict(serial, False, "serial not in hardwareKey.pinSerials", release=True)
        try:
            cert = read_certificate(transmit)
            if ca_cert is not None:
                check_chain(cert, ca_cert)
            public_key = cert.public_key()
            algorithm_for(public_key)
        except (PivError, InvalidKey) as exc:
            return Verdict(serial, False, str(exc), release=True)
        if pin is not None:
            if refused_pin(serial):
                tries = pin_tries_left(transmit)
                if tries is not None:
                    return Verdict(serial, False, refused_pin_reason(tries), release=True)
            else:
                verify_pin(transmit, pin)
        digest = secrets.token_bytes(32)
        signature = sign_digest(transmit, digest, public_key)
        if not verify_signature(public_key, digest, signature):
            raise InvalidKey("signature does not verify with the certificate's public key")
    except WrongPin as exc:
        return Verdict(serial, False, refused_pin_reason(exc.tries_left), pin_refused=True, release=True)
    except PinRequired:
        return Verdict(serial, False, "PIN required")
    except PinBlocked:
        return Verdict(serial, False, "PIN blocked", release=True)
    except (PivError, InvalidKey) as exc:
        return Verdict(serial, False, _reason(exc, serial), release=serial is None)
    return Verdict(serial, True)


def _reason(exc: Exception, serial: str | None) -> str:
    if serial is None and isinstance(exc, PivError):
        return f"not a PIV key: {exc}"
    return str(exc)
