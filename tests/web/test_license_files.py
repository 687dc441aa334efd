"""Vendor licenses through a real server: the license source, activation, upload, refusals."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from licensespring.floating_server import FloatingAPIClient

from floatkey.licensing import request, vendor
from floatkey.licensing.signer import PUBLIC_KEY_FILE
from tests.support.server import ServerProcess


@pytest.fixture(scope="module")
def vendor_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("vendor") / "acme"
    vendor.init(directory)
    return directory


def vendor_config(tmp_path: Path, vendor_dir: Path, extra: str = "") -> Path:
    path = tmp_path / "vendor-mode.yaml"
    path.write_text(
        f"hardwareKey:\n  enabled: false\nvendor:\n  publicKeys: [{vendor_dir / PUBLIC_KEY_FILE}]\n{extra}"
    )
    return path


def test_vendor_mode_refuses_licenses_from_a_policy_and_still_removes(
    tmp_path: Path, vendor_dir: Path
) -> None:
    data = tmp_path / "data"
    local = ServerProcess(data).start()
    try:
        old = local.add_license(product="cad", floating_users=2)
    finally:
        local.stop()
    srv = ServerProcess(data, "--config", str(vendor_config(tmp_path, vendor_dir))).start()
    try:
        before = srv.get("/api/v4/license").json()
        posted = srv.post("/api/v4/licenses", {"product": "cad", "floating_users": 99})
        assert posted.status_code == 403
        assert posted.json()["code"] == "license_source_vendor_only"
        assert "/api/v4/license/upload" in posted.json()["message"]
        queried = srv.get("/api/v4/addProduct", params={"product": "x", "floating_users": "9"})
        assert (queried.status_code, queried.json()["code"]) == (403, "license_source_vendor_only")
        cli = subprocess.run(
            [sys.executable, "-m", "floatkey", "licenses", "add", "--url", srv.url, "--product", "y"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert cli.returncode == 1 and "license_source_vendor_only" in cli.stderr
        assert srv.get("/api/v4/license").json() == before
        assert srv.delete(f"/api/v4/licenses/{old['id']}").status_code == 200
        assert srv.get("/api/v4/license").json() == []
    finally:
        srv.stop()


# --- activation bound to the hardware ID, through a real server -----------------------------


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, vendor_dir: Path) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("vendor-mode")
    proc = ServerProcess(tmp / "data", "--config", str(vendor_config(tmp, vendor_dir))).start()
    yield proc
    proc.stop()


def make_request(srv: ServerProcess, product: str) -> bytes:
    answer = srv.post("/api/v4/license/generate", {"product": product})
    assert answer.status_code == 200, answer.text
    return json.dumps(answer.json()).encode()


def upload(srv: ServerProcess, text: str) -> requests.Response:
    return srv.session.post(
        srv.url + "/api/v4/license/upload",
        data=text.encode(),
        headers={"Content-Type": "application/octet-stream"},
        timeout=30,
    )


def state(srv: ServerProcess) -> tuple[Any, Any]:
    return srv.get("/api/v4/license").json(), srv.get("/api/v4/registrations").json()


POLICY = {"floating_users": 2, "max_consumptions": 10, "license_type": "consumption"}


def test_round_trip_by_hardware_id_then_refresh_keeps_id_seats_and_counters(
    srv: ServerProcess, vendor_dir: Path
) -> None:
    req = make_request(srv, "rt")
    assert json.loads(req)["content"]["keys"] == []
    text, asked = vendor.issue(vendor_dir, req, POLICY)
    assert asked.hardware_id == srv.get("/api/v4/health").json()["hardware_id"]
    installed = upload(srv, text)
    assert installed.status_code == 201, installed.text
    lic = installed.json()
    assert (lic["floating_users"], lic["sequence"]) == (2, 1)
    assert srv.post("/api/v4/register", {"product": "rt", "user": "alice"}).status_code == 200
    assert srv.post("/api/v4/add_consumption", {"product": "rt", "consumptions": 4}).status_code == 200

    newer = vendor.refresh(vendor_dir, text.encode(), {**POLICY, "floating_users": 5})
    refreshed = upload(srv, newer)
    assert refreshed.status_code == 201, refreshed.text
    assert (refreshed.json()["id"], refreshed.json()["floating_users"]) == (lic["id"], 5)
    assert refreshed.json()["total_consumptions"] == 4
    seats = srv.get(f"/api/v4/registrations?license_id={lic['id']}").json()["registrations"]
    assert [s["user"] for s in seats] == ["alice"]

    before = state(srv)
    again = upload(srv, newer)  # the same sequence once more
    assert (again.status_code, again.json()["code"]) == (400, "license_file_outdated")
    assert state(srv) == before
    # The audit trail tells an import from a refresh, and records the refusal.
    trail = [r for r in srv.get("/api/v4/audit").json()["records"] if r["kind"].startswith("license_")]
    assert [(r["kind"], r["outcome"]) for r in trail[-3:]] == [
        ("license_imported", "ok"),
        ("license_refreshed", "ok"),
        ("license_imported", "license_file_outdated"),
    ]
    assert trail[-2]["details"]["license_id"] == lic["id"]


def test_a_multipart_upload_from_the_cli_route_shape(srv: ServerProcess, vendor_dir: Path) -> None:
    text, _ = vendor.issue(vendor_dir, make_request(srv, "mp"), POLICY)
    answer = srv.session.post(
        srv.url + "/api/v4/license/upload",
        files={"whatever": ("mp.license", text.encode(), "text/plain")},
        headers={"Content-Type": None},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["product_details"]["short_code"] == "mp"


def foreign_request(srv: ServerProcess, hardware_id: str) -> bytes:
    """A well-formed request this server never made (its nonce was never issued here)."""
    body = request.content("fr", hardware_id, [], secrets.token_hex(16), datetime.now(UTC))
    return request.assemble(body, {})


@pytest.mark.parametrize(
    "case",
    [
        "tampered",
        "other_vendor",
        "other_machine",
        "expired",
        "not_yet_valid",
        "never_issued",
        "answered",
        "junk",
    ],
)
def test_every_refusal_changes_nothing(
    srv: ServerProcess, vendor_dir: Path, tmp_path: Path, case: str
) -> None:
    here = srv.get("/api/v4/health").json()["hardware_id"]
    text, _ = vendor.issue(vendor_dir, make_request(srv, "ref"), POLICY)
    expected = {
        "tampered": "license_file_invalid",
        "junk": "license_file_invalid",
        "other_vendor": "license_file_unknown_signer",
        "other_machine": "license_file_wrong_hardware",
        "expired": "license_file_expired",
        "not_yet_valid": "license_file_not_yet_valid",
        "never_issued": "activation_request_used",
        "answered": "activation_request_used",
    }[case]
    if case == "tampered":
        text = text.replace('"floating_users": 2', '"floating_users": 200')
    elif case == "junk":
        text = "GIF89a not a license"
    elif case == "other_vendor":
        vendor.init(tmp_path / "other")
        text, _ = vendor.issue(tmp_path / "other", make_request(srv, "ref"), POLICY)
    elif case == "other_machine":
        text, _ = vendor.issue(vendor_dir, foreign_request(srv, "another-machine"), POLICY)
    elif case == "expired":
        text, _ = vendor.issue(
            vendor_dir, make_request(srv, "ref"), POLICY, valid_until=datetime.now(UTC) - timedelta(seconds=1)
        )
    elif case == "not_yet_valid":
        later = datetime.now(UTC) + timedelta(days=1)
        text, _ = vendor.issue(vendor_dir, make_request(srv, "ref"), POLICY, now=later)
    elif case == "never_issued":
        text, _ = vendor.issue(vendor_dir, foreign_request(srv, here), POLICY)
    elif case == "answered":
        req = make_request(srv, "ref")
        first, _ = vendor.issue(vendor_dir, req, POLICY)
        assert upload(srv, first).status_code == 201
        text, _ = vendor.issue(vendor_dir, req, POLICY)  # a second license for the same nonce
    before = state(srv)
    answer = upload(srv, text)
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == expected, answer.json()
    assert answer.json()["message"].endswith(".")
    assert state(srv) == before


def test_the_cli_makes_the_request_and_imports_the_file(
    srv: ServerProcess, vendor_dir: Path, tmp_path: Path
) -> None:
    def floatkey(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "floatkey", *args], capture_output=True, text=True, timeout=60
        )

    made = floatkey(
        "activation-request", "--url", srv.url, "--product", "cli", "--out", str(tmp_path / "req.json")
    )
    assert made.returncode == 0, made.stderr
    (tmp_path / "policy.json").write_text(json.dumps(POLICY))
    issued = floatkey(
        "vendor", "issue", "--dir", str(vendor_dir), "--request", str(tmp_path / "req.json"),
        "--policy", str(tmp_path / "policy.json"), "--out", str(tmp_path / "cli.license"),
    )  # fmt: skip
    assert issued.returncode == 0, issued.stderr
    assert "the server's installation key is" in issued.stdout  # it signs the usage reports
    imported = floatkey("licenses", "import", "--url", srv.url, str(tmp_path / "cli.license"))
    assert imported.returncode == 0, imported.stderr
    assert "installed as license" in imported.stdout
    assert srv.post("/api/v4/register", {"product": "cli", "user": "u"}).status_code == 200
    refused = floatkey("licenses", "import", "--url", srv.url, str(tmp_path / "cli.license"))
    assert refused.returncode == 1 and "license_file_outdated" in refused.stderr


def test_the_licensespring_sdk_registers_on_an_imported_license(srv: ServerProcess, vendor_dir: Path) -> None:
    text, _ = vendor.issue(vendor_dir, make_request(srv, "sdk"), POLICY)
    assert upload(srv, text).status_code == 201
    url = urlsplit(srv.url)
    client = FloatingAPIClient(api_protocol=url.scheme, api_domain=url.netloc)
    answer = client.register_user(product="sdk", user="alice", os_hostname="alice-pc")
    assert answer["floating_slots_in_use"] == 1
    assert json.loads(answer["license_json"])["floating_users"] == 2
