"""The console and a real hardware key: pcscd, vpcd and a virtual key pulled and plugged.

Run under ``flock /tmp/pcsc.lock`` with the other PC/SC tests (one vpcd at a time).
"""

from __future__ import annotations

import time

from tests.support.pcsc import READERS
from tests.support.server import wait_until

KEY = 10012001
PORT = 35963


def key_state(server, serial: int) -> str | None:
    for key in server.get("/api/v4/hardware_key").json()["keys"]:
        if key["serial"] == str(serial):
            return key["state"]
    return None


def alert_shown(page) -> str:
    return str(
        page.driver.execute_script(
            "const a = document.getElementById('alert'); return a.hidden ? '' : a.textContent"
        )
    )


def test_a_pulled_key_shows_within_two_seconds_and_recovers(
    browser, key_servers, virtual_keys, make_test_card
):
    server = key_servers()
    virtual_keys.plug(make_test_card(KEY), PORT)
    wait_until(lambda: key_state(server, KEY) == "valid", 15, what="the key to be valid")
    lic = server.add_license(product="cad", isHWKeyReq=True, floating_users=2)
    browser.open(server.url + "/#/key")
    browser.wait_text("#keys tbody", lambda t: str(KEY) in t and "valid" in t, what="the key's row")
    assert alert_shown(browser) == ""
    # The doctor's findings: the readers from pcscd, and the server among pcscd's clients.
    found = server.get("/api/v4/hardware_key/doctor").json()
    assert found["pcsc"] == "running"
    assert {r["name"]: r["card_present"] for r in found["readers"]} == {READERS[0]: True, READERS[1]: False}
    assert f"pid {server.proc.pid} (python" in " ".join(found["pcscd_clients"])
    browser.wait_text(
        "#doctor table", lambda t: READERS[0] in t and "present" in t, what="the doctor's readers"
    )
    browser.wait_text(
        "#doctor-clients", lambda t: f"pid {server.proc.pid} " in t, what="the server as a client"
    )
    browser.screenshot("hardware-key")

    virtual_keys.pull(PORT)
    pulled = time.monotonic()
    browser.wait(lambda _: "Hardware key missing" in alert_shown(browser), 2.0, "the alert within 2 seconds")
    assert f"cad ({lic['id']})" in alert_shown(browser)
    browser.wait_text(
        "#key-summary", lambda t: "No key present" in t, max(0.1, 2.0 - (time.monotonic() - pulled))
    )
    browser.screenshot("hardware-key-pulled")

    virtual_keys.plug(make_test_card(KEY), PORT)
    wait_until(lambda: key_state(server, KEY) == "valid", 15, what="the key to be back")
    browser.wait(lambda _: alert_shown(browser) == "", 2.0, "the alert to clear within 2 seconds of the key")
    browser.wait_text("#keys tbody", lambda t: str(KEY) in t and "valid" in t, 2.0, "the key's row again")
