"""floatkey doctor against the real PC/SC stack."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from floatkey.hardware import ca, doctor
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
