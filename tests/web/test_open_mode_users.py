"""Open mode has no user management over HTTP: anyone on the network could make themselves
admin, reset a password or raise a role, and those users would outlive a switch to
authentication mode. The ``floatkey users`` command is the way there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests

from floatkey.app.config import Settings
from floatkey.app.users_command import accounts
from tests.support.server import ServerProcess

PW = "correct horse battery"

#: Every user-management route, with a request that an anonymous open-mode client could
#: make succeed before (it counted as an operator with every right).
USER_ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/api/v4/users", None),
    ("POST", "/api/v4/users", {"username": "mallory", "password": PW, "role": "admin"}),
    ("POST", "/api/v4/users/alice/password", {"password": "taken over by mallory"}),
    ("POST", "/api/v4/users/alice/role", {"role": "admin"}),
    ("GET", "/api/v4/setPassword?passwordOld=x&passwordNew=y", None),
    ("DELETE", "/api/v4/users/alice", None),
]


def test_user_management_over_http_is_refused_in_open_mode(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with accounts(Settings(data_dir=data)) as acc:
        acc.add_user("alice", PW, "user")
    server = ServerProcess(data).start()
    failures = []
    try:
        for method, path, body in USER_ROUTES:
            answer = requests.request(
                method, server.url + path, json=body, headers={"Content-Type": "application/json"}, timeout=30
            )
            error = answer.json() if answer.headers.get("Content-Type") == "application/json" else {}
            message = str(error.get("message", ""))
            if (
                answer.status_code != 403
                or error.get("code") != "forbidden"
                or "authentication mode" not in message
                or "floatkey users" not in message
            ):
                failures.append(f"{method} {path}: {answer.status_code} {answer.text[:160]}")
    finally:
        server.stop()
    assert failures == []
    with accounts(Settings(data_dir=data)) as acc:
        assert [(u["username"], u["role"]) for u in acc.users()] == [("alice", "user")]
        assert acc.login("alice", PW, "127.0.0.1").username == "alice"
