"""A virtual PIV hardware key that plugs into the ``vpcd`` virtual reader of pcscd.

FOR TRIALS AND TESTS ONLY. vpcd (Debian package ``vsmartcard-vpcd``) accepts a card from
anyone who can reach its TCP ports (35963 and 35964, on all interfaces), and this key keeps
its private key in memory, unprotected. On a production machine hide the virtual readers:
start pcscd with ``PCSCLITE_FILTER_IGNORE_READER_NAMES="Virtual PCD"`` and set
``hardwareKey.ignoreReaders: ["Virtual PCD"]``.

The key speaks the vpcd protocol: every message is a 2-byte big-endian length and a payload.
A one-byte payload from vpcd is a control code (0 power off, 1 power on, 2 reset, 4 send
the ATR); a longer one is a command APDU, answered with one response APDU. It emulates the
YubiKey PIV commands floatkey and Yubico's tools use: SELECT, GET SERIAL, GET VERSION,
GET DATA (slot-9A certificate, with ``61 xx`` chaining), VERIFY (PIN tries counter) and
GENERAL AUTHENTICATE (signature with the slot-9A key, PIN required first).

Connected to vpcd means plugged in: closing the socket (``VirtualKey.unplug()``, or the
process ending) pulls the key out.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import errno
import signal
import socket
import sys
import threading
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from floatkey.errors import ConfigError
from floatkey.hardware import ca, piv
from floatkey.hardware.pin import read_pin_file

WARNING = (
    "WARNING: floatkey virtual key - for trials and tests only. Anyone who can reach vpcd's "
    "port can plug in a card; hide 'Virtual PCD' readers in production."
)
YUBIKEY5_ATR = bytes.fromhex("3BFD1300008131FE158073C021C057597562694B657940")
DEFAULT_PORT = 35963
DEFAULT_PIN_TRIES = 3
DEFAULT_VERSION = (5, 4, 3)
_SELECT_ANSWER = bytes.fromhex("6111 4F06 000010000100 7907 4F05 A000000308".replace(" ", ""))
_MAX_RESPONSE = 256

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def _sw(sw: int) -> bytes:
    return sw.to_bytes(2, "big")


class VirtualCard:
    """The PIV applet: turns command APDUs into response APDUs. No I/O, no threads.

    ``sign_key`` signs challenges (defaults to ``private_key``; another key gives bad
    signatures). ``require_pin`` is the slot's PIN policy. ``counts`` counts the APDUs
    received per instruction byte, so a test can see how often the card was asked.
    """

    def __init__(
        self,
        serial: int,
        cert: x509.Certificate,
        private_key: PrivateKey,
        pin: str = "123456",
        require_pin: bool = True,
        sign_key: PrivateKey | None = None,
        pin_tries: int = DEFAULT_PIN_TRIES,
    ) -> None:
        self.serial = serial
        self.cert = cert
        self.private_key = private_key
        self.sign_key = sign_key or private_key
        self.pin = pin
        self.require_pin = require_pin
        self.max_tries = pin_tries
        self.tries_left = pin_tries
        self.counts: collections.Counter[int] = collections.Counter()
        self._lock = threading.Lock()
        self._object = piv.certificate_object(cert.public_bytes(serialization.Encoding.DER))
        self.power_off()

    def power_off(self) -> None:
        """Forget the session: selection, verified PIN, pending answers."""
        self.selected = False
        self.verified = False
        self._pending = b""
        self._chain = b""

    def process(self, command: bytes) -> bytes:
        """Answer one command APDU (data and status word)."""
        with self._lock:
            if len(command) < 4:
                return _sw(piv.SW_WRONG_DATA)
            self.counts[command[1]] += 1
            try:
                return self._dispatch(command)
            except (ValueError, piv.PivError):
                return _sw(piv.SW_WRONG_DATA)

    def _dispatch(self, command: bytes) -> bytes:
        cla, ins, p1, p2 = command[:4]
        data = _command_data(command)
        if cla & ~0x10:
            return _sw(piv.SW_CLA_NOT_SUPPORTED)
        if ins == 0xA4:
            return self._select(p1, data)
        if not self.selected:
            return _sw(piv.SW_INS_NOT_SUPPORTED)
        if ins == 0xC0:
            return self._respond(b"")
        handler = {
            0xF8: self._get_serial,
            0xFD: self._get_version,
            0xCB: self._get_data,
            0x20: self._verify,
            0x87: self._general_authenticate,
        }.get(ins)
        if handler is None:
            return _sw(piv.SW_INS_NOT_SUPPORTED)
        if cla & 0x10:
            self._chain += data
            return _sw(piv.SW_OK)
        data, self._chain = self._chain + data, b""
        return handler(p1, p2, data)

    def _select(self, p1: int, data: bytes) -> bytes:
        if p1 == 0x04 and data and piv.PIV_AID.startswith(data[:5]) and len(data) >= 5:
            self.selected = True
            return _SELECT_ANSWER + _sw(piv.SW_OK)
        self.power_off()
        return _sw(piv.SW_NOT_FOUND)

    def _respond(self, data: bytes) -> bytes:
        """Send at most 256 bytes; announce the rest with ``61 xx`` for GET RESPONSE."""
        data = data or self._pending
        head, self._pending = data[:_MAX_RESPONSE], data[_MAX_RESPONSE:]
        if not self._pending:
            return head + _sw(piv.SW_OK)
        rest = len(self._pending)
        return head + _sw(0x6100 | (rest if rest < 256 else 0))

    def _get_serial(self, p1: int, p2: int, data: bytes) -> bytes:
        return self.serial.to_bytes(4, "big") + _sw(piv.SW_OK)

    def _get_version(self, p1: int, p2: int, data: bytes) -> bytes:
        return bytes(DEFAULT_VERSION) + _sw(piv.SW_OK)

    def _get_data(self, p1: int, p2: int, data: bytes) -> bytes:
        if (p1, p2) != (0x3F, 0xFF):
            return _sw(piv.SW_WRONG_P1P2)
        tag = int.from_bytes(piv.find_tlv(data, 0x5C), "big")
        if tag != piv.CERT_OBJECT_TAGS[piv.SLOT_AUTHENTICATION]:
            return _sw(piv.SW_NOT_FOUND)
        return self._respond(self._object)

    def _verify(self, p1: int, p2: int, data: bytes) -> bytes:
        if p2 != piv.PIN_REFERENCE:
            return _sw(piv.SW_NOT_FOUND)
        if self.tries_left == 0:
            return _sw(piv.SW_AUTH_BLOCKED)
        if not data:
            return _sw(piv.SW_OK if self.verified else 0x63C0 | self.tries_left)
        if data == piv.pin_block(self.pin):
            self.verified = True
            self.tries_left = self.max_tries
            return _sw(piv.SW_OK)
        self.verified = False
        self.tries_left -= 1
        return _sw(0x63C0 | self.tries_left if self.tries_left else piv.SW_AUTH_BLOCKED)

    def _general_authenticate(self, algorithm: int, slot: int, data: bytes) -> bytes:
        public_key = self.cert.public_key()
        if slot != piv.SLOT_AUTHENTICATION or algorithm != piv.algorithm_for(public_key):
            return _sw(piv.SW_WRONG_P1P2)
        items = dict(piv.parse_tlv(piv.find_tlv(data, 0x7C)))
        if 0x81 not in items or 0x82 not in items:
            return _sw(piv.SW_WRONG_DATA)
        if self.require_pin and not self.verified:
            return _sw(piv.SW_SECURITY_STATUS)
        signature = self._sign(items[0x81])
        if signature is None:
            return _sw(piv.SW_WRONG_DATA)
        return self._respond(piv.tlv(0x7C, piv.tlv(0x82, signature)))

    def _sign(self, payload: bytes) -> bytes | None:
        key = self.sign_key
        if isinstance(key, ec.EllipticCurvePrivateKey):
            if len(payload) != 32:
                return None
            return key.sign(payload, ec.ECDSA(Prehashed(hashes.SHA256())))
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


def make_card(
    serial: int,
    pin: str = "123456",
    ca_key: ec.EllipticCurvePrivateKey | None = None,
    ca_cert: x509.Certificate | None = None,
    bad_signature: bool = False,
    require_pin: bool = True,
) -> VirtualCard:
    """A card with a fresh P-256 key, certified by the CA (or self-signed without one)."""
    key = ec.generate_private_key(ec.SECP256R1())
    if ca_key is not None and ca_cert is not None:
        cert = ca.issue(ca_key, ca_cert, key.public_key(), serial)
    else:
        cert = ca.self_signed(key, serial)
    sign_key = ec.generate_private_key(ec.SECP256R1()) if bad_signature else None
    return VirtualCard(serial, cert, key, pin=pin, require_pin=require_pin, sign_key=sign_key)


class VirtualKey:
    """A :class:`VirtualCard` plugged into vpcd over TCP, served by a background thread."""

    def __init__(self, card: VirtualCard) -> None:
        self.card = card
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    @property
    def plugged(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def plug(self, port: int = DEFAULT_PORT, host: str = "127.0.0.1", timeout: float = 5.0) -> None:
        """Connect to vpcd (retrying until ``timeout`` while it is not listening yet)."""
        if self.plugged:
            raise RuntimeError("virtual key already plugged in")
        self._sock = connect(host, port, timeout)
        self._thread = threading.Thread(
            target=self.serve, name=f"virtual-key-{self.card.serial}", daemon=True
        )
        self._thread.start()

    def serve(self) -> None:
        """Answer vpcd until the connection closes."""
        assert self._sock is not None
        try:
            serve(self._sock, self.card)
        finally:
            self.card.power_off()

    def unplug(self) -> None:
        """Pull the key out: close the connection and wait for the serving thread."""
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    close = unplug


def connect(host: str, port: int, timeout: float) -> socket.socket:
    """A connection to vpcd, set up against Nagle's delay (Debian's vpcd needs it)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            sock = socket.create_connection((host, port), timeout=max(timeout, 0.1))
            break
        except OSError as exc:
            if exc.errno not in (errno.ECONNREFUSED, errno.ECONNRESET) or (time.monotonic() >= deadline):
                raise
            time.sleep(0.05)
    sock.settimeout(None)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _quickack(sock: socket.socket) -> None:
    if hasattr(socket, "TCP_QUICKACK"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)


