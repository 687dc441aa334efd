"""Key-bound licenses on a real server process, through pcscd and virtual keys."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from floatkey.app.system import EXIT_NO_HARDWARE_KEY
from tests.support.pcsc import READERS
from tests.support.server import ServerProcess, error_of, wait_until

KEY_A, KEY_B = 10012001, 20034002
PORT_A, PORT_B = 35963, 35964


def key_state(server: ServerProcess, serial: int) -> str | None:
    for key in server.get("/api/v4/hardware_key").json()["keys"]:
        if key["serial"] == str(serial):
            return key["state"]
    return None


def wait_key(server: ServerProcess, serial: int, state: str | None, timeout: float = 15) -> None:
    wait_until(lambda: key_state(server, serial) == state, timeout, what=f"key {serial} {state}")


def register(server: ServerProcess, product: str, user: str = "alice", **extra: Any) -> requests.Response:
    return server.post("/api/v4/register", {"product": product, "user": user, **extra})


def refused_for(answer: requests.Response, action: str) -> bool:
    return answer.status_code == 400 and error_of(answer) == {
        "status": 400,
        "code": "hardware_key_not_accessible",
        "message": f"No available valid hardware key to perform the action: {action}",
    }


def test_plug_pull_replug_with_a_running_server(key_servers, virtual_keys, make_test_card):
    server = key_servers()
    machine_id = server.get("/api/v4/health").json()["hardware_id"]
    assert refused_for(
        server.post("/api/v4/licenses", {"product": "cad", "isHWKeyReq": True}), "adding license"
    )
    virtual_keys.plug(make_test_card(KEY_A), PORT_A)
    wait_key(server, KEY_A, "valid")
    # A key is listed as soon as it is seen, but it is the identity only once a license uses it.
    assert server.get("/api/v4/health").json()["hardware_id"] == machine_id
    lic = server.add_license(product="cad", isHWKeyReq=True, floating_users=5)
    assert lic["is_hardware_key_auth"] is True
    server.add_license(product="plain", floating_users=5)
    wait_until(lambda: server.get("/api/v4/health").json()["hardware_id"] == str(KEY_A), 5)
    assert register(server, "cad").status_code == 200
    status = server.get("/api/v4/hardware_key").json()
    assert status["pcsc"] == "running" and status["hardware_id"] == str(KEY_A)
    [key] = status["keys"]
    assert key["reader"] == READERS[0] and key["since"].endswith("Z")

    virtual_keys.pull(PORT_A)
    # The very next action fails: the check is fresher than the action.
    assert refused_for(register(server, "cad"), "registering user")
    assert register(server, "plain").status_code == 200
    wait_until(lambda: server.get("/api/v4/health").json()["hardware_id"] == machine_id, 5)
    assert "hardware key" in server.log and str(KEY_A) in server.log

    virtual_keys.plug(make_test_card(KEY_A), PORT_A)
    wait_until(lambda: register(server, "cad").status_code == 200, 15, what="the key to be back")
    assert server.get("/api/v4/health").json()["hardware_id"] == str(KEY_A)


def test_every_action_names_itself_when_the_key_is_gone(key_servers, virtual_keys, make_test_card):
    server = key_servers()
    virtual_keys.plug(make_test_card(KEY_A), PORT_A)
    wait_key(server, KEY_A, "valid")
    server.add_license(
        product="cad",
        isHWKeyReq=True,
        max_consumptions=10,
        max_borrow_time=2,
        features=[
            {"code": "f", "is_floating": True},
            {"code": "c", "feature_type": "consumption", "max_consumption": 5},
        ],
    )
    assert register(server, "cad").status_code == 200
    virtual_keys.pull(PORT_A)
    base = {"product": "cad", "user": "alice"}
    for path, body, action in [
        ("register", base, "registering user"),
        ("unregister", base, "unregistering user"),
        ("borrow", base, "borrowing license"),
        ("add_consumption", {**base, "consumptions": 1}, "adding consumption"),
        (
            "add_feature_consumption",
            {**base, "feature": "c", "consumptions": 1},
            "adding feature consumption",
        ),
        ("featureRegister", {**base, "feature": "f"}, "registering feature"),
        ("check_license_feature", {**base, "feature": "f"}, "registering feature"),
        ("featureRelease", {**base, "feature": "f"}, "releasing feature"),
        ("feature_release", {**base, "feature": "f"}, "releasing feature"),
    ]:
        assert refused_for(server.post(f"/api/v4/{path}", body), action), path
    [lic] = server.get("/api/v4/license?product=cad").json()
    assert lic["total_consumptions"] == 0 and lic["floating_in_use_devices"] == 1


def test_another_key_does_not_satisfy_a_license_bound_to_the_first(key_servers, virtual_keys, make_test_card):
    server = key_servers()
    virtual_keys.plug(make_test_card(KEY_A), PORT_A)
    wait_key(server, KEY_A, "valid")
    server.add_license(product="cad", isHWKeyReq=True)
    virtual_keys.pull(PORT_A)
    virtual_keys.plug(make_test_card(KEY_B), PORT_A)
    wait_key(server, KEY_B, "valid")
    assert refused_for(register(server, "cad"), "registering user")


def test_keys_that_are_not_trusted_do_not_count(key_servers, virtual_keys, make_test_card):
    from floatkey.hardware.ca import make_ca

    server = key_servers()
    other_key, other_cert = make_ca("someone else's CA")
    virtual_keys.plug(make_test_card(KEY_A, ca_key=other_key, ca_cert=other_cert), PORT_A)
    virtual_keys.plug(make_test_card(KEY_B, bad_signature=True), PORT_B)
    wait_key(server, KEY_A, "invalid")
    wait_key(server, KEY_B, "invalid")
    assert refused_for(
        server.post("/api/v4/licenses", {"product": "cad", "isHWKeyReq": True}), "adding license"
    )
    reasons = {k["serial"]: k["reason"] for k in server.get("/api/v4/hardware_key").json()["keys"]}
    assert reasons[str(KEY_A)] and reasons[str(KEY_B)]


def test_two_keys_in_two_readers(key_servers, virtual_keys, make_test_card):
    server = key_servers()
    virtual_keys.plug(make_test_card(KEY_A), PORT_A)
    virtual_keys.plug(make_test_card(KEY_B), PORT_B)
    wait_key(server, KEY_A, "valid")
    wait_key(server, KEY_B, "valid")
    bad = server.post("/api/v4/licenses", {"product": "x", "isHWKeyReq": True, "hardware_key_serial": "12ab"})
    assert bad.json()["code"] == "validation_error"
    server.add_license(product="second", isHWKeyReq=True, hardware_key_serial=str(KEY_B), floating_users=2)
    server.add_license(product="first", isHWKeyReq=True, hardware_key_serial=str(KEY_A), floating_users=2)
    wait_until(lambda: server.get("/api/v4/health").json()["hardware_id"] == str(KEY_B), 5)
    assert register(server, "first").status_code == 200
    assert register(server, "second").status_code == 200
    virtual_keys.pull(PORT_B)
    assert refused_for(register(server, "second", "bob"), "registering user")
    first = register(server, "first", "bob")
    assert first.status_code == 200, (first.text, server.get("/api/v4/hardware_key").text)
    wait_until(lambda: server.get("/api/v4/health").json()["hardware_id"] == str(KEY_A), 5)


def test_restart_with_the_key_absent_then_plugged(key_servers, virtual_keys, make_test_card):
    server = key_servers()
    virtual_keys.plug(make_test_card(KEY_A), PORT_A)
    wait_key(server, KEY_A, "valid")
    server.add_license(product="cad", isHWKeyReq=True, floating_users=2)
    assert register(server, "cad").status_code == 200
    server.stop()
    virtual_keys.pull(PORT_A)
    server.start()
    assert refused_for(register(server, "cad", "bob"), "registering user")
    virtual_keys.plug(make_test_card(KEY_A), PORT_A)
    wait_until(lambda: register(server, "cad", "bob").status_code == 200, 15, what="key found again")
    users = {r["user"] for r in server.get("/api/v4/registrations").json()["registrations"]}
    assert users == {"alice", "bob"}


def test_crash_if_no_hardware_key_exits_and_a_restart_loses_nothing(
    key_servers, virtual_keys, make_test_card
):
    server = key_servers("--crash-if-no-hardware-key")
    virtual_keys.plug(make_test_card(KEY_A), PORT_A)
    wait_key(server, KEY_A, "valid")
    server.add_license(product="cad", isHWKeyReq=True, floating_users=3, max_consumptions=9)
    server.add_license(product="plain", floating_users=3)
    assert register(server, "cad").status_code == 200
    assert server.post("/api/v4/add_consumption", {"product": "cad", "consumptions": 4}).status_code == 200
    assert register(server, "plain").status_code == 200
    virtual_keys.pull(PORT_A)
    with pytest.raises(requests.ConnectionError):
        register(server, "cad", "bob")
    assert server.wait_exit() == EXIT_NO_HARDWARE_KEY
    assert "crashIfNoHardwareKey" in server.log

    virtual_keys.plug(make_test_card(KEY_A), PORT_A)
    server.start()
    wait_until(lambda: register(server, "cad", "carol").status_code == 200, 15, what="key found")
    [lic] = server.get("/api/v4/license?product=cad").json()
    assert lic["total_consumptions"] == 4
    users = {(r["product"], r["user"]) for r in server.get("/api/v4/registrations").json()["registrations"]}
    assert users == {("cad", "alice"), ("cad", "carol"), ("plain", "alice")}


@pytest.mark.parametrize("mode", ["exclusive", "transaction"])
def test_another_process_on_the_reader_is_reported_not_hung(
    key_servers, virtual_keys, make_test_card, card_holders, mode
):
    virtual_keys.plug(make_test_card(KEY_A), PORT_A)
    holder = card_holders(mode, READERS[0])
    server = key_servers()
    wait_until(
        lambda: any(k["state"] == "reader_busy" for k in server.get("/api/v4/hardware_key").json()["keys"]),
        15,
    )
    started = time.monotonic()
    answer = server.post("/api/v4/licenses", {"product": "cad", "isHWKeyReq": True})
    assert time.monotonic() - started < 5
    assert answer.status_code == 400 and answer.json()["code"] == "hardware_key_reader_busy"
    assert "floatkey doctor" in answer.json()["message"]
    holder.release()
    wait_key(server, KEY_A, "valid")
    assert server.add_license(product="cad", isHWKeyReq=True)["is_hardware_key_auth"] is True
