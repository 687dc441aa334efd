"""The audit trail on a real server process: every event, its actor and outcome, the chain.

The trail is read three ways: ``GET /api/v4/audit``, ``floatkey audit export`` (a child
process, read-only, server running or not) and, to tamper with it, the LMDB file itself.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import lmdb
import pytest
import requests

from floatkey.storage import records as db
from floatkey.storage.codec import pack, unpack
from tests.support.server import ServerProcess

ADMIN_PW = "first admin pass 1"
ALICE_PW = "alice secret pass 2"
ALICE_NEW_PW = "alice newer pass 3"
BOB_PW = "bob secret pass 4"
BOB_RESET_PW = "bob reset pass 5"
WRONG_PW = "not the password 6"


def floatkey_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "floatkey", *args], input=stdin, capture_output=True, text=True, timeout=60
    )


def audit_export(data_dir: Path, *args: str) -> list[dict[str, Any]]:
    done = floatkey_cli("audit", "export", "--data-dir", str(data_dir), *args)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def audit_verify(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return floatkey_cli("audit", "verify", "--data-dir", str(data_dir))


def kinds_of(records: list[dict[str, Any]]) -> list[str]:
    return [r["kind"] for r in records]


def one(records: list[dict[str, Any]], kind: str, **details: Any) -> dict[str, Any]:
    found = [r for r in records if r["kind"] == kind and details.items() <= r["details"].items()]
    assert len(found) == 1, (kind, details, found)
    return found[0]


def login(server: ServerProcess, user: str, password: str) -> requests.Response:
    return server.get("/auth", auth=(user, password))


def bearer(server: ServerProcess, user: str, password: str) -> dict[str, str]:
    answer = login(server, user, password)
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


@pytest.fixture
def auth_server(tmp_path: Path):
    config = tmp_path / "auth.yaml"
    config.write_text(
        "userAuthentication: true\nhardwareKey:\n  enabled: false\nauth:\n  maxFailedLogins: 3\n"
    )
    data = tmp_path / "data"
    added = floatkey_cli(
        "users", "add", "root", "--role", "admin", "--password-stdin", "--data-dir", str(data),
        "--config", str(config), stdin=ADMIN_PW + "\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    server = ServerProcess(data, "--config", str(config)).start()
    yield server
    server.stop()


def test_every_admin_action_and_security_event_is_recorded(auth_server: ServerProcess, tmp_path: Path):
    server = auth_server
    root = bearer(server, "root", ADMIN_PW)
    s = server.session
    s.headers.update(root)
    lic = server.add_license(product="cad", floating_users=2)
    assert server.post("/api/v4/licenses", {"product": "x", "floating_users": -1}).status_code == 400
    assert server.post("/api/v4/register", {"product": "cad", "user": "u1"}).status_code == 200
    assert server.delete(f"/api/v4/registrations/{lic['id']}/u1").status_code == 200
    assert server.get("/api/v4/unregister/all").status_code == 200
    assert server.post("/api/v4/featureRelease/all").status_code == 200
    assert server.post("/api/v4/users", {"username": "alice", "password": ALICE_PW}).status_code == 201
    assert server.post("/api/v4/users", {"username": "bob", "password": BOB_PW}).status_code == 201
    assert server.post("/api/v4/users/bob/role", {"role": "admin"}).status_code == 200
    assert server.post("/api/v4/users/bob/password", {"password": BOB_RESET_PW}).status_code == 200
    assert server.delete("/api/v4/users/bob").status_code == 200
    assert server.delete("/api/v4/users/nobody").status_code == 404
    assert server.delete(f"/api/v4/licenses/{lic['id']}").status_code == 200
    alice = bearer(server, "alice", ALICE_PW)
    changed = requests.post(
        server.url + "/api/v4/users/alice/password",
        json={"password": ALICE_NEW_PW, "old_password": ALICE_PW},
        headers=alice,
        timeout=30,
    )
    assert changed.status_code == 200, changed.text
    assert login(server, "alice", WRONG_PW).status_code == 401
    assert login(server, WRONG_PW, WRONG_PW).status_code == 401  # a password typed as the name
    assert login(server, "alice", WRONG_PW).status_code == 401
    assert login(server, "alice", WRONG_PW).status_code == 429
    rotated = server.post("/api/v4/secret/rotate")
    assert rotated.status_code == 200
    s.headers["Authorization"] = f"Bearer {rotated.json()['token']}"

    trail = server.get("/api/v4/audit").json()["records"]
    assert [r["seq"] for r in trail] == list(range(1, len(trail) + 1))
    cli = [r for r in trail if r["route"] == "cli"]
    assert kinds_of(cli) == ["user_added"]
    assert one(trail, "user_added", username="root")["actor"].startswith("os:")
    configs = [r for r in trail if r["kind"] == "config_loaded"]
    assert len(configs) == 2 and all(r["actor"] == "floatkey" and r["route"] == "system" for r in configs)
    config_file = tmp_path / "auth.yaml"
    assert configs[-1]["details"]["file"] == str(config_file.resolve())
    assert configs[-1]["details"]["sha256"] == hashlib.sha256(config_file.read_bytes()).hexdigest()

    def check(kind: str, route: str, outcome: str = "ok", actor: str = "root", **details: Any) -> None:
        record = one(trail, kind, **details)
        assert (record["actor"], record["route"], record["outcome"]) == (actor, route, outcome), record

    check("license_added", "POST /api/v4/licenses", license_id=lic["id"], product="cad")
    check("license_added", "POST /api/v4/licenses", "validation_error", license_id=None, product="x")
    check("seat_force_released", "DELETE /api/v4/registrations/{license_id}/{user}", license_id=lic["id"])
    check("unregister_all", "GET /api/v4/unregister/all")
    check("feature_release_all", "POST /api/v4/featureRelease/all")
    check("user_added", "POST /api/v4/users", username="alice", role="user")
    check("user_role_changed", "POST /api/v4/users/{username}/role", username="bob", role="admin")
    check("user_password_changed", "POST /api/v4/users/{username}/password", username="bob", own=False)
    check("user_removed", "DELETE /api/v4/users/{username}", username="bob")
    check("user_removed", "DELETE /api/v4/users/{username}", "not_found", username="nobody")
    check("license_removed", "DELETE /api/v4/licenses/{license_id}", license_id=lic["id"])
    check(
        "user_password_changed",
        "POST /api/v4/users/{username}/password",
        actor="alice",
        username="alice",
        own=True,
    )
    refused = [r for r in trail if r["kind"] == "login_refused"]
    assert [r["details"]["username"] for r in refused] == ["alice", None, "alice"]
    assert {(r["outcome"], r["route"], r["actor"]) for r in refused} == {
        ("authentication_failed", "GET /auth", "anonymous 127.0.0.1")
    }
    # The third failure from 127.0.0.1 throttles the address (alice has failed twice).
    throttled = one(trail, "login_throttled", by="address")
    assert throttled["details"]["value"] == "127.0.0.1" and throttled["outcome"] == "too_many_requests"
    assert throttled["seq"] == refused[-1]["seq"] + 1
    check("secret_rotated", "POST /api/v4/secret/rotate")

    server.stop()
    assert audit_verify(server.data_dir).returncode == 0
    exported = audit_export(server.data_dir)
    assert exported == trail + [r for r in exported if r["seq"] > trail[-1]["seq"]]
    dump = json.dumps(exported)
    for secret in (
        ADMIN_PW,
        ALICE_PW,
        ALICE_NEW_PW,
        BOB_PW,
        BOB_RESET_PW,
        WRONG_PW,
        s.headers["Authorization"][7:],
    ):
        assert secret not in dump


def test_open_mode_names_the_client_address(server: ServerProcess):
    server.add_license(product="cad")
    [added] = [r for r in server.get("/api/v4/audit").json()["records"] if r["kind"] == "license_added"]
    assert added["actor"] == "open-mode 127.0.0.1" and added["route"] == "POST /api/v4/licenses"


def test_the_time_window_and_bad_input(server: ServerProcess):
    server.add_license(product="cad")
    trail = server.get("/api/v4/audit").json()
    assert trail["truncated"] is False and kinds_of(trail["records"]) == ["config_loaded", "license_added"]
    at = trail["records"][-1]["at"]
    assert kinds_of(server.get("/api/v4/audit", params={"from": at}).json()["records"]) == ["license_added"]
    assert kinds_of(server.get("/api/v4/audit", params={"to": "2000-01-01"}).json()["records"]) == []
    before = server.get("/api/v4/audit").json()
    for query in ({"from": "yesterday"}, {"from": "2026-01-02", "to": "2026-01-01"}, {"since": "2026-01-01"}):
        answer = server.get("/api/v4/audit", params=query)
        assert answer.status_code == 400 and answer.json()["code"] == "validation_error", answer.text
    assert server.get("/api/v4/audit").json() == before
    assert audit_export(server.data_dir, "--from", at) == trail["records"][-1:]  # read while it runs


def _tamper(data_dir: Path, how: str) -> None:
    env = lmdb.open(str(data_dir), max_dbs=len(db.DATABASES) + 1)
    audit = env.open_db(db.AUDIT.encode())
    with env.begin(write=True, db=audit) as txn:
        if how == "edited":
            record = unpack(txn.get(db.audit_key(3)))
            record["actor"] = "somebody else"
            txn.put(db.audit_key(3), pack(record))
        elif how == "removed":
            txn.delete(db.audit_key(3))
        elif how == "swapped":
            third, fourth = txn.get(db.audit_key(3)), txn.get(db.audit_key(4))
            txn.put(db.audit_key(3), fourth)
            txn.put(db.audit_key(4), third)
        elif how == "relinked":  # edited and re-hashed: only the next record's link tells
            from floatkey.audit.chain import digest

            record = unpack(txn.get(db.audit_key(3)))
            record["outcome"] = "ok" if record["outcome"] != "ok" else "forbidden"
            record["hash"] = digest(record)
            txn.put(db.audit_key(3), pack(record))
        elif how == "truncated":
            txn.delete(db.audit_key(6))
    env.close()


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("edited", "record 3: edited"),
        ("removed", "record 4: removed"),
        ("swapped", "record 3: reordered"),
        ("relinked", "record 4: bad link"),
        ("truncated", "record 6: removed"),
    ],
)
def test_verify_finds_the_first_bad_record(server: ServerProcess, how: str, message: str):
    for product in ("a", "b", "c", "d", "e"):
        server.add_license(product=product)
    server.stop()
    assert audit_verify(server.data_dir).returncode == 0
    _tamper(server.data_dir, how)
    verdict = audit_verify(server.data_dir)
    assert verdict.returncode == 1 and f"audit trail broken at {message}" in verdict.stderr, verdict.stderr


def test_kill_9_right_after_an_acknowledged_action_loses_no_record(server: ServerProcess):
    lic = server.add_license(product="cad")
    assert server.delete(f"/api/v4/licenses/{lic['id']}").status_code == 200
    server.kill()
    trail = audit_export(server.data_dir)
    assert kinds_of(trail)[-2:] == ["license_added", "license_removed"]
    assert audit_verify(server.data_dir).returncode == 0