def _recv_exact(sock: socket.socket, size: int) -> bytes | None:
    """Read exactly ``size`` bytes; None when the peer closed the connection."""
    buf = bytearray()
    while len(buf) < size:
        try:
            _quickack(sock)
            chunk = sock.recv(size - len(buf))
        except OSError:
            return None
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def serve(sock: socket.socket, card: VirtualCard) -> None:
    """The vpcd protocol loop: read a frame, answer it, until the connection closes."""
    while True:
        header = _recv_exact(sock, 2)
        if header is None:
            return
        payload = _recv_exact(sock, int.from_bytes(header, "big"))
        if payload is None:
            return
        answer = _handle(card, payload)
        if answer is not None:
            try:
                sock.sendall(len(answer).to_bytes(2, "big") + answer)
            except OSError:
                return


def _handle(card: VirtualCard, payload: bytes) -> bytes | None:
    if len(payload) != 1:
        return card.process(payload)
    code = payload[0]
    if code in (0, 2):
        card.power_off()
    elif code == 4:
        return YUBIKEY5_ATR
    return None


# --- command line ----------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="floatkey virtual-key",
        description="Run a virtual PIV hardware key in vpcd's reader. " + WARNING,
    )
    parser.add_argument("--serial", type=int, required=True, help="the key's serial number")
    pin = parser.add_mutually_exclusive_group(required=True)
    pin.add_argument("--pin", help="the key's PIN (visible in `ps`; prefer --pin-file)")
    pin.add_argument("--pin-file", type=Path, help="file holding the key's PIN")
    parser.add_argument("--ca-dir", type=Path, help="CA folder of `floatkey ca init`")
    parser.add_argument("--ca-cert", type=Path, help="CA certificate (PEM), with --ca-key")
    parser.add_argument("--ca-key", type=Path, help="CA private key (PEM), with --ca-cert")
    parser.add_argument("--host", default="127.0.0.1", help="where vpcd listens")
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help="35963 = reader 'Virtual PCD 00 00', 35964 = 'Virtual PCD 00 01'",
    )
    parser.add_argument(
        "--bad-signature",
        action="store_true",
        help="sign with a key that does not match the certificate (tests)",
    )
    parser.add_argument("--wait", type=float, default=10.0, help="seconds to wait for vpcd to listen")
    return parser


