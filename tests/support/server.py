"""A real floatkey server process for integration tests: started, watched, stopped."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

_LISTENING = re.compile(r"floatkey listening on (https?)://([^:]+):(\d+)")


def sdk_session() -> requests.Session:
    """A session that sends what the LicenseSpring SDKs send on every request, GET included:
    ``Content-Type: application/json`` (without it a state-changing GET such as
    ``/api/v4/unregister/all`` is refused as a web page's; web/guards.py)."""
    session = requests.Session()
    session.headers["Content-Type"] = "application/json"
    return session


class ServerProcess:
    """``python -m floatkey serve`` on a free port of 127.0.0.1 with its own data directory."""

    def __init__(
        self, data_dir: Path, *args: str, env: dict[str, str] | None = None, module: str = "floatkey"
    ) -> None:
        """Without ``--config`` in ``args`` the server leaves smart card readers alone, so
        it cannot take a virtual key away from a test that needs one. ``module`` is what
        ``python -m`` runs (tests.support.failing_server adds a route that fails)."""
        self.data_dir = data_dir
        self.module = module
        self.args = list(args)
        if "--config" not in self.args:
            config = data_dir.parent / f"{data_dir.name}-no-keys.yaml"
            data_dir.parent.mkdir(parents=True, exist_ok=True)
            config.write_text("hardwareKey:\n  enabled: false\n")
            self.args += ["--config", str(config)]
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.lines: list[str] = []
        self._listening = threading.Event()
        self.session = sdk_session()

    def start(self, timeout: float = 30.0) -> ServerProcess:
        self._listening.clear()
        self.lines = []
        cmd = [
            sys.executable,
            "-m",
            self.module,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--data-dir",
            str(self.data_dir),
            *self.args,
        ]
        self.proc = subprocess.Popen(
            cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=self.env
        )
        # Each process gets its own reader and list: a late line of the previous one must
        # not land in this one's log.
        self._reader = threading.Thread(target=self._read, args=(self.proc, self.lines), daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while not self._listening.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("floatkey did not start:\n" + self.log)
        return self

    def _read(self, proc: subprocess.Popen[str], lines: list[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            found = _LISTENING.search(line)
            if found:
                self.url = f"{found.group(1)}://{found.group(2)}:{found.group(3)}"
                self._listening.set()

    def _read_to_the_end(self) -> None:
        """After the process exited: its last lines may still be in the pipe."""
        self._reader.join(10)

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def wait_for_log(self, text: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log:
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not logged within {timeout}s:\n{self.log}")
            time.sleep(0.02)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        return self.session.post(self.url + path, json=body, timeout=30, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(self.url + path, timeout=30, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.delete(self.url + path, timeout=30, **kwargs)

    def add_license(self, **policy: Any) -> dict[str, Any]:
        answer = self.post("/api/v4/licenses", policy)
        assert answer.status_code == 201, answer.text
        return answer.json()

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to flush anything."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._read_to_the_end()

    def wait_exit(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        code = self.proc.wait(timeout)
        self._read_to_the_end()
        return code

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._read_to_the_end()
        self.session.close()
        self.session = sdk_session()
        return self.proc.returncode


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A running server on a fresh data directory."""
    proc = ServerProcess(tmp_path / "data").start()
    yield proc
    proc.stop()


def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.02, what: str = "") -> Any:
    """Poll ``predicate`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


def error_of(answer: requests.Response) -> dict[str, Any]:
    """An error answer's JSON body without its ``request_id`` (new for every request)."""
    body: dict[str, Any] = answer.json()
    assert isinstance(body.get("request_id"), str), answer.text
    return {k: v for k, v in body.items() if k != "request_id"}
