"""The load: wrk with many keep-alive connections, and a small HTTP client for set-up calls.

wrk is C and event-driven, so on a 2-core machine it leaves the server nearly all the
CPU; ``LoadResult.client_cpu`` says how much it took, so every report shows the client's
headroom instead of assuming it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).with_name("register_mix.lua")
_SUMMARY = re.compile(r"BENCH (.*)")


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    #: Answers other than 200 (the mix never expects one).
    errors: int
    socket_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    #: CPU seconds wrk used per second of wall time (1.0 = one core busy).
    client_cpu: float

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class Load:
    """How to load: connections, wrk threads, seconds, and users per round of the mix."""

    connections: int = 64
    threads: int = 2
    seconds: float = 10.0
    span: int = 200
    #: Milliseconds each connection waits between requests (0: as fast as answers come).
    pause_ms: int = 0


def run_wrk(
    url: str,
    load: Load,
    product: str,
    license_id: int | None = None,
    tag: str = "",
    token: str | None = None,
) -> LoadResult:
    """Drive ``url`` with the register mix for ``load.seconds``; ``tag`` keeps users of runs apart."""
    args = [
        "wrk",
        "-t",
        str(load.threads),
        "-c",
        str(load.connections),
        "-d",
        f"{load.seconds:g}s",
        "--timeout",
        "10s",
        "-s",
        str(SCRIPT),
        url,
        "--",
        product,
        "" if license_id is None else str(license_id),
        str(load.span),
        str(load.pause_ms),
        tag,
        token or "",
    ]
    started = time.monotonic()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    found = _SUMMARY.search(output)
    if proc.returncode != 0 or not found:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{output}")
    values = {k: int(v) for k, v in (pair.split("=") for pair in found.group(1).split())}
    return LoadResult(
        requests=values["requests"],
        seconds=values["duration_us"] / 1e6,
        errors=values["errors"],
        socket_errors=values["socket_errors"],
        p50_ms=values["p50_us"] / 1000,
        p90_ms=values["p90_us"] / 1000,
        p99_ms=values["p99_us"] / 1000,
        max_ms=values["max_us"] / 1000,
        client_cpu=(usage.ru_utime + usage.ru_stime) / wall,
    )


def call(url: str, method: str, path: str, body: Any = None, timeout: float = 120.0) -> Any:
    """One JSON request; raises on an answer that is not 2xx."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        raw = response.read()
    return json.loads(raw) if raw[:1] in (b"{", b"[") else raw.decode()
