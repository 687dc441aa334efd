"""A key-bound license's usage reports: signed by the key's slot 9A through real pcscd and a
virtual key, verified by the vendor against the CA that certified the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from floatkey.hardware.ca import make_ca
from floatkey.licensing.vendor import EXIT_INVALID_REPORT
from tests.support.server import ServerProcess, wait_until
from tests.web.test_usage_reports import floatkey

KEY_A = 30056011
PORT_A = 35963


def key_state(server: ServerProcess, serial: int) -> str | None:
    for key in server.get("/api/v4/hardware_key").json()["keys"]:
        if key["serial"] == str(serial):
            return str(key["state"])
    return None


def test_a_key_bound_report_is_signed_by_the_key_and_refused_without_it(
    tmp_path: Path, key_servers: Any, virtual_keys: Any, make_test_card: Any
) -> None:
    server = key_servers()
    virtual_keys.plug(make_test_card(KEY_A), PORT_A)
    wait_until(lambda: key_state(server, KEY_A) == "valid", 15, what="the key valid")
    lid = server.add_license(product="kb", isHWKeyReq=True, floating_users=2)["id"]
    assert server.post("/api/v4/register", {"product": "kb", "user": "alice"}).status_code == 200

    first = server.get("/api/v4/license/report", params={"license_id": lid})
    assert first.status_code == 200, first.text
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "1.txt").write_text(first.json()["report"], encoding="ascii")
    ca = tmp_path / "vendor-ca.pem"  # the test CA (key_config), as the vendor holds it
    checked = floatkey("vendor", "verify-report", str(reports / "1.txt"), "--ca", str(ca))
    assert checked.returncode == 0, checked.stderr
    assert f"signed by hardware key {KEY_A}" in checked.stdout
    assert "peak seats 1" in checked.stdout

    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_bytes(make_ca("another vendor")[1].public_bytes(serialization.Encoding.PEM))
    foreign = floatkey("vendor", "verify-report", str(reports / "1.txt"), "--ca", str(other_ca))
    assert foreign.returncode == EXIT_INVALID_REPORT and "your CA did not certify" in foreign.stderr

    virtual_keys.pull(PORT_A)
    wait_until(lambda: key_state(server, KEY_A) != "valid", 15, what="the key gone")
    refused = server.get("/api/v4/license/report", params={"license_id": lid})
    assert (refused.status_code, refused.json()["code"]) == (400, "hardware_key_not_accessible")
    assert refused.json()["message"].endswith("making a usage report")

    virtual_keys.plug(make_test_card(KEY_A), PORT_A)
    wait_until(lambda: key_state(server, KEY_A) == "valid", 15, what="the key back")
    second = server.get("/api/v4/license/report", params={"license_id": lid})
    assert second.status_code == 200, second.text
    # The refusal stored nothing: this is report 2, right after report 1.
    assert (second.json()["sequence"], second.json()["previous_hash"]) == (2, first.json()["hash"])
    (reports / "2.txt").write_text(second.json()["report"], encoding="ascii")
    chain = floatkey("vendor", "verify-report", str(reports), "--ca", str(ca))
    assert chain.returncode == 0, chain.stderr
    assert "every report follows the one before it" in chain.stdout
