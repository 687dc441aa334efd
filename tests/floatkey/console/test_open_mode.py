"""The console in a real headless Chromium against a real server in open mode (loopback: admin)."""

from __future__ import annotations

import pytest

from tests.support.server import ServerProcess


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    proc = ServerProcess(tmp_path_factory.mktemp("console-open") / "data").start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def page(browser, srv):
    browser.open(srv.url + "/")
    browser.find("#nav a[data-page=overview]")
    return browser


def test_the_console_loads_under_its_csp_without_a_violation(page, srv):
    page.wait_text("[data-fact=Version]", bool, what="the version")
    assert page.text("[data-fact='License source']") == "local"
    errors = [e for e in page.log() if e["level"] in ("SEVERE", "WARNING")]
    assert errors == []
