"""The register scenario: the register mix against floatkey and against the bare CherryPy
ceiling, in alternating rounds of one run, so that machine noise hits both alike.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from bench.load import Load, LoadResult, call, run_wrk
from bench.processes import Process, ServerSettings, ceiling_server, floatkey_server, server_lines
from bench.report import Report
from bench.vendor_license import LOCAL, VENDOR, config_lines, create_vendor, import_license

#: docs/benchmarks.md: register throughput at least this share of the ceiling's.
RATIO_GOAL = 0.8
#: docs/benchmarks.md: p99 at half the saturated rate under this. At saturation the bar is
#: relative: p99 no worse than the ceiling's own in the same run (with 64 closed-loop clients,
#: Little's law ties the mean to 64 / throughput, so an absolute figure measures the machine).
P99_GOAL_MS = 25.0
PRODUCT = "bench"


#: The license every scenario loads: seats enough that none is ever refused.
POLICY = {"floating_users": 1_000_000, "floating_timeout": 60}


def write_config(path: Path, server: ServerSettings, extra: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(server_lines(server) + extra, encoding="utf-8")
    return path


def add_bench_license(url: str, product: str = PRODUCT, vendor_dir: Path | None = None) -> int:
    """The benchmark's license, added from a policy, or imported from a file of the vendor
    in ``vendor_dir`` (bench/vendor_license.py)."""
    if vendor_dir is not None:
        return int(import_license(url, vendor_dir, product, POLICY)["id"])
    answer = call(url, "POST", "/api/v4/licenses", {"product": product, **POLICY})
    return int(answer["id"])


def measured(
    server: Process, url: str, load: Load, product: str, tag: str, token: str | None = None
) -> tuple[LoadResult, float]:
    """One load run and the server's CPU use during it, in cores."""
    cpu = server.cpu_seconds()
    result = run_wrk(url, load, product, tag=tag, token=token)
    return result, (server.cpu_seconds() - cpu) / result.seconds


def describe(result: LoadResult, server_cores: float) -> str:
    return (
        f"{result.throughput:7.0f} req/s  p50 {result.p50_ms:6.1f} ms  p99 {result.p99_ms:6.1f} ms  "
        f"max {result.max_ms:6.1f} ms  non-200 {result.errors}  socket errors {result.socket_errors}  "
        f"server CPU {server_cores:.2f} cores  client CPU {result.client_cpu:.2f} cores"
    )


def describe_rounds(load: Load, rounds: int, warmup: float) -> str:
    """The load of a scenario that alternates two targets in rounds."""
    return (
        f"{load.connections} keep-alive clients (wrk, {load.threads} threads), {load.seconds:g} s "
        f"per run, {rounds} alternating round(s), warm-up {warmup:g} s"
    )


