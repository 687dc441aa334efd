"""Helpers of the fault suite: a keep-alive JSON client per thread, configurations, state snapshots."""

from __future__ import annotations

import http.client
import json
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.support.server import ServerProcess

#: Keep the servers of this suite off any smart card reader a developer's machine has:
#: these tests are about licenses without hardware keys.
NO_READERS = 'hardwareKey:\n  ignoreReaders: ["Virtual PCD", "Yubico", "PIV", "Card", "Reader"]\n'


class Transport(Exception):
    """The request may or may not have reached the server (connection refused, reset, closed)."""


class _Connection(http.client.HTTPConnection):
    """http.client sends headers and body in two writes: without TCP_NODELAY, Nagle's
    algorithm and the server's delayed ACK add 40 ms to a request (urllib3 sets it too)."""

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Client:
    """One keep-alive connection; not shared between threads."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        self.conn = _Connection(parts.hostname, parts.port, timeout=timeout)

    def request(self, method: str, path: str, body: Any = None, raw: bytes | None = None) -> tuple[int, Any]:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        headers = {"Content-Type": "application/json"}
        try:
            self.conn.request(method, path, body=data, headers=headers)
            response = self.conn.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.conn.close()
            raise Transport(str(exc)) from None
        if response.getheader("Connection", "").lower() == "close":
            self.conn.close()
        if payload[:1] in (b"{", b"["):
            return response.status, json.loads(payload)
        return response.status, payload.decode("utf-8", "replace")

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        return self.request("POST", path, body)

    def close(self) -> None:
        self.conn.close()


def write_config(path: Path, extra: str = "") -> Path:
    path.write_text(NO_READERS + extra, encoding="utf-8")
    return path


def start_server(tmp_path: Path, extra_config: str = "") -> ServerProcess:
    config = write_config(tmp_path / "floatkey.yaml", extra_config)
    return ServerProcess(tmp_path / "data", "--config", str(config)).start()


def registrations(server: ServerProcess, license_id: int | None = None) -> dict[str, dict[str, Any]]:
    """user -> seat of every live registration (of one license, or of all as "id/user")."""
    query = "" if license_id is None else f"?license_id={license_id}"
    answer = server.get("/api/v4/registrations" + query)
    assert answer.status_code == 200, answer.text
    seats = answer.json()["registrations"]
    if license_id is not None:
        return {s["user"]: s for s in seats}
    return {f"{s['license_id']}/{s['user']}": s for s in seats}


def snapshot(server: ServerProcess) -> tuple[Any, Any]:
    """Everything a request could change: licenses with their usage, and every seat."""
    licenses = server.get("/api/v4/license")
    assert licenses.status_code == 200, licenses.text
    seats = server.get("/api/v4/registrations")
    assert seats.status_code == 200, seats.text
    return licenses.json(), seats.json()
