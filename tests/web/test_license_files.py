"""Vendor licenses through a real server: the license source, activation, upload, refusals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from floatkey.licensing import vendor
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
