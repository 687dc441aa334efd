"""The console of a server in vendor mode: an activation request downloaded, a license file imported."""

from __future__ import annotations

import json

import pytest
from selenium.webdriver.common.by import By

from floatkey.licensing import vendor
from floatkey.licensing.signer import PUBLIC_KEY_FILE
from tests.support.server import ServerProcess, wait_until


@pytest.fixture(scope="module")
def vendor_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("vendor") / "acme"
    vendor.init(directory)
    return directory


@pytest.fixture(scope="module")
def srv(tmp_path_factory, vendor_dir):
    tmp = tmp_path_factory.mktemp("console-vendor")
    config = tmp / "vendor-mode.yaml"
    config.write_text(
        f"hardwareKey:\n  enabled: false\nvendor:\n  publicKeys: [{vendor_dir / PUBLIC_KEY_FILE}]\n"
    )
    proc = ServerProcess(tmp / "data", "--config", str(config)).start()
    yield proc
    proc.stop()


def test_request_activation_then_import_the_vendors_file(browser, srv, vendor_dir, tmp_path):
    browser.open(srv.url + "/#/licenses")
    browser.find("#import-license")
    assert browser.driver.find_elements(By.CSS_SELECTOR, "#add-license") == []  # no policy form
    browser.find("#req-product").send_keys("cad")
    browser.click("#activation-request button[type=submit]")
    downloaded = browser.downloads / "activation-request-cad.json"
    wait_until(
        lambda: downloaded.exists() and downloaded.stat().st_size > 0, 10, what="the request's download"
    )
    request = downloaded.read_bytes()
    assert json.loads(request)["content"]["product"] == "cad"
    text, _ = vendor.issue(vendor_dir, request, {"floating_users": 4})
    license_file = tmp_path / "cad.license"
    license_file.write_text(text)

    browser.find("#lic-file").send_keys(str(license_file))
    browser.click("#import-license button[type=submit]")
    status = browser.wait_text("#license-status", lambda t: "installed" in t or "cad" in t, what="the import")
    assert status.startswith("License cad #") and "sequence 1" in status, status
    [lic] = srv.get("/api/v4/license?product=cad").json()
    assert lic["floating_users"] == 4
    browser.wait(lambda d: d.find_elements(By.CSS_SELECTOR, f'details[data-license="{lic["id"]}"]'), 3)
    browser.screenshot("licenses-vendor")
