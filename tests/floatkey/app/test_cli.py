import json
import subprocess
import sys

from tests.support.server import ServerProcess


def floatkey(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "floatkey", *args], capture_output=True, text=True, timeout=timeout
    )


def test_licenses_through_the_running_server(server):
    added = floatkey(
        "licenses",
        "add",
        "--url",
        server.url,
        "--product",
        "cad",
        "--floating-users",
        "3",
        "--max-borrow-time",
        "24",
    )
    assert added.returncode == 0, added.stderr
    lic = json.loads(added.stdout)
    assert lic["floating_users"] == 3 and lic["max_borrow_time"] == 24
    server.post("/api/v4/register", {"product": "cad", "user": "alice"})
    listed = floatkey("licenses", "list", "--url", server.url)
    assert listed.returncode == 0
    assert f"{lic['id']:>6}  cad" in listed.stdout and "1/3 seats" in listed.stdout
    refused = floatkey("licenses", "add", "--url", server.url, "--product", "bad code")
    assert refused.returncode == 1 and "validation_error" in refused.stderr
    removed = floatkey("licenses", "remove", "--url", server.url, str(lic["id"]))
    assert removed.returncode == 0
    assert server.get("/api/v4/license").json() == []


def test_direct_mode_is_refused_while_a_server_holds_the_data(server):
    busy = floatkey("licenses", "list", "--direct", "--data-dir", str(server.data_dir))
    assert busy.returncode == 2 and "in use by another floatkey process" in busy.stderr


def test_direct_mode_on_a_stopped_server_data_directory(tmp_path):
    data = tmp_path / "data"
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"features": [{"code": "render", "is_floating": True}]}))
    added = floatkey(
        "licenses", "add", "--direct", "--data-dir", str(data), "--product", "cad", "--policy", str(policy)
    )
    assert added.returncode == 0, added.stderr
    server = ServerProcess(data).start()
    try:
        [lic] = server.get("/api/v4/license").json()
        assert lic["product_features"][0]["code"] == "render"
    finally:
        server.stop()


def test_no_server_at_the_url_is_a_clear_error(tmp_path):
    done = floatkey("licenses", "list", "--url", "http://127.0.0.1:9")
    assert done.returncode == 1 and "No floatkey server answers" in done.stderr


def test_serve_refuses_a_bad_configuration_naming_the_key(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("threadPool: -1\n")
    done = floatkey("serve", "--config", str(config), "--port", "0")
    assert done.returncode == 2
    assert "threadPool" in done.stderr and str(config) in done.stderr


def test_a_second_server_on_the_same_data_directory_refuses_to_start(server):
    done = floatkey("serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", str(server.data_dir))
    assert done.returncode == 2, done.stderr
    assert "in use by another floatkey process" in done.stderr
