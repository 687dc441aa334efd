"""floatkey doctor against the real PC/SC stack."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from floatkey.hardware import ca, doctor
from floatkey.hardware.refused_pins import FILE_NAME, RefusedPins
from tests.support.pcsc import READERS, TEST_PIN

SS_SAMPLE = """\
Netid State Recv-Q Send-Q Local Address:Port Peer Address:Port Process
u_str ESTAB 0 0 /run/pcscd/pcscd.comm 41234 * 41233 users:(("pcscd",pid=77,fd=9))
u_str ESTAB 0 0 * 41233 * 41234 users:(("python",pid=88,fd=3))
u_str ESTAB 0 0 /run/other.sock 5000 * 5001 users:(("other",pid=9,fd=4))
"""


def run(args: list[str]) -> tuple[int, str]:
    lines: list[str] = []
    code = doctor.main(args, out=lines.append)
    return code, "\n".join(lines)


def test_parse_ss_keeps_only_pcscd_server_side_peers() -> None:
    assert doctor.parse_ss_peers(SS_SAMPLE) == [41233]


def test_socket_owners_finds_this_process(tmp_path: Path) -> None:
    left, right = socket.socketpair()
    try:
        inode = os.fstat(left.fileno()).st_ino
        assert os.getpid() in doctor.socket_owners({inode})
    finally:
        left.close()
        right.close()


def _files(tmp_path: Path, ca_cert) -> list[str]:
    ca_path = tmp_path / "ca.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pin = tmp_path / "pin"
    pin.write_text(TEST_PIN)
    return ["--ca", str(ca_path), "--pin-file", str(pin)]


def test_valid_key_reported(virtual_keys, make_test_card, test_ca, tmp_path) -> None:
    virtual_keys.plug(make_test_card(4001))
    code, text = run(_files(tmp_path, test_ca[1]))
    assert "PC/SC service: running" in text
    assert f"Reader: {READERS[0]}" in text
    assert "ATR 3B FD 13 00" in text
    assert "serial 4001, VALID" in text
    assert TEST_PIN not in text
    assert code == 0


def test_invalid_key_says_why(virtual_keys, make_test_card, test_ca, tmp_path) -> None:
    other_key, other_cert = ca.make_ca("elsewhere")
    virtual_keys.plug(make_test_card(4002, ca_key=other_key, ca_cert=other_cert))
    code, text = run(_files(tmp_path, test_ca[1]))
    assert "serial 4002, NOT VALID: certificate not signed by the configured CA" in text
    assert code == 1


def test_holder_process_is_listed(virtual_keys, make_test_card, card_holders, test_ca, tmp_path) -> None:
    virtual_keys.plug(make_test_card(4003))
    holder = card_holders("exclusive", READERS[0])
    code, text = run([*_files(tmp_path, test_ca[1]), "--timeout", "1"])
    assert "another process holds the card exclusively" in text
    assert f"pid {holder.pid} " in text
    assert code == 1


def test_no_card(pcscd) -> None:
    code, text = run([])
    assert "card: none" in text
    assert code == 1


def test_doctor_follows_the_servers_pin_rules(virtual_keys, make_test_card, test_ca, tmp_path) -> None:
    """With --config: no PIN to unlisted serials, nor to a key that refused it before."""
    ca_path = tmp_path / "ca.pem"
    ca_path.write_bytes(test_ca[1].public_bytes(serialization.Encoding.PEM))
    pin = tmp_path / "pin"
    pin.write_text("000000")
    data = tmp_path / "data"
    data.mkdir()
    RefusedPins(data / FILE_NAME).remember("4004", "000000")
    config = tmp_path / "floatkey.yaml"
    config.write_text(
        f"dataDir: {data}\nhardwareKey:\n  caCertificate: {ca_path}\n  pinFile: {pin}\n"
        "  pinSerials: ['4004', '4005']\n"
    )
    refused = make_test_card(4004)
    virtual_keys.plug(refused)
    for _ in range(3):
        code, text = run(["--config", str(config)])
        assert "serial 4004, NOT VALID: the configured PIN was refused by this key (3 tries left)" in text
    assert refused.tries_left == 3 and code == 1
    virtual_keys.pull()
    unlisted = make_test_card(4006)
    virtual_keys.plug(unlisted)
    code, text = run(["--config", str(config)])
    assert "serial 4006, NOT VALID: serial not in hardwareKey.pinSerials" in text
    assert unlisted.tries_left == 3


def test_an_unreadable_pin_file_is_a_clear_error_not_a_traceback(tmp_path):
    lines: list[str] = []
    assert doctor.main(["--pin-file", str(tmp_path / "missing")], out=lines.append) == 2
    assert "cannot read" in lines[-1] and "missing" in lines[-1]


def test_the_pin_file_means_the_same_to_the_server_and_the_doctor(tmp_path):
    from floatkey.app.config import HardwareKeySettings
    from floatkey.hardware.pin import read_pin

    path = tmp_path / "pin"
    path.write_text("123456 \r\n")
    assert read_pin(HardwareKeySettings(pin_file=path)) == "123456"
    assert read_pin(HardwareKeySettings(), path) == "123456"
