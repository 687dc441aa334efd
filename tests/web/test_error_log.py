"""A 500 is logged with its traceback and request id, and without any credential."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from floatkey.app.config import Settings
from floatkey.app.users_command import accounts
from tests.support.failing_server import FAIL_AS_USER_PATH, FAIL_PATH
from tests.support.server import ServerProcess

PW = "correct horse battery"
COOKIE_SECRET = "cookie-secret-4242"


@pytest.fixture(scope="module")
def failing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("failing")
    with accounts(Settings(data_dir=root / "data")) as acc:
        acc.add_user("alice", PW, "user")
    proc = ServerProcess(
        root / "data", "--user-authentication", module="tests.support.failing_server"
    ).start()
    yield proc
    proc.stop()


def token(server: ServerProcess) -> str:
    answer = requests.get(server.url + "/auth", auth=("alice", PW), timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()["token"]


def failed_request(server: ServerProcess, method: str, path: str, headers: dict[str, str]) -> str:
    """Send a request that fails with 500; answer the log lines of its failure."""
    answer = requests.request(method, server.url + path, json={"x": 1}, headers=headers, timeout=30)
    assert answer.status_code == 500, answer.text
    error = answer.json()
    assert error["code"] == "internal_error"
    request_id = error["request_id"]
    assert request_id in error["message"]
    server.wait_for_log(f"internal error, request {request_id}")
    server.wait_for_log("deliberate failure of the test route")
    return server.log


@pytest.mark.parametrize(("method", "path"), [("GET", FAIL_AS_USER_PATH), ("POST", FAIL_PATH)])
def test_a_500_logs_the_traceback_but_no_credential(failing: ServerProcess, method: str, path: str) -> None:
    bearer = token(failing)
    headers = {
        "Authorization": f"Bearer {bearer}",
        "Cookie": f"session={COOKIE_SECRET}",
        "Proxy-Authorization": "Basic YWxpY2U6Y29ycmVjdCBob3JzZSBiYXR0ZXJ5",
    }
    log = failed_request(failing, method, path, headers)
    assert "Traceback" in log and "RuntimeError" in log
    assert bearer not in log
    assert bearer.split(".")[1] not in log  # not even the claims part
    assert COOKIE_SECRET not in log
    assert "YWxpY2U6Y29ycmVjdCBob3JzZSBiYXR0ZXJ5" not in log
    assert PW not in log
