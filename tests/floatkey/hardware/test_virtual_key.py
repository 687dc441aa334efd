"""The virtual key through the real PC/SC stack, cross-checked with Yubico's own tool."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from floatkey.hardware import ca
from tests.support.pcsc import READERS, TEST_PIN, card_present, wait_for

TOOL = "yubico-piv-tool"


def piv_tool(*args: str, reader: str = READERS[0]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TOOL, "-r", reader, *args], capture_output=True, text=True, timeout=30, check=False
    )


def test_yubico_piv_tool_reads_serial_and_certificate(virtual_keys, make_test_card) -> None:
    card = make_test_card(31415926)
    virtual_keys.plug(card)
    status = piv_tool("-a", "status")
    assert status.returncode == 0, status.stderr
    assert "Serial Number:\t31415926" in status.stdout
    assert "Algorithm:\tECCP256" in status.stdout
    assert "PIN tries left:\t3" in status.stdout
    read = piv_tool("-a", "read-certificate", "-s", "9a")
    assert read.returncode == 0, read.stderr
    assert x509.load_pem_x509_certificate(read.stdout.encode()) == card.cert


def test_yubico_piv_tool_signature_verifies(virtual_keys, make_test_card, tmp_path) -> None:
    virtual_keys.plug(make_test_card(27182818))
    cert = tmp_path / "cert.pem"
    assert piv_tool("-a", "read-certificate", "-s", "9a", "-o", str(cert)).returncode == 0
    signed = piv_tool("-a", "verify-pin", "-P", TEST_PIN, "-a", "test-signature", "-s", "9a", "-i", str(cert))
    assert signed.returncode == 0, signed.stdout + signed.stderr
    assert "Successful ECDSA verification" in signed.stdout + signed.stderr


def test_bad_signature_key_fails_yubico_verification(virtual_keys, make_test_card, tmp_path) -> None:
    virtual_keys.plug(make_test_card(1618033, bad_signature=True), port=35964)
    cert = tmp_path / "cert.pem"
    read = piv_tool("-a", "read-certificate", "-s", "9a", "-o", str(cert), reader=READERS[1])
    assert read.returncode == 0
    signed = piv_tool(
        "-a",
        "verify-pin",
        "-P",
        TEST_PIN,
        "-a",
        "test-signature",
        "-s",
        "9a",
        "-i",
        str(cert),
        reader=READERS[1],
    )
    assert signed.returncode != 0


def test_wrong_pin_counts_down(virtual_keys, make_test_card) -> None:
    card = make_test_card(5551212)
    virtual_keys.plug(card)
    result = piv_tool("-a", "verify-pin", "-P", "999999")
    assert result.returncode != 0
    assert card.tries_left == 2
    assert "PIN tries left:\t2" in piv_tool("-a", "status").stdout


def test_command_line_key_plugs_in_and_pulls_out(pcscd, tmp_path: Path) -> None:
    ca.create_ca(tmp_path / "ca")
    pin_file = tmp_path / "pin"
    pin_file.write_text(TEST_PIN + "\n")
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from floatkey.hardware.virtual_key import main; sys.exit(main())",
            "--serial",
            "8675309",
            "--pin-file",
            str(pin_file),
            "--ca-dir",
            str(tmp_path / "ca"),
            "--port",
            "35964",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[3])},
    )
    try:
        wait_for(
            lambda: card_present(READERS[1]) or process.poll() is not None,
            15,
            "the virtual key process to plug in",
        )
        assert process.poll() is None, process.communicate()
        status = piv_tool("-a", "status", reader=READERS[1])
        assert "Serial Number:\t8675309" in status.stdout
        assert "Issuer DN:\tCN=floatkey vendor CA" in status.stdout
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    assert process.returncode == 0
    assert "for trials and tests only" in err
    assert "plugged into 127.0.0.1:35964" in out
    wait_for(lambda: not card_present(READERS[1]), 10, "the key to be pulled out")


def test_command_line_needs_a_pin(capsys: pytest.CaptureFixture[str]) -> None:
    from floatkey.hardware.virtual_key import main

    with pytest.raises(SystemExit):
        main(["--serial", "1"])
    assert "--pin" in capsys.readouterr().err
