"""The audit records of hardware keys, on a real server with virtual keys through pcscd.

Run under ``flock /tmp/pcsc.lock``: only one vpcd can use its ports at a time.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from floatkey.app.system import EXIT_NO_HARDWARE_KEY
from floatkey.hardware.ca import make_ca
from tests.support.server import ServerProcess, wait_until
from tests.web.test_audit import audit_export, kinds_of
from tests.web.test_hardware_keys import KEY_A, KEY_B, PORT_A, PORT_B, register, wait_key


def records_of(server: ServerProcess, kind: str) -> list[dict[str, Any]]:
    return [r for r in server.get("/api/v4/audit").json()["records"] if r["kind"] == kind]


def test_connected_lost_and_invalid_keys_are_recorded(key_servers, virtual_keys, make_test_card):
    server = key_servers()
    virtual_keys.plug(make_test_card(KEY_A), PORT_A)
    other_key, other_cert = make_ca("someone else's CA")
    virtual_keys.plug(make_test_card(KEY_B, ca_key=other_key, ca_cert=other_cert), PORT_B)
    wait_key(server, KEY_A, "valid")
    wait_key(server, KEY_B, "invalid")
    virtual_keys.pull(PORT_A)
    wait_until(lambda: records_of(server, "hardware_key_lost"), 15, what="the lost key recorded")
    [connected] = records_of(server, "hardware_key_connected")
    [lost] = records_of(server, "hardware_key_lost")
    invalid = records_of(server, "hardware_key_invalid")
    assert connected["details"]["serial"] == lost["details"]["serial"] == str(KEY_A)
    assert {r["details"]["serial"] for r in invalid} == {str(KEY_B)}
    assert all(r["details"]["reason"] for r in invalid)
    for record in [connected, lost, *invalid]:
        assert (record["actor"], record["route"], record["outcome"]) == ("floatkey", "system", "ok")


def test_the_crash_on_a_missing_key_is_recorded_before_the_exit(
    key_servers, virtual_keys, make_test_card, tmp_path
):
    server = key_servers("--crash-if-no-hardware-key")
    virtual_keys.plug(make_test_card(KEY_A), PORT_A)
    wait_key(server, KEY_A, "valid")
    server.add_license(product="cad", isHWKeyReq=True, floating_users=3)
    virtual_keys.pull(PORT_A)
    with pytest.raises(requests.ConnectionError):
        register(server, "cad", "bob")
    assert server.wait_exit() == EXIT_NO_HARDWARE_KEY
    records = audit_export(tmp_path / "data")
    [crash] = [r for r in records if r["kind"] == "crash_no_hardware_key"]
    assert "license_added" in kinds_of(records)
    assert crash["outcome"] == "hardware_key_not_accessible"
    assert crash["details"] == {"action": "registering user"}
    assert crash["actor"].startswith("open-mode 127.0.0.1") and crash["route"] == "POST /api/v4/register"