def register_scenario(
    report: Report,
    workdir: Path,
    load: Load,
    rounds: int,
    warmup: float,
    settings: ServerSettings,
    license_source: str = LOCAL,
) -> None:
    report.section("register mix: floatkey vs the bare CherryPy ceiling")
    report.fact("load", describe_rounds(load, rounds, warmup))
    report.fact(
        "mix",
        f"register / re-register / unregister of {load.span} users per wrk thread "
        f"(at most {load.span * load.threads} live seats on one license)",
    )
    report.fact("both servers", f"threadPool {settings.thread_pool}, cpuAffinity {settings.cpu_affinity}")
    vendor_dir = create_vendor(workdir / "vendor").parent if license_source == VENDOR else None
    report.fact("license", "imported from a vendor license file" if vendor_dir else "added from a policy")
    config = write_config(workdir / "floatkey.yaml", settings, config_lines(vendor_dir) if vendor_dir else "")
    ceiling = ceiling_server(settings, workdir / "ceiling.log")
    server = floatkey_server(workdir / "data", workdir / "floatkey.log", config)
    try:
        ceiling.start()
        server.start()
        report.fact("start-up, empty data dir", f"{server.ready_after:.2f} s (process start to listening)")
        add_bench_license(server.url, vendor_dir=vendor_dir)
        warm = Load(connections=load.connections, threads=load.threads, seconds=warmup, span=load.span)
        run_wrk(ceiling.url, warm, PRODUCT)
        run_wrk(server.url, warm, PRODUCT, tag="w")
        ceilings: list[LoadResult] = []
        floatkeys: list[LoadResult] = []
        ratios: list[float] = []
        for i in range(rounds):
            c, c_cpu = measured(ceiling, ceiling.url, load, PRODUCT, "c")
            f, f_cpu = measured(server, server.url, load, PRODUCT, "m")
            ceilings.append(c)
            floatkeys.append(f)
            ratios.append(f.throughput / c.throughput)
            report.fact(f"round {i + 1} ceiling", describe(c, c_cpu))
            report.fact(f"round {i + 1} floatkey", describe(f, f_cpu))
        ratio = judged_ratio(report, floatkeys, ceilings, ratios)
        fk = _median_run(floatkeys)
        bare = _median_run(ceilings)
        report.fact(
            "floatkey (median round)",
            f"{fk.throughput:.0f} req/s, p50 {fk.p50_ms:.1f} ms, p99 {fk.p99_ms:.1f} ms",
        )
        report.fact("ceiling (median round)", f"{bare.throughput:.0f} req/s, p99 {bare.p99_ms:.1f} ms")
        busiest = max(r.client_cpu for r in ceilings + floatkeys)
        report.fact("client headroom", f"wrk used at most {busiest:.2f} cores in any run")
        report.bar("register vs ceiling", f"{ratio:.2f}", f">= {RATIO_GOAL}", ratio >= RATIO_GOAL)
        report.bar(
            "register p99 at saturation",
            f"{fk.p99_ms:.1f} ms",
            f"<= the ceiling's {bare.p99_ms:.1f} ms",
            fk.p99_ms <= bare.p99_ms and fk.errors == 0,
        )
        paced_latency(report, server, ceiling, load, fk.throughput)
    finally:
        server.stop()
        ceiling.stop()


def paced_latency(report: Report, server: Process, ceiling: Process, load: Load, saturated: float) -> None:
    """p99 when the same clients pause between requests, offering about half the saturated rate.

    The ceiling gets the same paced load, to show how much of the tail is CherryPy's own.
    """
    paced = half_load(load, saturated)
    result, cores = measured(server, server.url, paced, PRODUCT, "p")
    bare, bare_cores = measured(ceiling, ceiling.url, paced, PRODUCT, "q")
    report.fact("paced load", f"clients pause {paced.pause_ms} ms between requests")
    report.fact("paced floatkey", describe(result, cores))
    report.fact("paced ceiling", describe(bare, bare_cores))
    report.bar(
        "register p99 at half load",
        f"{result.p99_ms:.1f} ms",
        f"< {P99_GOAL_MS:g} ms",
        result.p99_ms < P99_GOAL_MS and result.errors == 0,
    )


def half_load(load: Load, saturated: float) -> Load:
    """``load`` with each client pausing so that together they offer half of ``saturated`` req/s."""
    pause_ms = max(1, int(1000 * load.connections / (0.5 * saturated)))
    return Load(
        connections=load.connections,
        threads=load.threads,
        seconds=load.seconds,
        span=load.span,
        pause_ms=pause_ms,
    )


def judged_ratio(
    report: Report, tested: list[LoadResult], reference: list[LoadResult], ratios: list[float]
) -> float:
    """The ratio a bar is judged on: the lower of the median per-round ratio and best/best.

    A stall of this shared VM can slow any single run by a factor of four, and noise only
    ever slows a run down: best against best compares what each could do, the median
    guards against one lucky round. Taking the lower of the two never flatters.
    """
    best = max(r.throughput for r in tested) / max(r.throughput for r in reference)
    median = statistics.median(ratios)
    report.fact("ratio", f"median of rounds {median:.2f}, best round against best round {best:.2f}")
    return min(best, median)


def _median_run(runs: list[LoadResult]) -> LoadResult:
    return sorted(runs, key=lambda r: r.throughput)[len(runs) // 2]
