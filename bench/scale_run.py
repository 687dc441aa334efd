"""The scale scenario of the benchmarks, run: seed, restart, measure memory, load through a wave."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import scale
from bench.load import Load, call, run_wrk
from bench.processes import Process, ServerSettings, floatkey_server, server_lines
from bench.register import P99_GOAL_MS, add_bench_license, describe, half_load
from bench.report import Report

#: The bars by size (docs/benchmarks.md, Bars): 100,000 registrations (the default run), then 1,000,000.
RSS_GOAL_MB = 300
RESTART_GOAL_S = 3.0
LARGE_RSS_GOAL_MB = 1000
LARGE_RESTART_GOAL_S = 5.0
#: Seconds of load before the wave is due, so the wave falls inside the measured run.
LEAD = 2.0
#: Seconds of load after the wave is due, at least: the sweeper spreads 100,000 expiries
#: over 3-6 s here, and more in proportion (a rest between groups of four licenses).
WAVE_SECONDS = 8.0
WAVE_SECONDS_PER_SEAT = 8.0 / 100_000


def goals(total: int) -> tuple[float, float]:
    """Resident memory (MB) and restart (s) bars for ``total`` registrations."""
    if total > 100_000:
        return LARGE_RSS_GOAL_MB, LARGE_RESTART_GOAL_S
    return RSS_GOAL_MB, RESTART_GOAL_S


def wave_seconds(total: int) -> float:
    """How long the load runs after the wave is due: the sweeper frees it in that time."""
    return max(WAVE_SECONDS, total * WAVE_SECONDS_PER_SEAT)


#: One line per license and sweep: "N seats of license L expired: 'u1', ...".
_EXPIRED = re.compile(
    r"^(\S+ \S+) INFO floatkey\.actors\.license: (\d+) seats of license \d+ expired:", re.MULTILINE
)


def scale_scenario(
    report: Report, workdir: Path, load: Load, licenses: int, seats: int, settings: ServerSettings
) -> None:
    total = licenses * seats
    report.section(f"scale: {total:,} live registrations across {licenses:,} licenses")
    data_dir = workdir / "data"
    started = time.monotonic()
    scale.add_licenses(data_dir, licenses, seats)
    estimate = scale.seconds_per_seat(data_dir) * total * 1.5 + 3
    wave_in = estimate + 10 + 2 * load.seconds + LEAD + 2  # restart, the saturated and paced runs
    wave_at = datetime.now(UTC) + timedelta(seconds=wave_in)
    wave_mono = time.monotonic() + wave_in
    scale.seed_seats(data_dir, seats, wave_at)
    report.fact(
        "seeding",
        f"{time.monotonic() - started:.1f} s ({licenses} licenses through the embedding "
        f"API, seats written with the rules and storage code; every seat ends at "
        f"{wave_at:%H:%M:%S} UTC)",
    )
    config = workdir / "floatkey.yaml"
    # No hardware keys: the scenario has no key-bound license, and a server watching the
    # readers of a pcscd that others use on the machine had pauses of seconds when their
    # keys came and went (p99 1,347 ms through one wave, docs/benchmarks.md).
    config.write_text(server_lines(settings) + "hardwareKey:\n  enabled: false\n", encoding="utf-8")
    server = floatkey_server(data_dir, workdir / "floatkey.log", config).start()
    try:
        _measure(report, server, load, total, wave_mono)
    finally:
        server.stop()


def _measure(report: Report, server: Process, load: Load, total: int, wave_mono: float) -> None:
    rss_goal, restart_goal = goals(total)
    restart = server.ready_after
    rss = server.rss_bytes() / 1e6
    anon, mapped = server.rss_bytes("RssAnon") / 1e6, server.rss_bytes("RssFile") / 1e6
    # Asks every license: each license's actor starts on its first message, so all are running after.
    live = sum(lic["floating_in_use_devices"] for lic in call(server.url, "GET", "/api/v4/license"))
    started = (
        f"{server.rss_bytes() / 1e6:.0f} MB ({server.rss_bytes('RssAnon') / 1e6:.0f} MB heap and stacks)"
    )
    report.fact("restart", f"{restart:.2f} s from process start to listening, {live:,} live seats loaded")
    report.fact(
        "resident memory",
        f"{rss:.0f} MB after the restart ({anon:.0f} MB heap and stacks, {mapped:.0f} MB of mapped "
        "files, LMDB's pages read at start among them, which the kernel may drop)",
    )
    report.fact("with every actor started", f"{started}, {server.thread_count()} threads")
    report.bar(
        "restart with all registrations",
        f"{restart:.2f} s",
        f"< {restart_goal:g} s",
        restart < restart_goal and live == total,
    )
    add_bench_license(server.url, "wave")
    base, base_cores = _measured(server, load, "b")
    report.fact("load before the wave", describe(base, base_cores))
    paced = half_load(load, base.throughput)
    report.fact("paced load", f"clients pause {paced.pause_ms} ms between requests (half that rate)")
    calm, calm_cores = _measured(server, paced, "c")
    report.fact("paced, before the wave", describe(calm, calm_cores))
    if time.monotonic() > wave_mono - LEAD:
        report.note(
            "seeding and restart took longer than planned: the wave came before the load; "
            "run again (or with fewer --licenses)"
        )
        return
    time.sleep(wave_mono - LEAD - time.monotonic())
    wave_load = Load(
        connections=load.connections,
        threads=load.threads,
        span=load.span,
        seconds=LEAD + max(load.seconds, wave_seconds(total)),
        pause_ms=paced.pause_ms,
    )
    wave, wave_cores = _measured(server, wave_load, "v")
    report.fact("paced, through the wave", describe(wave, wave_cores))
    expired = _wait_for_expiries(server, total, deadline=time.monotonic() + 60 + wave_seconds(total))
    if len(expired) == total:
        report.fact(
            "wave",
            f"all {total:,} seats freed by the sweeper between {expired[0][11:]} and "
            f"{expired[-1][11:]} (log times)",
        )
    else:
        report.note(f"only {len(expired):,} of {total:,} seats expired after the wave's load")
    peak = _peak_rss(server) / 1e6
    report.fact("peak resident memory", f"{peak:.0f} MB over the whole run")
    report.fact(
        "resident memory after the wave",
        f"{server.rss_bytes() / 1e6:.0f} MB ({server.rss_bytes('RssAnon') / 1e6:.0f} MB heap and stacks), "
        f"{server.thread_count()} threads",
    )
    report.bar("resident memory", f"{rss:.0f} MB (peak {peak:.0f} MB)", f"< {rss_goal:g} MB", peak < rss_goal)
    report.bar(
        "register p99 through the wave, half load",
        f"{wave.p99_ms:.1f} ms (before: {calm.p99_ms:.1f} ms)",
        f"< {P99_GOAL_MS:g} ms",
        wave.p99_ms < P99_GOAL_MS and len(expired) == total,
    )


def _measured(server: Process, load: Load, tag: str) -> tuple:
    cpu = server.cpu_seconds()
    result = run_wrk(server.url, load, "wave", tag=tag)
    return result, (server.cpu_seconds() - cpu) / result.seconds


def _wait_for_expiries(server: Process, total: int, deadline: float) -> list[str]:
    while True:
        times = [at for at, count in _EXPIRED.findall(server.log()) for _ in range(int(count))]
        if len(times) >= total or time.monotonic() > deadline:
            return times
        time.sleep(0.5)


def _peak_rss(server: Process) -> int:
    with open(f"/proc/{server.pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0
