"""The features scenario: what usage history, metrics, the audit trail and the request log
each cost the register mix (docs/benchmarks.md, "Features pay their way").

Per feature, one floatkey server with only that feature off and a twin with every feature
on, all on the same settings and pinned to the same CPU, each with its own data directory
and license (a twin per pair, so that both servers of a pair have served the same runs:
a single "on" server shared by every pair served four times the runs, held more seats and
history, and came out slower even against the control). Each round measures every
feature as a pair of adjacent runs, its "on" twin and its "off" server, the pair's order
alternating from one round to the next: a first version drove the servers in a fixed
order (on, usage off, metrics off, ...) and the first run of every round came out about
5 % slower, the control included, so position, not the features, made the difference. A
feature's ratio is its on/off throughput over its pairs: the lower of the median of the
pairs' ratios and best against best (``judged_ratio``), with the same rule for the server
CPU each request took (off/on), which a busy machine disturbs less than throughput.

Metrics have a setting (``metrics.enabled: false``: no request timing, no commit
histograms, no /metrics; the collectors run only when /metrics is scraped, so the mix
never runs them). Usage history, the audit trail's request origin and the request log are
left out with ``FLOATKEY_BENCH_WITHOUT`` (floatkey/app/bench_switches.py). The audit trail
records admin actions only, and works out a request's origin only when it records one
(web/audit.py): on the register mix ``audit`` leaves out nothing the mix does, a control
whose ratio shows the method's own spread.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from bench.load import Load, LoadResult, run_wrk
from bench.processes import Process, ServerSettings, floatkey_server, server_lines
from bench.register import PRODUCT, add_bench_license, describe, describe_rounds, judged_ratio, measured
from bench.report import Report
from floatkey.app import bench_switches

#: docs/benchmarks.md (Bars): each feature costs the register mix at most 5 %.
RATIO_GOAL = 0.95


@dataclass(frozen=True)
class Variant:
    name: str
    #: What the report calls the feature.
    feature: str
    config: str = ""
    without: str = ""


ALL_ON = Variant("on", "every feature on")
VARIANTS = (
    Variant("usage", "usage history", without=bench_switches.USAGE),
    Variant("metrics", "metrics (request timing, commit histograms)", config="metrics:\n  enabled: false\n"),
    Variant("audit", "audit trail (a control: nothing per request)", without=bench_switches.AUDIT),
    Variant("requestLog", "request log (request ids, log fields)", without=bench_switches.REQUEST_LOG),
)


@dataclass
class Runs:
    results: list[LoadResult]
    #: Server CPU microseconds per request, one per run.
    cpu_us: list[float]


def features_scenario(
    report: Report, workdir: Path, load: Load, rounds: int, warmup: float, settings: ServerSettings
) -> None:
    report.section("features: each one off against all on")
    report.fact("load", describe_rounds(load, rounds, warmup))
    report.fact(
        "servers",
        f"{2 * len(VARIANTS)} floatkey servers (per feature: one with it off, a twin with all on), "
        f"threadPool {settings.thread_pool}, cpuAffinity {settings.cpu_affinity}, driven one at a time",
    )
    # Each feature's "off" server has a twin with every feature on, so that both of a pair
    # have served the same runs: one "on" server shared by every pair served four times the
    # runs, held more seats and history, and came out slower even against the control.
    servers: dict[tuple[Variant, Variant], Process] = {}
    try:
        for variant in VARIANTS:
            for which in (ALL_ON, variant):
                name = f"{variant.name}-{'on' if which is ALL_ON else 'off'}"
                servers[variant, which] = start_variant(workdir / name, which, settings)
                add_bench_license(servers[variant, which].url)
        warm = Load(connections=load.connections, threads=load.threads, seconds=warmup, span=load.span)
        for server in servers.values():
            run_wrk(server.url, warm, PRODUCT, tag="w")
        #: Per feature, its "off" runs and the "on" runs paired with them.
        pairs = {variant: (Runs([], []), Runs([], [])) for variant in VARIANTS}
        for i in range(rounds):
            for variant in VARIANTS:
                on, off = pairs[variant]
                order = [(ALL_ON, on), (variant, off)]
                for which, runs in order if i % 2 == 0 else reversed(order):
                    server = servers[variant, which]
                    result, cores = measured(
                        server, server.url, load, PRODUCT, f"{which.name[:2]}{variant.name[:2]}{i}"
                    )
                    runs.results.append(result)
                    runs.cpu_us.append(cpu_per_request(result, cores))
                    report.fact(
                        f"round {i + 1} {variant.name}: {'on' if which is ALL_ON else 'off'}",
                        f"{describe(result, cores)}  {runs.cpu_us[-1]:.0f} us CPU/request",
                    )
        every_on = Runs(
            [r for on, _ in pairs.values() for r in on.results],
            [c for on, _ in pairs.values() for c in on.cpu_us],
        )
        report.fact(
            "all on (median run)",
            f"{median_run(every_on.results).throughput:.0f} req/s, "
            f"p99 {median_run(every_on.results).p99_ms:.1f} ms, "
            f"{statistics.median(every_on.cpu_us):.0f} us CPU/request",
        )
        for variant in VARIANTS:
            judge(report, variant, *pairs[variant])
    finally:
        for server in servers.values():
            server.stop()


def start_variant(workdir: Path, variant: Variant, settings: ServerSettings) -> Process:
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "floatkey.yaml"
    config.write_text(server_lines(settings) + variant.config, encoding="utf-8")
    env = {bench_switches.ENV: variant.without} if variant.without else None
    return floatkey_server(workdir / "data", workdir / "floatkey.log", config, env).start()


def cpu_per_request(result: LoadResult, cores: float) -> float:
    return cores * result.seconds / result.requests * 1e6 if result.requests else 0.0


def judge(report: Report, variant: Variant, on: Runs, off: Runs) -> None:
    """Report a feature's cost: throughput and CPU per request, with it on against off."""
    ratios = [a.throughput / b.throughput for a, b in zip(on.results, off.results, strict=True)]
    report.fact(f"{variant.name} off (median round)", summary(off))
    ratio = judged_ratio(report, on.results, off.results, ratios)
    cpu_ratios = [b / a for a, b in zip(on.cpu_us, off.cpu_us, strict=True) if a]
    cpu = min(statistics.median(cpu_ratios), min(off.cpu_us) / min(on.cpu_us)) if cpu_ratios else 0.0
    report.fact(
        f"{variant.name} cost",
        f"throughput on/off {ratio:.2f}; server CPU per request off/on {cpu:.2f} "
        f"({statistics.median(on.cpu_us) - statistics.median(off.cpu_us):+.0f} us with it on); "
        f"p99 on {median_run(on.results).p99_ms:.1f} ms, off {median_run(off.results).p99_ms:.1f} ms",
    )
    errors = sum(r.errors + r.socket_errors for r in on.results + off.results)
    report.bar(
        f"{variant.feature} cost", f"{ratio:.2f}", f">= {RATIO_GOAL}", ratio >= RATIO_GOAL and errors == 0
    )


def summary(runs: Runs) -> str:
    run = median_run(runs.results)
    return (
        f"{run.throughput:.0f} req/s, p50 {run.p50_ms:.1f} ms, p99 {run.p99_ms:.1f} ms, "
        f"{statistics.median(runs.cpu_us):.0f} us CPU/request"
    )


def median_run(runs: list[LoadResult]) -> LoadResult:
    return sorted(runs, key=lambda r: r.throughput)[len(runs) // 2]
