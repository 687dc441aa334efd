"""sd_notify: a real server process tells a real AF_UNIX datagram socket what systemd would hear."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from floatkey.app.sdnotify import Notifier, Watchdog
from tests.support.server import ServerProcess


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class NotifySocket:
    """The socket systemd would listen on: a path, or an abstract name (``@...``)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)

    def receive(self, timeout: float = 30.0) -> str:
        self.sock.settimeout(timeout)
        return self.sock.recv(4096).decode()

    def wait_for(self, state: str, timeout: float = 30.0) -> list[str]:
        """Every datagram up to and including ``state``; fails after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{state} not received within {timeout}s; got {seen}")
            try:
                seen.append(self.receive(left))
            except TimeoutError:
                continue
            if seen[-1] == state:
                return seen

    def pending(self) -> list[str]:
        self.sock.setblocking(False)
        found = []
        try:
            while True:
                found.append(self.sock.recv(4096).decode())
        except BlockingIOError:
            return found
        finally:
            self.sock.setblocking(True)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(params=["path", "abstract"])
def notify_socket(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NotifySocket]:
    if request.param == "path":
        address = str(tmp_path / "notify.sock")
    else:
        address = f"@floatkey-test-{os.getpid()}-{id(request)}"
    sock = NotifySocket(address)
    yield sock
    sock.close()


def test_ready_after_listening_watchdog_while_running_stopping_on_sigterm(
    tmp_path: Path, notify_socket: NotifySocket
) -> None:
    port = free_port()
    env = {"NOTIFY_SOCKET": notify_socket.address, "WATCHDOG_USEC": "200000"}
    server = ServerProcess(tmp_path / "data", "--port", str(port), env=env)
    started = threading.Thread(target=server.start)
    started.start()
    try:
        assert notify_socket.wait_for("READY=1") == ["READY=1"]
        # READY=1 means clients can connect now, not in a moment.
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        started.join(30)
        assert server.get("/api/v4/health/live").status_code == 200
        pings = [notify_socket.receive() for _ in range(3)]
        assert pings == ["WATCHDOG=1"] * 3
    finally:
        started.join(30)
        server.stop()
    assert server.proc is not None and server.proc.returncode == 0
    notify_socket.wait_for("STOPPING=1", timeout=5)
    assert "READY=1" not in notify_socket.pending()


def test_no_watchdog_pings_without_watchdog_usec(tmp_path: Path, notify_socket: NotifySocket) -> None:
    server = ServerProcess(tmp_path / "data", env={"NOTIFY_SOCKET": notify_socket.address}).start()
    try:
        assert notify_socket.receive() == "READY=1"
    finally:
        server.stop()
    assert notify_socket.wait_for("STOPPING=1", timeout=5) == ["STOPPING=1"]


def test_the_watchdog_pings_only_while_the_server_is_healthy(notify_socket: NotifySocket) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": notify_socket.address, "WATCHDOG_USEC": "20000"})
    checked = threading.Semaphore(0)
    healthy = threading.Event()

    def check() -> bool:
        answer = healthy.is_set()
        checked.release()
        return answer

    watchdog = Watchdog(notifier, check)
    watchdog.start()
    try:
        for _ in range(5):  # five intervals pass, each with a failed check
            assert checked.acquire(timeout=10)
        assert notify_socket.pending() == []
        healthy.set()
        assert notify_socket.receive(timeout=10) == "WATCHDOG=1"
    finally:
        watchdog.stop()


def test_watchdog_usec_for_another_process_is_ignored() -> None:
    env = {"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "1000000"}
    assert Notifier(env).watchdog_interval == 0.5
    assert Notifier({**env, "WATCHDOG_PID": str(os.getpid())}).watchdog_interval == 0.5
    assert Notifier({**env, "WATCHDOG_PID": str(os.getpid() + 1)}).watchdog_interval is None
    assert not Notifier({}).enabled and Notifier({}).notify("READY=1") is False
