"""The vendor's provisioning workflow of docs/hardware-keys.md, run with Yubico's own tools
(``ykman``, ``yubico-piv-tool``) against a factory-fresh virtual key through the real
pcscd + vpcd stack, then accepted by a real floatkey server with the new PIN.

Two keys are plugged in (the one to provision, and an already provisioned one in the other
reader), so every ``ykman`` command names its key with ``--device SERIAL``, as a vendor
provisioning keys in bulk does.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from floatkey.hardware.virtual_key import VirtualCard
from tests.support.pcsc import READERS, card_present, wait_for
from tests.support.server import ServerProcess, wait_until

SERIAL, OTHER_SERIAL = 13572468, 24681357
DEFAULT_MANAGEMENT_KEY = "010203040506070801020304050607080102030405060708"
NEW_PIN = "86420975"


def run(command: list[str], home: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a tool without a terminal (nothing can prompt), its settings in ``home``.

    ``ykman`` runs ``pkill -9 scdaemon`` (and ``pkill -HUP yubikey-agent``) when it cannot
    open a card; on a shared machine that would hit other people's processes, so a
    ``pkill`` that does nothing comes first on its PATH."""
    no_kill = home / "no-kill"
    no_kill.mkdir(exist_ok=True)
    fake = no_kill / "pkill"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{no_kill}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CACHE_HOME": str(home / "cache"),
    }
    result = subprocess.run(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        start_new_session=True,
    )
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result


def ykman(*args: str, home: Path, cwd: Path) -> str:
    ykman_binary = Path(sys.executable).parent / "ykman"
    return run([str(ykman_binary), *args], home, cwd).stdout


def floatkey(*args: str, home: Path, cwd: Path) -> str:
    return run([sys.executable, "-m", "floatkey", *args], home, cwd).stdout


def key_state(server: ServerProcess, serial: int) -> str | None:
    for key in server.get("/api/v4/hardware_key").json()["keys"]:
        if key["serial"] == str(serial):
            return key["state"]
    return None


@pytest.fixture
def fresh_key(virtual_keys, make_test_card) -> VirtualCard:
    """A factory-fresh key in the first reader, a provisioned one in the second."""
    card = VirtualCard(SERIAL)
    virtual_keys.plug(card, 35963)
    virtual_keys.plug(make_test_card(OTHER_SERIAL), 35964)
    return card


def test_vendor_provisions_a_fresh_key_with_ykman(fresh_key: VirtualCard, tmp_path: Path) -> None:
    if shutil.which("yubico-piv-tool") is None:
        pytest.fail("yubico-piv-tool is not installed (Debian: apt-get install yubico-piv-tool)")
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    device = ("--device", str(SERIAL))

    floatkey("ca", "init", "--dir", "vendor-ca", home=home, cwd=work)
    assert set(ykman("list", "--serials", home=home, cwd=work).split()) == {str(SERIAL), str(OTHER_SERIAL)}

    info = ykman(*device, "piv", "info", home=home, cwd=work)
    assert re.search(r"PIV version:\s+5\.4\.3", info), info
    assert "WARNING: Using default PIN!" in info
    assert re.search(r"Management key algorithm:\s+TDES", info), info

    ykman(
        *device,
        "piv",
        "keys",
        "generate",
        "--management-key",
        DEFAULT_MANAGEMENT_KEY,
        "--algorithm",
        "ECCP256",
        "--pin-policy",
        "ONCE",
        "9a",
        "pubkey.pem",
        home=home,
        cwd=work,
    )
    floatkey(
        "ca",
        "issue",
        "--dir",
        "vendor-ca",
        "--public-key",
        "pubkey.pem",
        "--serial",
        str(SERIAL),
        "--out",
        "cert.pem",
        home=home,
        cwd=work,
    )
    ykman(
        *device,
        "piv",
        "certificates",
        "import",
        "--management-key",
        DEFAULT_MANAGEMENT_KEY,
        "9a",
        "cert.pem",
        home=home,
        cwd=work,
    )
    ykman(
        *device, "piv", "access", "change-pin", "--pin", "123456", "--new-pin", NEW_PIN, home=home, cwd=work
    )

    # The key now holds what the vendor put there, and only that.
    cert = x509.load_pem_x509_certificate((work / "cert.pem").read_bytes())
    assert fresh_key.cert == cert
    assert fresh_key.pin == NEW_PIN
    info = ykman(*device, "piv", "info", home=home, cwd=work)
    assert "Using default PIN" not in info
    assert re.search(r"Slot 9A.*\n\s+Private key type:\s+ECCP256", info), info

    status = run(["yubico-piv-tool", "-r", READERS[0], "-a", "status"], home, work).stdout
    assert f"Serial Number:\t{SERIAL}" in status
    assert "Algorithm:\tECCP256" in status
    assert "Issuer DN:\tCN=floatkey vendor CA" in status
    assert "PIN tries left:\t3" in status

    # The server trusts the vendor CA and knows the new PIN: the key is valid, licenses bind to it.
    pin_file = tmp_path / "pin"
    pin_file.write_text(NEW_PIN + "\n")
    pin_file.chmod(0o600)
    config = tmp_path / "floatkey.yaml"
    config.write_text(
        f"hardwareKey:\n  caCertificate: {work / 'vendor-ca' / 'ca.pem'}\n  pinFile: {pin_file}\n"
        "  pcscTimeout: 5.0\n"
    )
    server = ServerProcess(tmp_path / "data", "--config", str(config)).start()
    try:
        wait_until(lambda: key_state(server, SERIAL) == "valid", 15, what=f"key {SERIAL} valid")
        wait_until(
            lambda: key_state(server, OTHER_SERIAL) == "invalid", 15, what="the other CA's key invalid"
        )
        server.add_license(product="cad", isHWKeyReq=True, floating_users=1)
        answer = server.post("/api/v4/register", {"product": "cad", "user": "alice"})
        assert answer.status_code == 200, answer.text
    finally:
        server.stop()
    assert fresh_key.tries_left == 3


def test_blank_command_line_key_is_factory_fresh(pcscd, tmp_path: Path) -> None:
    """``floatkey virtual-key --blank``: default PIN and management key, slot 9A empty."""
    process = subprocess.Popen(
        [sys.executable, "-m", "floatkey", "virtual-key", "--serial", "97531", "--blank", "--port", "35964"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        plugged = process.stdout.readline()  # one line once plugged in; "" if it gave up
        assert "plugged into 127.0.0.1:35964" in plugged, process.stderr.read() if process.stderr else ""
        wait_for(lambda: card_present(READERS[1]), 10, "the blank key in the second reader")
        home = tmp_path / "home"
        home.mkdir()
        info = ykman("--device", "97531", "piv", "info", home=home, cwd=tmp_path)
        assert "WARNING: Using default PIN!" in info
        assert "WARNING: Using default Management key!" in info
        assert "Slot 9A" not in info
    finally:
        process.terminate()
        process.communicate(timeout=10)
    wait_for(lambda: not card_present(READERS[1]), 10, "the blank key to be pulled out")
