"""Liveness and readiness probes on real server processes (the hardware-key case is in
test_hardware_keys.py)."""

from __future__ import annotations

from pathlib import Path

import requests

from tests.support.server import ServerProcess

PROBES = ("/api/v4/health/live", "/api/v4/health/ready")


def test_probes_answer_a_healthy_server_without_a_token(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", "--user-authentication").start()
    try:
        for path, status in zip(PROBES, ("alive", "ready"), strict=True):
            answer = requests.get(server.url + path, timeout=30)
            assert (answer.status_code, answer.json()) == (200, {"status": status})
            head = requests.head(server.url + path, timeout=30)
            assert head.status_code == 200 and head.content == b""
        document = server.get("/api/v4/openapi.json").json()
        for path in PROBES:
            operation = document["paths"][path]["get"]
            assert "security" not in operation and "200" in operation["responses"]
        assert "503" in document["paths"]["/api/v4/health/ready"]["get"]["responses"]
    finally:
        server.stop()


def test_a_full_data_directory_is_not_ready_but_alive(tmp_path: Path) -> None:
    config = tmp_path / "floatkey.yaml"
    config.write_text(f"hardwareKey:\n  enabled: false\nmapSize: {1 << 20}\n")
    server = ServerProcess(tmp_path / "data", "--config", str(config)).start()
    try:
        server.add_license(product="full", floating_users=100_000)
        for i in range(5_000):
            seat = {"product": "full", "user": f"u{i}", "user_info": "x" * 4000}
            if server.post("/api/v4/register", seat).status_code == 503:
                break
        else:
            raise AssertionError("a 1 MiB map never filled up")
        answer = server.get("/api/v4/health/ready")
        assert answer.status_code == 503
        body = answer.json()
        assert body["code"] == "service_unavailable" and body["message"].startswith("Not ready: ")
        [reason] = body["reasons"]
        assert reason.startswith("the data directory refuses writes since ")
        assert server.get("/api/v4/health/live").status_code == 200
    finally:
        server.stop()
