"""The card inside the virtual key: a YubiKey 5 (firmware 5.4.3) PIV and management applet.

FOR TRIALS AND TESTS ONLY: private keys, PIN, PUK and management key live unprotected in
this object's memory, for the lifetime of the process; nothing is written to disk.

It answers what floatkey and Yubico's tools (``yubico-piv-tool``, ``ykman`` and its library
``yubikit``) send a YubiKey, checked against yubikit's source:

- PIV (AID A0 00 00 03 08): SELECT, GET SERIAL (F8), GET VERSION (FD), GET METADATA (F7:
  PIN, PUK, management key, key slots), GET DATA / PUT DATA (CB / DB, any object, with
  ``61 xx`` response chaining and CLA 10 command chaining or extended APDUs in), VERIFY (20),
  CHANGE REFERENCE DATA (24, PIN and PUK), RESET RETRY COUNTER (2C), GENERAL AUTHENTICATE
  (87: management-key mutual authentication with 3DES or AES, and signatures with a slot's
  key), GENERATE ASYMMETRIC KEY PAIR (47: ECCP256, ECCP384, RSA1024, RSA2048), SET
  MANAGEMENT KEY (FF), SET PIN RETRIES (FA) and RESET (FB).
- Management (AID A0 00 00 05 27 47 11 17), which ``ykman`` selects to identify a device:
  SELECT answers the firmware version as text, READ CONFIG (1D) the device information
  (serial, version, form factor, supported and enabled applications: PIV only, since that
  is all this card implements).

Firmware 5.4.3 ships with the 3DES management key 010203...08; AES-128/192/256 keys can be
set with SET MANAGEMENT KEY, as on a real 5.4 key (5.7 and later ship with AES-192 by
default: pass ``management_key_algorithm=MGMT_AES192`` to start from that).
Touch policies cannot be honoured by a virtual key, so only "default" and "never" are
accepted.
"""

from __future__ import annotations

import collections
import hmac
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from floatkey.hardware import piv

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
#: An instruction's handler: (P1, P2, command data) -> response APDU.
Handler = Callable[[int, int, bytes], bytes]

DEFAULT_VERSION = (5, 4, 3)
DEFAULT_PIN = "123456"
DEFAULT_PUK = "12345678"
DEFAULT_PIN_TRIES = 3
DEFAULT_MANAGEMENT_KEY = bytes.fromhex("010203040506070801020304050607080102030405060708")
MANAGEMENT_AID = bytes.fromhex("A000000527471117")
#: Form factor reported by the management application: USB-A keychain.
FORM_FACTOR_USB_A_KEYCHAIN = 0x01
#: The management application's capability bit of PIV.
CAPABILITY_PIV = 0x10

MGMT_TDES = 0x03
MGMT_AES128 = 0x08
MGMT_AES192 = 0x0A
MGMT_AES256 = 0x0C
_MGMT_KEY_LENGTHS = {MGMT_TDES: 24, MGMT_AES128: 16, MGMT_AES192: 24, MGMT_AES256: 32}

SLOT_MANAGEMENT = 0x9B
PUK_REFERENCE = 0x81
#: Key slots: 9A, 9C, 9D, 9E and the twenty retired-key slots 82-95.
KEY_SLOTS = frozenset([0x9A, 0x9C, 0x9D, 0x9E, *range(0x82, 0x96)])

PIN_POLICY_DEFAULT, PIN_POLICY_NEVER, PIN_POLICY_ONCE, PIN_POLICY_ALWAYS = 0, 1, 2, 3
TOUCH_POLICY_DEFAULT, TOUCH_POLICY_NEVER = 0, 1
ORIGIN_GENERATED, ORIGIN_IMPORTED = 1, 2
#: A YubiKey's default PIN policy per slot (signature 9C: always; card auth 9E: never).
_SLOT_DEFAULT_PIN_POLICY = {0x9C: PIN_POLICY_ALWAYS, 0x9E: PIN_POLICY_NEVER}

SW_WRONG_LENGTH = 0x6700
SW_REFERENCE_NOT_FOUND = 0x6A88
SW_CONDITIONS_NOT_SATISFIED = 0x6985

_SELECT_PIV_ANSWER = bytes.fromhex("61114F0600001000010079074F05A000000308")
_MAX_RESPONSE = 256
_OBJECT_PROTECTED = 0x5FC109  # Yubico's PIN-protected object: readable after VERIFY only.


def _sw(sw: int) -> bytes:
    return sw.to_bytes(2, "big")


