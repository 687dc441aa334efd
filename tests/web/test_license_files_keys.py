"""Key-bound license files on a real server, through pcscd and virtual keys.

The request is signed by the key's slot 9A, the vendor's command checks it against the
CA that certified the key, and the file's set of keys is honoured by every action.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives import serialization

from floatkey.hardware.ca import CA_CERT_FILE, CA_KEY_FILE
from floatkey.licensing import envelope, signer, vendor
from tests.support.server import ServerProcess, wait_until

KEY_A, KEY_B, KEY_C = 30056003, 40078004, 50090005
PORT_A = 35963
POLICY = {"floating_users": 3}


def vendor_with_ca(directory: Path, test_ca: tuple[Any, Any]) -> Path:
    """The vendor's folder around the CA that certified the test keys."""
    ca_key, ca_cert = test_ca
    directory.mkdir(mode=0o700)
    pem = ca_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(directory / CA_KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    (directory / CA_CERT_FILE).write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    vendor.init(directory)  # keeps this CA, adds the license-signing key
    return directory


def key_state(server: ServerProcess, serial: int) -> str | None:
    for key in server.get("/api/v4/hardware_key").json()["keys"]:
        if key["serial"] == str(serial):
            return str(key["state"])
    return None


def upload(server: ServerProcess, text: str) -> requests.Response:
    return server.session.post(
        server.url + "/api/v4/license/upload",
        data=text.encode(),
        headers={"Content-Type": "application/octet-stream"},
        timeout=30,
    )


def register(server: ServerProcess, user: str = "alice") -> requests.Response:
    return server.post("/api/v4/register", {"product": "kb", "user": user})


def test_key_bound_round_trip_with_a_standby_key(
    tmp_path: Path, test_ca: Any, key_config: Path, key_servers: Any, virtual_keys: Any, make_test_card: Any
) -> None:
    acme = vendor_with_ca(tmp_path / "acme", test_ca)
    with key_config.open("a") as config:
        config.write(f"vendor:\n  publicKeys: [{acme / signer.PUBLIC_KEY_FILE}]\n")
    server = key_servers()
    virtual_keys.plug(make_test_card(KEY_A), PORT_A)
    wait_until(lambda: key_state(server, KEY_A) == "valid", 15, what="key A valid")

    made = server.post("/api/v4/license/generate", {"product": "kb"})
    assert made.status_code == 200, made.text
    req = made.json()
    assert [k["serial"] for k in req["content"]["keys"]] == [str(KEY_A)]
    assert [s["serial"] for s in req["signatures"]] == [str(KEY_A)]

    # The vendor binds the file to the key the request proves and to a standby key.
    text, asked = vendor.issue(acme, json.dumps(req).encode(), POLICY, extra_keys=(str(KEY_B),))
    assert asked.key_serials == (str(KEY_A),)
    installed = upload(server, text)
    assert installed.status_code == 201, installed.text
    assert installed.json()["is_hardware_key_auth"] is True
    assert register(server).status_code == 200

    virtual_keys.pull(PORT_A)
    gone = register(server)
    assert gone.status_code == 400
    assert gone.json()["message"] == "No available valid hardware key to perform the action: registering user"

    virtual_keys.plug(make_test_card(KEY_B), PORT_A)  # the standby key satisfies the license
    wait_until(lambda: register(server).status_code == 200, 15, what="the standby key to be accepted")

    # A file bound only to a key that is not here is refused, and nothing changes.
    other = server.post("/api/v4/license/generate", {"product": "kb2"}).json()
    nonce = other["content"]["nonce"]
    key = signer.load_private_key(acme / signer.SIGNING_KEY_FILE)
    claims = envelope.open_file(text, signer.trusted_keys([acme / signer.PUBLIC_KEY_FILE]))
    foreign = replace(claims, license_uid="L-other", product="kb2", key_serials=(str(KEY_C),), nonce=nonce)
    before = server.get("/api/v4/license").json(), server.get("/api/v4/registrations").json()
    refused = upload(server, envelope.seal(foreign, key))
    assert (refused.status_code, refused.json()["code"]) == (400, "license_file_wrong_hardware")
    assert (server.get("/api/v4/license").json(), server.get("/api/v4/registrations").json()) == before


def test_a_request_signed_by_a_key_of_another_ca_binds_nothing(
    tmp_path: Path, test_ca: Any, key_config: Path, key_servers: Any, virtual_keys: Any, make_test_card: Any
) -> None:
    from floatkey.hardware.ca import make_ca

    acme = vendor_with_ca(tmp_path / "acme", make_ca("another vendor"))
    server = key_servers()
    virtual_keys.plug(make_test_card(KEY_A), PORT_A)
    wait_until(lambda: key_state(server, KEY_A) == "valid", 15, what="key A valid")
    req = server.post("/api/v4/license/generate", {"product": "kb"}).json()
    try:
        vendor.issue(acme, json.dumps(req).encode(), POLICY)
    except Exception as exc:
        assert getattr(exc, "code", None) == "validation_error" and "proves none" in str(exc)
    else:
        raise AssertionError("a key certified by another CA was accepted")