def _load_ca(args: argparse.Namespace) -> tuple[ec.EllipticCurvePrivateKey | None, x509.Certificate | None]:
    if args.ca_dir is not None:
        return ca.load_ca(args.ca_dir)
    if (args.ca_cert is None) != (args.ca_key is None):
        raise ValueError("give both --ca-cert and --ca-key, or --ca-dir")
    if args.ca_cert is None:
        return None, None
    key = serialization.load_pem_private_key(args.ca_key.read_bytes(), None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TypeError(f"{args.ca_key}: not an EC private key")
    return key, ca.load_certificate(args.ca_cert)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    print(WARNING, file=sys.stderr, flush=True)
    try:
        pin = args.pin if args.pin is not None else read_pin_file(args.pin_file)
        ca_key, ca_cert = _load_ca(args)
        card = make_card(args.serial, pin, ca_key, ca_cert, bad_signature=args.bad_signature)
        sock = connect(args.host, args.port, args.wait)
    except (OSError, ValueError, TypeError, ConfigError) as exc:
        print(f"floatkey virtual-key: {exc}", file=sys.stderr)
        return 1
    stopping = threading.Event()

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    issuer = "self-signed" if ca_cert is None else "issued by the CA"
    print(
        f"virtual key {args.serial} plugged into {args.host}:{args.port} (certificate {issuer})", flush=True
    )
    try:
        serve(sock, card)
    except KeyboardInterrupt:
        stopping.set()
    finally:
        sock.close()
    if stopping.is_set():
        return 0
    print("floatkey virtual-key: vpcd closed the connection (reader gone)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
