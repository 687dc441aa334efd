"""A virtual PIV hardware key that plugs into the ``vpcd`` virtual reader of pcscd.

FOR TRIALS AND TESTS ONLY. vpcd (Debian package ``vsmartcard-vpcd``) accepts a card from
anyone who can reach its TCP ports (35963 and 35964, on all interfaces), and this key keeps
its private key in memory, unprotected. On a production machine hide the virtual readers:
start pcscd with ``PCSCLITE_FILTER_IGNORE_READER_NAMES="Virtual PCD"`` and set
``hardwareKey.ignoreReaders: ["Virtual PCD"]``.

The key speaks the vpcd protocol: every message is a 2-byte big-endian length and a payload.
A one-byte payload from vpcd is a control code (0 power off, 1 power on, 2 reset, 4 send
the ATR); a longer one is a command APDU, answered with one response APDU by the card of
:mod:`floatkey.hardware.virtual_card`, which emulates a YubiKey 5's PIV and management
applications well enough for floatkey and for Yubico's ``yubico-piv-tool`` and ``ykman``
to read it and to provision it (generate a key, import a certificate, change the PIN).
What is provisioned lives in memory for the lifetime of the process only.

Connected to vpcd means plugged in: closing the socket (``VirtualKey.unplug()``, or the
process ending) pulls the key out.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import signal
import socket
import sys
import threading
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from floatkey.errors import ConfigError
from floatkey.hardware import ca
from floatkey.hardware.pin import read_pin_file
from floatkey.hardware.virtual_card import DEFAULT_PIN, VirtualCard

__all__ = ["VirtualCard", "VirtualKey", "connect", "make_card", "serve"]

WARNING = (
    "WARNING: floatkey virtual key - for trials and tests only. Anyone who can reach vpcd's "
    "port can plug in a card; hide 'Virtual PCD' readers in production."
)
YUBIKEY5_ATR = bytes.fromhex("3BFD1300008131FE158073C021C057597562694B657940")
DEFAULT_PORT = 35963


def make_card(
    serial: int,
    pin: str = DEFAULT_PIN,
    ca_key: ec.EllipticCurvePrivateKey | None = None,
    ca_cert: x509.Certificate | None = None,
    bad_signature: bool = False,
    require_pin: bool = True,
    blank: bool = False,
) -> VirtualCard:
    """A card with a fresh P-256 key, certified by the CA (or self-signed without one).

    ``blank``: a factory-fresh key instead, slot 9A empty, to provision with ``ykman``."""
    if blank:
        return VirtualCard(serial, pin=pin)
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
    pin.add_argument(
        "--blank",
        action="store_true",
        help="a factory-fresh key to provision with ykman: PIN 123456, PUK 12345678, default "
        "management key, slot 9A empty; what is provisioned lasts until the command stops",
    )
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
    parser = _parser()
    args = parser.parse_args(argv)
    if args.blank and (args.ca_dir or args.ca_cert or args.ca_key or args.bad_signature):
        parser.error("--blank makes a key without key or certificate: drop the CA and --bad-signature")
    print(WARNING, file=sys.stderr, flush=True)
    try:
        if args.blank:
            pin = DEFAULT_PIN
        else:
            pin = args.pin if args.pin is not None else read_pin_file(args.pin_file)
        ca_key, ca_cert = _load_ca(args)
        card = make_card(
            args.serial, pin, ca_key, ca_cert, bad_signature=args.bad_signature, blank=args.blank
        )
        sock = connect(args.host, args.port, args.wait)
    except (OSError, ValueError, TypeError, ConfigError) as exc:
        print(f"floatkey virtual-key: {exc}", file=sys.stderr)
        return 1
    stopping = threading.Event()

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    issuer = "self-signed" if ca_cert is None else "issued by the CA"
    if args.blank:
        issuer = "none: blank key, provision it with ykman"
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
