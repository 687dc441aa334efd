"""Server processes under test: started with their log in a file, measured, stopped by PID."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from floatkey.app.config import Settings

_URL = re.compile(r"listening on (https?://[^\s:]+:\d+)")
_TICKS = os.sysconf("SC_CLK_TCK")
ROOT = Path(__file__).resolve().parents[1]


class Process:
    """One child process whose stderr goes to ``log_path``; ready once it logs its URL."""

    def __init__(self, args: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.log_path = log_path
        #: Variables added to the environment the process inherits.
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.started_at = 0.0
        self.ready_after = 0.0

    def start(self, timeout: float = 60.0) -> Process:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.started_at = time.monotonic()
            env = None if self.env is None else {**os.environ, **self.env}
            self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=log, cwd=ROOT, env=env)
        deadline = self.started_at + timeout
        while True:
            found = _URL.search(self.log())
            if found:
                self.url = found.group(1)
                self.ready_after = time.monotonic() - self.started_at
                return self
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.args[2:4]} did not start; its log:\n{self.log()[-3000:]}")
            time.sleep(0.01)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the process (all its threads) so far."""
        with open(f"/proc/{self.pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS

    def rss_bytes(self, field: str = "VmRSS") -> int:
        """Resident memory; ``field`` RssAnon or RssFile for its parts (the heap, mapped files)."""
        with open(f"/proc/{self.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) * 1024
        return 0

    def thread_count(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/task"))

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc, 30)


def terminate(proc: subprocess.Popen[Any], grace: float) -> None:
    """SIGTERM, then SIGKILL if the process is still there after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def floatkey_server(
    data_dir: Path, log_path: Path, config: Path | None = None, env: dict[str, str] | None = None
) -> Process:
    args = [
        sys.executable,
        "-m",
        "floatkey",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--data-dir",
        str(data_dir),
    ]
    if config is not None:
        args += ["--config", str(config)]
    return Process(args, log_path, env)


def server_lines(server: ServerSettings) -> str:
    """The top of a benchmark server's configuration file."""
    return f"threadPool: {server.thread_pool}\ncpuAffinity: {server.cpu_affinity}\nlogLevel: INFO\n"


def ceiling_server(server: ServerSettings, log_path: Path) -> Process:
    args = [
        sys.executable,
        "-m",
        "bench.ceiling",
        "--port",
        "0",
        "--thread-pool",
        str(server.thread_pool),
        "--cpu-affinity",
        str(server.cpu_affinity),
    ]
    return Process(args, log_path)


@dataclass(frozen=True)
class ServerSettings:
    """The settings every benchmark server (floatkey and the ceiling alike) runs with."""

    thread_pool: int = Settings.thread_pool
    cpu_affinity: str | int = Settings.cpu_affinity
