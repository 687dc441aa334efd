"""A real PC/SC stack for tests: pcscd with vpcd's virtual readers, and virtual keys.

``pcscd`` (session) starts ``pcscd --foreground`` as a child process and stops it by PID.
It refuses to share: if a pcscd it did not start already serves the socket, the session
fails with a message saying so (stop that pcscd, or run the tests in a container).
``virtual_keys`` plugs :class:`floatkey.hardware.virtual_key.VirtualKey` instances into vpcd's two
readers and unplugs them after the test. Everything waits for a state, with a deadline.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from smartcard import scard

from floatkey.hardware.virtual_key import VirtualCard, VirtualKey, make_card
from tests.support.server import ServerProcess

PCSCD_SOCKET = Path(os.environ.get("PCSCLITE_CSOCK_NAME", "/run/pcscd/pcscd.comm"))
#: What pcscd appends to every reader name here (``PCSCLITE_FILTER_EXTEND_READER_NAMES``).
#: ``ykman`` lists only readers named like a YubiKey's ("Yubico YubiKey" and its USB
#: interfaces), so the test readers carry it for Yubico's tools to find the virtual key;
#: "Virtual PCD" stays in the name, so ``ignoreReaders: ["Virtual PCD"]`` still hides them.
READER_NAME_EXTENSION = " Yubico YubiKey CCID"
PORTS = {
    35963: f"Virtual PCD{READER_NAME_EXTENSION} 00 00",
    35964: f"Virtual PCD{READER_NAME_EXTENSION} 00 01",
}
READERS = list(PORTS.values())
TEST_PIN = "246813"


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def socket_alive(path: Path) -> bool:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except OSError:
        return False
    finally:
        sock.close()
    return True


def list_readers() -> list[str]:
    """Reader names pcscd reports now ([] when none or when pcscd is not answering)."""
    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        return []
    try:
        hresult, readers = scard.SCardListReaders(context, [])
        return list(readers) if hresult == scard.SCARD_S_SUCCESS else []
    finally:
        scard.SCardReleaseContext(context)


def card_present(reader: str) -> bool:
    """Whether pcscd sees a card in ``reader`` right now."""
    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        return False
    try:
        hresult, states = scard.SCardGetStatusChange(context, 0, [(reader, scard.SCARD_STATE_UNAWARE)])
        if hresult != scard.SCARD_S_SUCCESS:
            return False
        return bool(states[0][1] & scard.SCARD_STATE_PRESENT)
    finally:
        scard.SCardReleaseContext(context)


@pytest.fixture(scope="session")
def pcscd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[subprocess.Popen[bytes]]:
    """pcscd in the foreground, with vpcd's readers listed, stopped by PID at the end."""
    binary = shutil.which("pcscd") or "/usr/sbin/pcscd"
    if not Path(binary).exists():
        pytest.fail("pcscd is not installed (Debian: apt-get install pcscd vsmartcard-vpcd)")
    if socket_alive(PCSCD_SOCKET):
        pytest.fail(
            f"a pcscd not started by these tests already serves {PCSCD_SOCKET}; stop it "
            "(e.g. systemctl stop pcscd.socket pcscd) so the tests own the PC/SC stack"
        )
    wait_for(vpcd_ports_free, 90, "vpcd's TCP ports to be free (TIME_WAIT lasts 60 s)", every=0.5)
    log = (tmp_path_factory.mktemp("pcscd") / "pcscd.log").open("wb")
    env = {k: v for k, v in os.environ.items() if k != "PCSCLITE_FILTER_IGNORE_READER_NAMES"}
    env["PCSCLITE_FILTER_EXTEND_READER_NAMES"] = READER_NAME_EXTENSION
    process = subprocess.Popen([binary, "--foreground"], stdout=log, stderr=log, env=env)
    try:
        wait_for(
            lambda: process.poll() is not None or READERS[0] in list_readers(),
            15,
            "pcscd to list the vpcd readers",
        )
        if process.poll() is not None:
            pytest.fail(f"pcscd exited with status {process.returncode}; see {log.name}")
        wait_for(vpcd_listening, 10, "vpcd to listen on its TCP ports")
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def vpcd_ports_free() -> bool:
    """Whether vpcd could bind its ports now.

    vpcd binds without SO_REUSEADDR, so a loopback connection that happened to use one of
    them as its ephemeral port blocks it for a minute after closing (TIME_WAIT); pcscd
    then starts without the virtual readers. run-tests reserves the two ports, and this
    check waits them out where it could not.
    """
    for port in PORTS:
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
        finally:
            probe.close()
    return True


def vpcd_listening() -> bool:
    for port in PORTS:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return False
    return True