@dataclass
class SlotKey:
    """A private key in a PIV slot, with its policies and where it came from."""

    private_key: PrivateKey
    pin_policy: int = PIN_POLICY_ONCE
    touch_policy: int = TOUCH_POLICY_NEVER
    origin: int = ORIGIN_IMPORTED


def _algorithm_of(key: PrivateKey) -> int:
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size == 1024:
        return 0x06
    return piv.algorithm_for(key.public_key())


def _generate(algorithm: int) -> PrivateKey | None:
    if algorithm == piv.ALG_ECC_P256:
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == piv.ALG_ECC_P384:
        return ec.generate_private_key(ec.SECP384R1())
    if algorithm in (0x06, piv.ALG_RSA_2048):
        return rsa.generate_private_key(65537, 1024 if algorithm == 0x06 else 2048)
    return None


def _public_key_object(key: PrivateKey) -> bytes:
    """The public key as GENERATE and GET METADATA encode it (without the 7F49 wrapper)."""
    public = key.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        point = public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        return piv.tlv(0x86, point)
    numbers = public.public_numbers()
    modulus = numbers.n.to_bytes(public.key_size // 8, "big")
    return piv.tlv(0x81, modulus) + piv.tlv(0x82, numbers.e.to_bytes(3, "big"))


def _cipher(algorithm: int, key: bytes) -> Cipher[modes.ECB]:
    if algorithm == MGMT_TDES:
        return Cipher(TripleDES(key), modes.ECB())
    return Cipher(algorithms.AES(key), modes.ECB())


def _unpad(value: bytes) -> str | None:
    """A PIN or PUK as CHANGE REFERENCE carries it (8 bytes, FF-padded); None if malformed."""
    raw = value.rstrip(b"\xff")
    if len(value) != 8 or b"\xff" in raw:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


class VirtualCard:
    """The applets: turn command APDUs into response APDUs. No I/O; one lock.

    ``cert`` and ``private_key`` fill slot 9A (both None: a factory-fresh key, to provision
    with ``ykman``). ``sign_key`` is the key slot 9A really holds (defaults to
    ``private_key``; another key gives signatures that do not match the certificate).
    ``require_pin`` is slot 9A's PIN policy (once, or never). ``counts`` counts the APDUs
    received per instruction byte, so a test can see how often the card was asked.
    """

    def __init__(
        self,
        serial: int,
        cert: x509.Certificate | None = None,
        private_key: PrivateKey | None = None,
        pin: str = DEFAULT_PIN,
        require_pin: bool = True,
        sign_key: PrivateKey | None = None,
        pin_tries: int = DEFAULT_PIN_TRIES,
        puk: str = DEFAULT_PUK,
        management_key: bytes = DEFAULT_MANAGEMENT_KEY,
        management_key_algorithm: int = MGMT_TDES,
        version: tuple[int, int, int] = DEFAULT_VERSION,
    ) -> None:
        if len(management_key) != _MGMT_KEY_LENGTHS.get(management_key_algorithm, -1):
            raise ValueError("management key length does not fit its algorithm")
        self.serial = serial
        self.version = version
        self.pin = pin
        self.puk = puk
        self.max_tries = pin_tries
        self.tries_left = pin_tries
        self.puk_max_tries = DEFAULT_PIN_TRIES
        self.puk_tries_left = DEFAULT_PIN_TRIES
        self.management_key = management_key
        self.management_key_algorithm = management_key_algorithm
        self.keys: dict[int, SlotKey] = {}
        #: PIV data objects by tag, each stored as its whole ``53 ...`` element.
        self.objects: dict[int, bytes] = {}
        self.counts: collections.Counter[int] = collections.Counter()
        self._lock = threading.Lock()
        key = sign_key or private_key
        if key is not None:
            policy = PIN_POLICY_ONCE if require_pin else PIN_POLICY_NEVER
            self.keys[piv.SLOT_AUTHENTICATION] = SlotKey(key, policy)
        if cert is not None:
            tag = piv.CERT_OBJECT_TAGS[piv.SLOT_AUTHENTICATION]
            self.objects[tag] = piv.certificate_object(cert.public_bytes(serialization.Encoding.DER))
        self.power_off()

    @property
    def cert(self) -> x509.Certificate | None:
        """The certificate in slot 9A, as a reader would parse it (None when empty)."""
        data = self.objects.get(piv.CERT_OBJECT_TAGS[piv.SLOT_AUTHENTICATION])
        return None if data is None else piv.parse_certificate_object(data)

    def power_off(self) -> None:
        """Forget the session: selection, verified PIN, management key, pending answers."""
        self.application: bytes | None = None
        self.verified = False
        self.authenticated = False
        self._witness: bytes | None = None
        self._pending = b""
        self._chain = b""

    @property
    def selected(self) -> bool:
        """Whether the PIV application is selected."""
        return self.application == piv.PIV_AID

    def process(self, command: bytes) -> bytes:
        """Answer one command APDU (data and status word)."""
        with self._lock:
            if len(command) < 4:
                return _sw(piv.SW_WRONG_DATA)
            self.counts[command[1]] += 1
            try:
                return self._dispatch(command)
            except (ValueError, KeyError, IndexError, piv.PivError):
                return _sw(piv.SW_WRONG_DATA)

    def _dispatch(self, command: bytes) -> bytes:
        cla, ins, p1, p2 = command[:4]
        data = _command_data(command)
        if cla & ~0x10:
            return _sw(piv.SW_CLA_NOT_SUPPORTED)
        if ins == 0xA4:
            return self._select(p1, data)
        if ins == 0xC0 and self.application is not None:
            return self._respond(b"")
        handlers: dict[int, Handler] = {}
        if self.application == piv.PIV_AID:
            handlers = self._piv_handlers()
        elif self.application == MANAGEMENT_AID:
            handlers = {0x1D: self._read_config}
        handler = handlers.get(ins)
        if handler is None:
            return _sw(piv.SW_INS_NOT_SUPPORTED)
        if cla & 0x10:
            self._chain += data
            return _sw(piv.SW_OK)
        data, self._chain = self._chain + data, b""
        return handler(p1, p2, data)

    def _piv_handlers(self) -> dict[int, Handler]:
        return {
            0xF8: self._get_serial,
            0xFD: self._get_version,
            0xF7: self._get_metadata,
            0xCB: self._get_data,
            0xDB: self._put_data,
            0x20: self._verify,
            0x24: self._change_reference,
            0x2C: self._reset_retry,
            0x87: self._general_authenticate,
            0x47: self._generate_key,
            0xFF: self._set_management_key,
            0xFA: self._set_pin_retries,
            0xFB: self._reset,
        }

    def _select(self, p1: int, data: bytes) -> bytes:
        if p1 == 0x04 and len(data) >= 5 and piv.PIV_AID.startswith(data[:5]):
            self._enter(piv.PIV_AID)
            return _SELECT_PIV_ANSWER + _sw(piv.SW_OK)
        if p1 == 0x04 and data == MANAGEMENT_AID:
            self._enter(MANAGEMENT_AID)
            return ".".join(map(str, self.version)).encode() + _sw(piv.SW_OK)
        self.power_off()
        return _sw(piv.SW_NOT_FOUND)

    def _enter(self, application: bytes) -> None:
        """Select an application; leaving another one forgets that one's session."""
        if self.application != application:
            self.power_off()
            self.application = application

    def _respond(self, data: bytes) -> bytes:
        """Send at most 256 bytes; announce the rest with ``61 xx`` for GET RESPONSE."""
        data = data or self._pending
        head, self._pending = data[:_MAX_RESPONSE], data[_MAX_RESPONSE:]
        if not self._pending:
            return head + _sw(piv.SW_OK)
        rest = len(self._pending)
        return head + _sw(0x6100 | (rest if rest < 256 else 0))

    # --- management application --------------------------------------------------------

    def _read_config(self, page: int, p2: int, data: bytes) -> bytes:
        """Device information (page 0 only), as ``yubikit.management`` parses it."""
        if page != 0:
            return _sw(piv.SW_WRONG_P1P2)
        capabilities = CAPABILITY_PIV.to_bytes(2, "big")
        info = (
            piv.tlv(0x01, capabilities)  # USB: supported applications
            + piv.tlv(0x03, capabilities)  # USB: enabled applications
            + piv.tlv(0x02, self.serial.to_bytes(4, "big"))
            + piv.tlv(0x04, bytes([FORM_FACTOR_USB_A_KEYCHAIN]))
            + piv.tlv(0x05, bytes(self.version))
            + piv.tlv(0x08, b"\x00")  # device flags
            + piv.tlv(0x0A, b"\x00")  # configuration not locked
        )
        return self._respond(bytes([len(info)]) + info)

    # --- PIV: identity, metadata, data objects -----------------------------------------

    def _get_serial(self, p1: int, p2: int, data: bytes) -> bytes:
        return self.serial.to_bytes(4, "big") + _sw(piv.SW_OK)

    def _get_version(self, p1: int, p2: int, data: bytes) -> bytes:
        return bytes(self.version) + _sw(piv.SW_OK)

    def _get_metadata(self, p1: int, p2: int, data: bytes) -> bytes:
        if p2 == piv.PIN_REFERENCE:
            answer = self._pin_metadata(self.pin == DEFAULT_PIN, self.max_tries, self.tries_left)
        elif p2 == PUK_REFERENCE:
            answer = self._pin_metadata(self.puk == DEFAULT_PUK, self.puk_max_tries, self.puk_tries_left)
        elif p2 == SLOT_MANAGEMENT:
            is_default = self.management_key == DEFAULT_MANAGEMENT_KEY
            answer = (
                piv.tlv(0x01, bytes([self.management_key_algorithm]))
                + piv.tlv(0x02, bytes([0x00, TOUCH_POLICY_NEVER]))
                + piv.tlv(0x05, bytes([is_default]))
            )
        elif p2 in self.keys:
            slot = self.keys[p2]
            answer = (
                piv.tlv(0x01, bytes([_algorithm_of(slot.private_key)]))
                + piv.tlv(0x02, bytes([slot.pin_policy, slot.touch_policy]))
                + piv.tlv(0x03, bytes([slot.origin]))
                + piv.tlv(0x04, _public_key_object(slot.private_key))
            )
        else:
            return _sw(SW_REFERENCE_NOT_FOUND)
        return self._respond(answer)

    @staticmethod
    def _pin_metadata(is_default: bool, total: int, remaining: int) -> bytes:
        return (
            piv.tlv(0x01, b"\xff")
            + piv.tlv(0x05, bytes([is_default]))
            + piv.tlv(0x06, bytes([total, remaining]))
        )

    def _get_data(self, p1: int, p2: int, data: bytes) -> bytes:
        if (p1, p2) != (0x3F, 0xFF):
            return _sw(piv.SW_WRONG_P1P2)
        tag = int.from_bytes(piv.find_tlv(data, 0x5C), "big")
        stored = self.objects.get(tag)
        if stored is None:
            return _sw(piv.SW_NOT_FOUND)
        if tag == _OBJECT_PROTECTED and not self.verified:
            return _sw(piv.SW_SECURITY_STATUS)
        return self._respond(stored)

    def _put_data(self, p1: int, p2: int, data: bytes) -> bytes:
        if (p1, p2) != (0x3F, 0xFF):
            return _sw(piv.SW_WRONG_P1P2)
        if not self.authenticated:
            return _sw(piv.SW_SECURITY_STATUS)
        items = piv.parse_tlv(data)
        if len(items) != 2 or items[0][0] != 0x5C or items[1][0] != 0x53:
            return _sw(piv.SW_WRONG_DATA)
        tag = int.from_bytes(items[0][1], "big")
        if items[1][1]:
            self.objects[tag] = piv.tlv(0x53, items[1][1])
        else:
            self.objects.pop(tag, None)
        return _sw(piv.SW_OK)

    # --- PIV: PIN and PUK --------------------------------------------------------------

    def _verify(self, p1: int, p2: int, data: bytes) -> bytes:
        if p2 != piv.PIN_REFERENCE:
            return _sw(SW_REFERENCE_NOT_FOUND)
        if p1 == 0xFF:  # YubiKey: forget the verified PIN
            self.verified = False
            return _sw(piv.SW_OK)
        if self.tries_left == 0:
            return _sw(piv.SW_AUTH_BLOCKED)
        if not data:
            return _sw(piv.SW_OK if self.verified else 0x63C0 | self.tries_left)
        if self._check_pin(data):
            self.verified = True
            return _sw(piv.SW_OK)
        self.verified = False
        return self._tries_sw(self.tries_left)

    def _check_pin(self, block: bytes) -> bool:
        """Compare a padded PIN, counting a wrong one (and resetting the count when right)."""
        if hmac.compare_digest(block, piv.pin_block(self.pin)):
            self.tries_left = self.max_tries
            return True
        self.tries_left = max(self.tries_left - 1, 0)
        return False

    def _check_puk(self, block: bytes) -> bool:
        if hmac.compare_digest(block, piv.pin_block(self.puk)):
            self.puk_tries_left = self.puk_max_tries
            return True
        self.puk_tries_left = max(self.puk_tries_left - 1, 0)
        return False

    @staticmethod
    def _tries_sw(tries: int) -> bytes:
        return _sw(0x63C0 | tries if tries else piv.SW_AUTH_BLOCKED)

    def _change_reference(self, p1: int, p2: int, data: bytes) -> bytes:
        """CHANGE REFERENCE DATA: old and new PIN (or PUK), each padded to 8 bytes."""
        if p2 not in (piv.PIN_REFERENCE, PUK_REFERENCE):
            return _sw(SW_REFERENCE_NOT_FOUND)
        is_pin = p2 == piv.PIN_REFERENCE
        if len(data) != 16:
            return _sw(piv.SW_WRONG_DATA)
        if (self.tries_left if is_pin else self.puk_tries_left) == 0:
            return _sw(piv.SW_AUTH_BLOCKED)
        new = _unpad(data[8:])
        if not (self._check_pin(data[:8]) if is_pin else self._check_puk(data[:8])):
            return self._tries_sw(self.tries_left if is_pin else self.puk_tries_left)
        if new is None or not 6 <= len(new.encode()) <= 8:
            return _sw(piv.SW_WRONG_DATA)
        if is_pin:
            self.pin = new
        else:
            self.puk = new
        return _sw(piv.SW_OK)

    def _reset_retry(self, p1: int, p2: int, data: bytes) -> bytes:
        """RESET RETRY COUNTER: unblock the PIN with the PUK and set a new PIN."""
        if p2 != piv.PIN_REFERENCE:
            return _sw(SW_REFERENCE_NOT_FOUND)
        if len(data) != 16:
            return _sw(piv.SW_WRONG_DATA)
        if self.puk_tries_left == 0:
            return _sw(piv.SW_AUTH_BLOCKED)
        new = _unpad(data[8:])
        if not self._check_puk(data[:8]):
            return self._tries_sw(self.puk_tries_left)
        if new is None or not 6 <= len(new.encode()) <= 8:
            return _sw(piv.SW_WRONG_DATA)
        self.pin, self.tries_left = new, self.max_tries
        return _sw(piv.SW_OK)

    def _set_pin_retries(self, p1: int, p2: int, data: bytes) -> bytes:
        """SET PIN RETRIES: needs the management key and the PIN; resets PIN and PUK."""
        if not (self.authenticated and self.verified):
            return _sw(piv.SW_SECURITY_STATUS)
        if not (1 <= p1 <= 255 and 1 <= p2 <= 255):
            return _sw(piv.SW_WRONG_P1P2)
        self.max_tries = self.tries_left = p1
        self.puk_max_tries = self.puk_tries_left = p2
        self.pin, self.puk = DEFAULT_PIN, DEFAULT_PUK
        return _sw(piv.SW_OK)

    def _reset(self, p1: int, p2: int, data: bytes) -> bytes:
        """RESET: allowed only once PIN and PUK are both blocked, as on a YubiKey."""
        if self.tries_left or self.puk_tries_left:
            return _sw(SW_CONDITIONS_NOT_SATISFIED)
        self.pin, self.puk = DEFAULT_PIN, DEFAULT_PUK
        self.max_tries = self.tries_left = DEFAULT_PIN_TRIES
        self.puk_max_tries = self.puk_tries_left = DEFAULT_PIN_TRIES
        self.management_key, self.management_key_algorithm = DEFAULT_MANAGEMENT_KEY, MGMT_TDES
        self.keys.clear()
        self.objects.clear()
        self.power_off()
        self.application = piv.PIV_AID
        return _sw(piv.SW_OK)

    # --- PIV: management key -----------------------------------------------------------

    def _authenticate_management(self, algorithm: int, data: bytes) -> bytes:
        """Mutual authentication: 1. ``7C {80 00}`` gets the encrypted witness; 2. ``7C {80
        witness}{81 challenge}`` proves the host decrypted it and gets the challenge
        encrypted back."""
        if algorithm != self.management_key_algorithm:
            return _sw(piv.SW_WRONG_P1P2)
        cipher = _cipher(algorithm, self.management_key)
        block = 8 if algorithm == MGMT_TDES else 16
        items = dict(piv.parse_tlv(piv.find_tlv(data, 0x7C)))
        witness = items.get(0x80)
        if witness == b"" and 0x81 not in items:
            self.authenticated = False
            self._witness = os.urandom(block)
            encryptor = cipher.encryptor()
            encrypted = encryptor.update(self._witness) + encryptor.finalize()
            return self._respond(piv.tlv(0x7C, piv.tlv(0x80, encrypted)))
        expected, self._witness = self._witness, None
        challenge = items.get(0x81)
        if expected is None or witness is None or challenge is None or len(challenge) != block:
            return _sw(piv.SW_WRONG_DATA)
        if not hmac.compare_digest(witness, expected):
            return _sw(piv.SW_SECURITY_STATUS)
        self.authenticated = True
        encryptor = cipher.encryptor()
        response = encryptor.update(challenge) + encryptor.finalize()
        return self._respond(piv.tlv(0x7C, piv.tlv(0x82, response)))

    def _set_management_key(self, p1: int, p2: int, data: bytes) -> bytes:
        """SET MANAGEMENT KEY: ``algorithm 9B len key``; P2 FE would ask for touch."""
        if (p1, p2) != (0xFF, 0xFF):
            return _sw(piv.SW_WRONG_P1P2)
        if not self.authenticated:
            return _sw(piv.SW_SECURITY_STATUS)
        algorithm = data[0]
        key = piv.find_tlv(data[1:], SLOT_MANAGEMENT)
        if len(key) != _MGMT_KEY_LENGTHS.get(algorithm, -1):
            return _sw(piv.SW_WRONG_DATA)
        self.management_key, self.management_key_algorithm = key, algorithm
        return _sw(piv.SW_OK)

    # --- PIV: keys ---------------------------------------------------------------------

    def _generate_key(self, p1: int, slot: int, data: bytes) -> bytes:
        """GENERATE ASYMMETRIC KEY PAIR: ``AC {80 algorithm}[AA pin policy][AB touch]``."""
        if slot not in KEY_SLOTS:
            return _sw(piv.SW_WRONG_P1P2)
        if not self.authenticated:
            return _sw(piv.SW_SECURITY_STATUS)
        items = dict(piv.parse_tlv(piv.find_tlv(data, 0xAC)))
        key = _generate(items[0x80][0])
        pin_policy = items.get(0xAA, b"\x00")[0] or _SLOT_DEFAULT_PIN_POLICY.get(slot, PIN_POLICY_ONCE)
        touch_policy = items.get(0xAB, b"\x00")[0] or TOUCH_POLICY_NEVER
        if key is None or pin_policy > PIN_POLICY_ALWAYS or touch_policy != TOUCH_POLICY_NEVER:
            return _sw(piv.SW_WRONG_DATA)
        self.keys[slot] = SlotKey(key, pin_policy, touch_policy, ORIGIN_GENERATED)
        return self._respond(piv.tlv(0x7F49, _public_key_object(key)))

    def _general_authenticate(self, algorithm: int, slot: int, data: bytes) -> bytes:
        if slot == SLOT_MANAGEMENT:
            return self._authenticate_management(algorithm, data)
        key = self.keys.get(slot)
        if key is None or algorithm != _algorithm_of(key.private_key):
            return _sw(piv.SW_WRONG_P1P2)
        items = dict(piv.parse_tlv(piv.find_tlv(data, 0x7C)))
        if 0x81 not in items or 0x82 not in items:
            return _sw(piv.SW_WRONG_DATA)
        if key.pin_policy != PIN_POLICY_NEVER and not self.verified:
            return _sw(piv.SW_SECURITY_STATUS)
        signature = _sign(key.private_key, items[0x81])
        if signature is None:
            return _sw(piv.SW_WRONG_DATA)
        if key.pin_policy == PIN_POLICY_ALWAYS:
            self.verified = False
        return self._respond(piv.tlv(0x7C, piv.tlv(0x82, signature)))


def _sign(key: PrivateKey, payload: bytes) -> bytes | None:
    """Sign as a PIV card does: ECDSA over the given (hash-sized) value, or raw RSA."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        size = (key.curve.key_size + 7) // 8
        if len(payload) != size:
            return None
        digest = hashes.SHA256() if size == 32 else hashes.SHA384()
        return key.sign(payload, ec.ECDSA(Prehashed(digest)))
    numbers = key.private_numbers()
    size = key.key_size // 8
    if len(payload) != size:
        return None
    value = pow(int.from_bytes(payload, "big"), numbers.d, numbers.public_numbers.n)
    return value.to_bytes(size, "big")


def _command_data(command: bytes) -> bytes:
    """The data field of a short or extended command APDU."""
    body = command[4:]
    if len(body) <= 1:
        return b""
    if body[0] == 0 and len(body) >= 3:
        length = int.from_bytes(body[1:3], "big")
        return body[3 : 3 + length]
    return body[1 : 1 + body[0]]
