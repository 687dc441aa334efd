"""The affinity scenario: which ``cpuAffinity`` default serves users best, measured.

Pinning the server to one CPU (``auto``) won the plain register mix: the interpreter lock
is then never handed between cores. Two hosts where it might lose are imitated here, each
server run once with ``auto`` (one CPU) and once with ``all`` (every CPU), in alternating
rounds so that machine noise hits both alike:

- **logins**: authentication mode, the register mix with a bearer token while clients log
  in at ``LOGIN_RATE`` per second. argon2 hashes run in the request threads, so with
  ``auto`` they share the one CPU with every register.
- **busy neighbour**: the register mix in open mode while another process, started after
  the server chose its CPU, keeps that CPU busy (``auto`` cannot see a neighbour that
  comes later, nor one the kernel's scheduler puts there).

Reported for each: register throughput and p99, and for logins the login latency.
"""

from __future__ import annotations

import base64
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench.load import Load, LoadResult, call, run_wrk
from bench.processes import Process, ServerSettings, floatkey_server, terminate
from bench.register import PRODUCT, add_bench_license, describe, measured
from bench.report import Report
from floatkey.app import affinity

#: Logins per second during the logins case (each one argon2 verify in a request thread).
LOGIN_RATE = 5.0
USER, PASSWORD = "bench", "bench-password-not-secret"


@dataclass
class Case:
    name: str
    logins: bool
    neighbour: bool


CASES = (Case("logins", logins=True, neighbour=False), Case("busy neighbour", logins=False, neighbour=True))


def affinity_scenario(
    report: Report, workdir: Path, load: Load, rounds: int, warmup: float, settings: ServerSettings
) -> None:
    report.section("cpuAffinity: auto (one CPU) vs all (every CPU)")
    allowed = affinity.allowed_cpus()
    if allowed is None or len(allowed) < 2:
        report.note("left out: this machine lets the process run on fewer than two CPUs")
        return
    cpu = affinity.choose(affinity.AUTO, allowed, affinity.pinned_elsewhere())
    report.fact(
        "load", f"{load.connections} keep-alive clients, {load.seconds:g} s per run, {rounds} round(s)"
    )
    report.fact("auto", f"pinned to CPU {cpu} (the CPU auto chooses here)")
    for case in CASES:
        results: dict[str, list[tuple[LoadResult, list[float]]]] = {"auto": [], "all": []}
        for r in range(rounds):
            for setting in ("auto", "all"):
                pinned = cpu if setting == "auto" else "all"
                result = _run(
                    workdir / f"{case.name}-{setting}-{r}", case, pinned, cpu, load, warmup, settings
                )
                results[setting].append(result)
                run, logins = result
                line = describe(run, 0.0).split("  server CPU")[0]
                if logins:
                    line += f"  logins p50 {_pct(logins, 50):.0f} ms p99 {_pct(logins, 99):.0f} ms"
                report.fact(f"{case.name}, round {r + 1}, {setting}", line)
        for setting, runs in results.items():
            thr = statistics.median(run.throughput for run, _ in runs)
            p99 = statistics.median(run.p99_ms for run, _ in runs)
            summary = f"median {thr:.0f} req/s, p99 {p99:.1f} ms"
            logins = [ms for _, lat in runs for ms in lat]
            if logins:
                summary += f", logins p99 {_pct(logins, 99):.0f} ms ({len(logins)} logins)"
            report.fact(f"{case.name}: {setting}", summary)


def _run(
    workdir: Path,
    case: Case,
    pinned: int | str,
    cpu: int,
    load: Load,
    warmup: float,
    settings: ServerSettings,
) -> tuple[LoadResult, list[float]]:
    data = workdir / "data"
    config = workdir / "floatkey.yaml"
    workdir.mkdir(parents=True, exist_ok=True)
    config.write_text(
        f"threadPool: {settings.thread_pool}\ncpuAffinity: {pinned}\nlogLevel: INFO\n"
        f"userAuthentication: {'true' if case.logins else 'false'}\nhardwareKey:\n  enabled: false\n",
        encoding="utf-8",
    )
    if case.logins:
        subprocess.run(
            [sys.executable, "-m", "floatkey", "users", "add", USER, "--role", "admin", "--password-stdin",
             "--data-dir", str(data)],
            input=PASSWORD + "\n", text=True, check=True, capture_output=True,
        )  # fmt: skip
    server = floatkey_server(data, workdir / "floatkey.log", config)
    neighbour: subprocess.Popen[bytes] | None = None
    try:
        server.start()
        token = _login(server.url) if case.logins else None
        _add_license(server, token)
        if case.neighbour:
            neighbour = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            os.sched_setaffinity(neighbour.pid, {cpu})
        run_wrk(
            server.url, Load(load.connections, load.threads, warmup, load.span), PRODUCT, tag="w", token=token
        )
        logins: list[float] = []
        stop = threading.Event()
        login_thread = threading.Thread(target=_log_in_repeatedly, args=(server.url, stop, logins))
        if case.logins:
            login_thread.start()
        try:
            run, _cores = measured(server, server.url, load, PRODUCT, "m", token=token)
        finally:
            stop.set()
            if case.logins:
                login_thread.join()
        return run, logins
    finally:
        if neighbour is not None:
            terminate(neighbour, 5)
        server.stop()


def _add_license(server: Process, token: str | None) -> None:
    if token is None:
        add_bench_license(server.url)
        return
    request = urllib.request.Request(
        server.url + "/api/v4/licenses",
        data=b'{"product": "bench", "floating_users": 1000000, "floating_timeout": 60}',
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        answer.read()


def _login(url: str) -> str:
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    request = urllib.request.Request(url + "/auth", headers={"Authorization": f"Basic {basic}"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        import json

        return str(json.loads(answer.read())["token"])


def _log_in_repeatedly(url: str, stop: threading.Event, latencies: list[float]) -> None:
    """Log in every 1/LOGIN_RATE seconds until ``stop``; record each login's latency in ms."""
    period = 1.0 / LOGIN_RATE
    next_at = time.monotonic()
    while not stop.is_set():
        started = time.monotonic()
        try:
            _login(url)
            latencies.append((time.monotonic() - started) * 1000)
        except OSError:
            latencies.append(float("inf"))
        next_at += period
        stop.wait(max(0.0, next_at - time.monotonic()))


def _pct(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


__all__ = ["affinity_scenario", "call"]