class KeyRack:
    """Plugs virtual keys into vpcd's readers and waits until pcscd sees them."""

    def __init__(self) -> None:
        self.keys: dict[int, VirtualKey] = {}

    def plug(self, card: VirtualCard, port: int = 35963, timeout: float = 10) -> VirtualKey:
        key = self.keys.get(port)
        if key is not None and key.plugged:
            raise RuntimeError(f"port {port} already has a virtual key")
        key = VirtualKey(card)
        key.plug(port=port)
        self.keys[port] = key
        wait_for(lambda: card_present(PORTS[port]), timeout, f"a card in {PORTS[port]}")
        return key

    def pull(self, port: int = 35963, timeout: float = 10) -> None:
        key = self.keys.pop(port, None)
        if key is not None:
            key.unplug()
        wait_for(lambda: not card_present(PORTS[port]), timeout, f"{PORTS[port]} to be empty")

    def pull_all(self) -> None:
        for port in list(self.keys):
            self.pull(port)


@pytest.fixture
def virtual_keys(pcscd: subprocess.Popen[bytes]) -> Iterator[KeyRack]:
    """A :class:`KeyRack`; every key still plugged at the end of the test is pulled."""
    rack = KeyRack()
    yield rack
    rack.pull_all()


@pytest.fixture(scope="session")
def test_ca() -> tuple[Any, Any]:
    """A vendor CA (key, certificate) made once per session, in memory."""
    from floatkey.hardware.ca import make_ca

    return make_ca("floatkey test CA")


@pytest.fixture
def make_test_card(test_ca: tuple[Any, Any]) -> Callable[..., VirtualCard]:
    """``make_test_card(serial, **options)``: a card certified by the test CA."""
    ca_key, ca_cert = test_ca

    def make(serial: int, **options: Any) -> VirtualCard:
        options.setdefault("pin", TEST_PIN)
        options.setdefault("ca_key", ca_key)
        options.setdefault("ca_cert", ca_cert)
        return make_card(serial, **options)

    return make


_HOLDER = """
import sys
from smartcard import scard
mode, reader = sys.argv[1], sys.argv[2]
_, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
share = scard.SCARD_SHARE_EXCLUSIVE if mode == "exclusive" else scard.SCARD_SHARE_SHARED
hresult, card, _ = scard.SCardConnect(
    context, reader, share, scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1)
if hresult == 0 and mode == "transaction":
    hresult = scard.SCardBeginTransaction(card)
print("held" if hresult == 0 else f"failed {hresult & 0xFFFFFFFF:#x}", flush=True)
sys.stdin.read()
if mode == "transaction":
    scard.SCardEndTransaction(card, scard.SCARD_LEAVE_CARD)
scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)
"""


class CardHolder:
    """Another process holding a card: ``exclusive`` connection or ``transaction``."""

    def __init__(self, mode: str, reader: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, mode, reader],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if line != "held":
            self.release()
            pytest.fail(f"helper could not hold {reader} ({mode}): {line!r}")

    @property
    def pid(self) -> int:
        return self.process.pid

    def release(self) -> None:
        """Let go of the card and wait for the helper to exit."""
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@pytest.fixture
def card_holders() -> Iterator[Callable[[str, str], CardHolder]]:
    """``card_holders(mode, reader)`` starts a holder; all are released after the test."""
    holders: list[CardHolder] = []

    def start(mode: str, reader: str = READERS[0]) -> CardHolder:
        holder = CardHolder(mode, reader)
        holders.append(holder)
        return holder

    yield start
    for holder in holders:
        holder.release()


@pytest.fixture
def key_config(tmp_path: Path, test_ca: tuple[Any, Any]) -> Path:
    """A server configuration that trusts the test CA and knows the test PIN.

    pcscTimeout is generous: on a loaded machine a key that opens slowly after a re-plug
    must not pass for a busy reader. Tests of busy readers do not depend on it."""
    ca = tmp_path / "vendor-ca.pem"
    ca.write_bytes(test_ca[1].public_bytes(serialization.Encoding.PEM))
    pin = tmp_path / "pin"
    pin.write_text(TEST_PIN + "\n")
    pin.chmod(0o600)
    config = tmp_path / "floatkey.yaml"
    config.write_text(
        f"hardwareKey:\n  caCertificate: {ca}\n  pinFile: {pin}\n  pcscTimeout: 5.0\n  verifyInterval: 30\n"
    )
    return config


@pytest.fixture
def key_servers(
    tmp_path: Path, key_config: Path, pcscd: subprocess.Popen[bytes]
) -> Iterator[Callable[..., ServerProcess]]:
    """``key_servers(*serve_args)`` starts a real server that watches the test readers."""
    servers: list[ServerProcess] = []

    def start(*args: str) -> ServerProcess:
        server = ServerProcess(tmp_path / "data", "--config", str(key_config), *args).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
