"""Request ids, JSON log lines, and no credential in any log line, on real server processes."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from floatkey.app.config import Settings, load
from floatkey.app.users_command import accounts
from floatkey.errors import ConfigError
from tests.support.failing_server import FAIL_PATH
from tests.support.server import ServerProcess

ALICE_PW = "alice's secret passphrase 7781"
ADMIN_PW = "root admin passphrase 9912"
NEW_PW = "alice's next passphrase 3319"
WRONG_PW = "a wrong guess of hers 5531"


def json_config(path: Path, *extra: str) -> Path:
    path.write_text(
        "\n".join(["hardwareKey:\n  enabled: false", "logFormat: json", "logLevel: DEBUG", *extra])
    )
    return path


def log_lines(server: ServerProcess) -> list[dict[str, Any]]:
    """Every line the server wrote, each parsed as JSON (a line that is not JSON fails the test)."""
    return [json.loads(line) for line in server.lines if line.strip()]


@pytest.fixture(scope="module")
def json_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("json-log")
    proc = ServerProcess(
        root / "data", "--config", str(json_config(root / "f.yaml")), module="tests.support.failing_server"
    ).start()
    yield proc
    proc.stop()


def test_every_answer_carries_a_request_id_and_errors_repeat_it(json_server: ServerProcess) -> None:
    ok = json_server.get("/api/v4/health")
    assert ok.status_code == 200 and len(ok.headers["X-Request-Id"]) >= 16
    ids = {ok.headers["X-Request-Id"]}
    for answer in (
        json_server.get("/api/v4/nowhere"),  # 404
        json_server.post("/api/v4/register", {"product": 5}),  # 400 validation_error
        json_server.post("/api/v4/register", {"product": "none", "user": "u"}),  # 400 unknown_product
        json_server.delete("/api/v4/health"),  # 405
        json_server.get(FAIL_PATH),  # 500
    ):
        assert answer.status_code >= 400
        rid = answer.headers["X-Request-Id"]
        assert answer.json()["request_id"] == rid, answer.text
        ids.add(rid)
    assert len(ids) == 6  # a new one each time


@pytest.mark.parametrize("incoming", ["trace-42.a_B", "x" * 64])
def test_a_short_safe_incoming_id_is_kept(json_server: ServerProcess, incoming: str) -> None:
    answer = json_server.get("/api/v4/nowhere", headers={"X-Request-Id": incoming})
    assert answer.headers["X-Request-Id"] == incoming
    assert answer.json()["request_id"] == incoming


@pytest.mark.parametrize("incoming", ["x" * 65, "two words", "a;b", "<script>", "id\u00e9", ""])
def test_an_unsafe_incoming_id_is_replaced(json_server: ServerProcess, incoming: str) -> None:
    answer = json_server.get("/api/v4/nowhere", headers={"X-Request-Id": incoming.encode().decode("latin-1")})
    rid = answer.headers["X-Request-Id"]
    assert rid != incoming and len(rid) == 32 and rid.isalnum()
    assert answer.json()["request_id"] == rid


def test_json_lines_carry_the_request_fields(json_server: ServerProcess) -> None:
    answer = json_server.get("/api/v4/health", headers={"X-Request-Id": "probe-json-1"})
    assert answer.status_code == 200
    json_server.wait_for_log("probe-json-1")
    lines = log_lines(json_server)
    for line in lines:
        assert {"time", "level", "logger", "message"} <= set(line), line
        assert line["time"].endswith("Z")
    [done] = [line for line in lines if line.get("request_id") == "probe-json-1"]
    assert done["status"] == 200 and done["route"] == "/api/v4/health" and done["method"] == "GET"
    assert done["client"] == "127.0.0.1" and done["duration_ms"] >= 0
    assert any(line["message"].startswith("floatkey listening on") for line in lines)


def test_a_500_is_one_json_line_with_traceback_and_request_id(json_server: ServerProcess) -> None:
    answer = json_server.post(FAIL_PATH, {"x": 1}, headers={"X-Request-Id": "fail-json-1"})
    assert answer.status_code == 500 and answer.json()["request_id"] == "fail-json-1"
    json_server.wait_for_log("internal error, request fail-json-1")
    [error] = [
        line
        for line in log_lines(json_server)
        if line.get("request_id") == "fail-json-1" and line["level"] == "ERROR"
    ]
    assert "RuntimeError: deliberate failure of the test route" in error["traceback"]
    assert error["route"] == FAIL_PATH and error["client"] == "127.0.0.1" and error["status"] == 500


def test_no_password_or_token_in_any_log_line(tmp_path: Path) -> None:
    with accounts(Settings(data_dir=tmp_path / "data")) as acc:
        acc.add_user("alice", ALICE_PW, "user")
        acc.add_user("root_admin", ADMIN_PW, "admin")
    config = json_config(tmp_path / "f.yaml")
    server = ServerProcess(tmp_path / "data", "--user-authentication", "--config", str(config)).start()
    url = server.url
    try:
        secrets = [ALICE_PW, ADMIN_PW, NEW_PW, WRONG_PW]
        for password in (WRONG_PW, ALICE_PW):
            requests.get(url + "/auth", auth=("alice", password), timeout=30)
            secrets.append(base64.b64encode(f"alice:{password}".encode()).decode())
        alice = requests.get(url + "/auth", auth=("alice", ALICE_PW), timeout=30).json()["token"]
        admin = requests.get(url + "/auth", auth=("root_admin", ADMIN_PW), timeout=30).json()["token"]
        secrets += [alice, admin]
        for token in (alice, admin, alice + "x"):
            requests.get(url + "/api/v4/license", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        changed = requests.post(
            url + "/api/v4/users/alice/password",
            json={"password": NEW_PW, "old_password": ALICE_PW},
            headers={"Authorization": f"Bearer {alice}"},
            timeout=30,
        )
        assert changed.status_code == 200, changed.text
        secrets.append(changed.json()["token"])
        wrong_old = requests.get(
            url + "/api/v4/setPassword",
            params={"passwordOld": WRONG_PW, "passwordNew": NEW_PW + "!"},
            headers={"Authorization": f"Bearer {admin}", "Content-Type": "application/json"},
            timeout=30,
        )
        assert wrong_old.status_code == 401
        secrets.append(NEW_PW + "!")
        secret_file = (tmp_path / "data" / "token.secret").read_bytes()
        server.wait_for_log("/api/v4/setPassword answered 401")
    finally:
        server.stop()
    log = server.log
    assert "/auth answered 200" in log and "/auth answered 401" in log  # the lines were written
    for secret in secrets:
        assert secret not in log
    assert secret_file.hex() not in log and base64.b64encode(secret_file).decode() not in log


def test_log_format_must_be_text_or_json(tmp_path: Path) -> None:
    config = tmp_path / "floatkey.yaml"
    config.write_text("logFormat: xml\n")
    with pytest.raises(ConfigError, match=r"logFormat: must be one of text, json, not 'xml'"):
        load(config)
