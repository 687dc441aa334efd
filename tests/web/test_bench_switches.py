"""FLOATKEY_BENCH_WITHOUT (floatkey/app/bench_switches.py), against real server processes:
each name leaves out its feature's work and nothing else; an unknown name stops the server."""

import subprocess
import sys

from floatkey.app import bench_switches
from tests.support.server import ServerProcess
from tests.web.test_usage import window


def register_twice(srv: ServerProcess) -> int:
    lid = int(srv.add_license(product="cad", floating_users=5)["id"])
    for user in ("a", "b"):
        assert srv.post("/api/v4/register", {"product": "cad", "user": user}).status_code == 200
    return lid


def seats_in_history(srv: ServerProcess, lid: int) -> int:
    answer = srv.get("/api/v4/usage", params={"license_id": lid, **window(), "step": "minute"})
    assert answer.status_code == 200, answer.text
    return max(point["peak"] for point in answer.json()["buckets"])


def test_without_usage_no_history_is_noted_and_the_seats_are_held(tmp_path):
    srv = ServerProcess(tmp_path / "data", env={bench_switches.ENV: "usage"}).start()
    try:
        srv.wait_for_log(f"{bench_switches.ENV}: usage left out, for the benchmark")
        lid = register_twice(srv)
        assert seats_in_history(srv, lid) == 0
        assert srv.get("/api/v4/license", params={"product": "cad"}).json()[0]["floating_in_use_devices"] == 2
    finally:
        srv.stop()
    # The same steps without the switch: the history has them (so the check above can fail).
    plain = ServerProcess(tmp_path / "plain").start()
    try:
        assert seats_in_history(plain, register_twice(plain)) == 2
        assert "left out, for the benchmark" not in plain.log
    finally:
        plain.stop()


def test_without_the_request_log_and_the_audit_origin_requests_are_still_served(tmp_path):
    srv = ServerProcess(tmp_path / "data", env={bench_switches.ENV: "requestLog,audit"}).start()
    try:
        srv.wait_for_log("audit, requestLog left out, for the benchmark")
        answer = srv.post("/api/v4/register", {"product": "none", "user": "a"})
        assert answer.status_code == 400 and "X-Request-Id" not in answer.headers
        register_twice(srv)
        added = [r for r in srv.get("/api/v4/audit").json()["records"] if r["kind"] == "license_added"]
        assert added and added[-1]["actor"] == "embedding"
    finally:
        srv.stop()


def test_an_unknown_name_stops_the_server_with_what_to_use(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "floatkey", "serve", "--port", "0", "--data-dir", str(tmp_path / "data")],
        env={**__import__("os").environ, bench_switches.ENV: "usage,metric"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "FLOATKEY_BENCH_WITHOUT names metric" in done.stderr and "usage, audit, requestLog" in done.stderr
