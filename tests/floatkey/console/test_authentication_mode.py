"""The console of a server in authentication mode: login, the first password, users, roles."""

from __future__ import annotations

import json

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from tests.support.server import ServerProcess

FIRST = "first-start-password"
NEW = "a-long-new-admin-password"
PW = "correct-horse-battery"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    root = tmp_path_factory.mktemp("console-auth")
    config = root / "floatkey.yaml"
    config.write_text(f"userAuthentication: true\nauth:\n  initialAdminPassword: {json.dumps(FIRST)}\n")
    proc = ServerProcess(root / "data", "--user-authentication", "--config", str(config)).start()
    yield proc
    proc.stop()


def log_in(browser, username: str, password: str) -> None:
    browser.find("#login input[name=username]").send_keys(username)
    browser.find("#login input[name=password]").send_keys(password)
    browser.click("#login button[type=submit]")


def log_out(browser) -> None:
    browser.click("#logout")
    browser.find("#login")


def token_in_storage(browser) -> str | None:
    return browser.driver.execute_script("return sessionStorage.getItem('floatkey.token')")


def nav_pages(browser) -> list[str]:
    return [a.get_attribute("data-page") for a in browser.driver.find_elements(By.CSS_SELECTOR, "#nav a")]


def test_first_login_changes_the_initial_password_then_the_admin_sees_everything(browser, srv):
    browser.open(srv.url + "/")
    browser.find("#login")
    assert nav_pages(browser) == []
    log_in(browser, "admin", "wrong-password-here")
    browser.wait_text("#login .status", lambda t: "Wrong username or password" in t, what="the refusal")
    browser.screenshot("login")
    browser.driver.refresh()
    log_in(browser, "admin", FIRST)
    browser.find("#change-password")
    browser.find("#change-password input[name=new-password]").send_keys(NEW)
    browser.find("#change-password input[name=new-password-again]").send_keys(NEW)
    browser.click("#change-password button[type=submit]")
    browser.wait_text("#who", lambda t: "admin (admin)" in t, what="the admin logged in")
    assert nav_pages(browser) == ["overview", "licenses", "seats", "key", "users", "usage"]
    assert requests.get(srv.url + "/auth", auth=("admin", NEW), timeout=10).status_code == 200
    # The token is the session's: never in the address bar, never in lasting storage.
    token = token_in_storage(browser)
    assert token and token not in browser.driver.current_url
    assert browser.driver.execute_script("return localStorage.length") == 0
    assert browser.driver.get_cookies() == []
    assert FIRST not in srv.log and NEW not in srv.log and token not in srv.log


def test_the_admin_adds_a_user_changes_the_role_and_deletes_them(browser, srv):
    browser.go("users")
    browser.find("#new-username").send_keys("dave")
    browser.find("#new-user-password").send_keys("dave-long-password")
    browser.click("#add-user button[type=submit]")
    browser.wait_text("#user-status", lambda t: t == "User dave added.", what="the user added")
    assert roles(srv)["dave"] == "user"
    Select(browser.find("#role-dave")).select_by_value("admin")
    browser.wait_text("#user-status", lambda t: t == "dave is now admin.", what="the role change")
    assert roles(srv)["dave"] == "admin"
    browser.screenshot("users")
    browser.click('button[data-reset="dave"]')
    browser.find("dialog[open] #dialog-input").send_keys("dave-second-password", Keys.ENTER)
    browser.wait_text("#user-status", lambda t: t == "Password of dave reset.", what="the reset")
    assert (
        requests.get(srv.url + "/auth", auth=("dave", "dave-second-password"), timeout=10).status_code == 200
    )
    assert "dave-second-password" not in srv.log
    browser.click("#users tr:has(#role-dave) button.danger")
    browser.click("dialog[open] button.danger")
    browser.wait_text("#user-status", lambda t: t == "User dave deleted.", what="the deletion")
    assert "dave" not in roles(srv)


def test_a_user_role_sees_no_admin_action(browser, srv):
    admin = {"Authorization": f"Bearer {admin_token(srv)}"}
    for path, body in [
        ("/api/v4/licenses", {"product": "cad", "floating_users": 2}),
        ("/api/v4/users", {"username": "alice", "password": PW, "role": "user"}),
    ]:
        assert requests.post(srv.url + path, json=body, headers=admin, timeout=10).status_code == 201
    log_out(browser)
    assert token_in_storage(browser) is None
    log_in(browser, "alice", PW)
    browser.wait_text("#who", lambda t: "alice (user)" in t, what="alice logged in")
    assert nav_pages(browser) == ["overview", "licenses"]
    browser.go("licenses")
    browser.find("details[data-license] summary")
    assert browser.driver.find_elements(By.CSS_SELECTOR, "#add-license, #import-license, [data-remove]") == []
    # An admin page asked for by address shows the overview instead, and nothing fails.
    browser.driver.get(srv.url + "/#/users")
    browser.wait(lambda d: d.title.startswith("Overview"), what="the overview instead of users")
    browser.wait_text("[data-license] .bar-value", lambda t: t == "0 / 2", what="the license's seats")
    # Refused requests are logged as failed loads (the 401 of GET /auth that tells the
    # mode, the wrong password); nothing else may be: no script error, no CSP violation.
    assert [e for e in browser.log() if e["level"] == "SEVERE" and e["source"] != "network"] == []
    log_out(browser)


def admin_token(srv: ServerProcess) -> str:
    return requests.get(srv.url + "/auth", auth=("admin", NEW), timeout=10).json()["token"]


def roles(srv: ServerProcess) -> dict[str, str]:
    answer = requests.get(
        srv.url + "/api/v4/users", headers={"Authorization": f"Bearer {admin_token(srv)}"}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    return {u["username"]: u["role"] for u in answer.json()["users"]}
