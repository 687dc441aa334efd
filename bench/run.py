"""Run the benchmarks of the quality bars (docs/benchmarks.md): machine, versions, figures, ratios.

    python -m bench.run            # the full run (a few minutes)
    python -m bench.run --quick    # a smoke run (under a minute), figures are rough
    python -m bench.run --only register --rounds 5 --seconds 15

Scenarios: ``register`` (the register mix against floatkey and against the bare CherryPy
ceiling, alternating in one run), ``scale`` (many live registrations across many licenses:
resident memory, restart time, and the register load through a full timeout wave), and
``keybound`` (the same mix on a license bound to a virtual key through the benchmark's own
pcscd and vpcd, against a plain license of the same server, alternating in one run; left
out with a note when pcscd or pyscard is missing or another pcscd runs). ``affinity``, run
only by name, compares cpuAffinity auto and all with logins in the mix and with a busy
neighbour on the chosen CPU (bench/affinity.py). ``features``, run only by name, measures
what usage history, metrics, the audit trail and the request log each cost the mix, each
off against all on in interleaved rounds (bench/features.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import machine
from bench.affinity import affinity_scenario
from bench.features import features_scenario
from bench.keybound import keybound_scenario
from bench.load import Load
from bench.processes import ServerSettings
from bench.register import register_scenario
from bench.report import Report
from bench.scale_run import scale_scenario
from bench.vendor_license import LOCAL, SOURCES
from floatkey.app import affinity

SCENARIOS = ("register", "scale", "keybound", "affinity", "features")
#: What a run measures unless told: the bars. ``affinity`` decides a default and
#: ``features`` runs five servers: run them by name.
DEFAULT_SCENARIOS = ("register", "scale", "keybound")


@dataclass(frozen=True)
class Plan:
    load: Load
    rounds: int
    warmup: float
    licenses: int
    seats_per_license: int
    server: ServerSettings


FULL = Plan(
    Load(seconds=10.0), rounds=3, warmup=3.0, licenses=1000, seats_per_license=100, server=ServerSettings()
)
QUICK = Plan(
    Load(seconds=4.0), rounds=1, warmup=1.0, licenses=100, seats_per_license=100, server=ServerSettings()
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="short runs and 10,000 registrations")
    p.add_argument(
        "--only",
        default=",".join(DEFAULT_SCENARIOS),
        help=f"comma-separated scenarios of {', '.join(SCENARIOS)} (default: {', '.join(DEFAULT_SCENARIOS)})",
    )
    p.add_argument("--seconds", type=float, help="seconds of each measured load")
    p.add_argument("--rounds", type=int, help="alternating ceiling/floatkey rounds of the register mix")
    p.add_argument("--connections", type=int, help="concurrent keep-alive clients (default 64)")
    p.add_argument("--span", type=int, help="users per wrk thread in the mix (live seats = span x threads)")
    p.add_argument("--licenses", type=int, help="licenses of the scale scenario")
    p.add_argument("--seats", type=int, help="live registrations per license in the scale scenario")
    p.add_argument("--thread-pool", type=int, help="threadPool of every server (default: floatkey's default)")
    p.add_argument(
        "--cpu-affinity",
        type=affinity.setting_from_text,
        help="cpuAffinity of every server: auto, all or a CPU number (default: auto)",
    )
    p.add_argument(
        "--license-source",
        choices=SOURCES,
        default=LOCAL,
        help="register and keybound: licenses added from a policy (local) or imported from "
        "vendor license files the benchmark signs (vendor)",
    )
    p.add_argument("--workdir", type=Path, help="where data directories and logs go (default: a temp dir)")
    p.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    return p.parse_args(argv)


def make_plan(args: argparse.Namespace) -> Plan:
    plan = QUICK if args.quick else FULL
    load = plan.load
    if args.seconds:
        load = Load(**{**asdict(load), "seconds": args.seconds})
    if args.span:
        load = Load(**{**asdict(load), "span": args.span})
    if args.connections:
        load = Load(**{**asdict(load), "connections": args.connections})
    return Plan(
        load=load,
        rounds=args.rounds or plan.rounds,
        warmup=plan.warmup,
        licenses=args.licenses or plan.licenses,
        seats_per_license=args.seats or plan.seats_per_license,
        server=ServerSettings(
            thread_pool=args.thread_pool or plan.server.thread_pool,
            cpu_affinity=same_cpu(
                plan.server.cpu_affinity if args.cpu_affinity is None else args.cpu_affinity
            ),
        ),
    )


def same_cpu(setting: str | int) -> str | int:
    """``auto`` made explicit, so that every server of the run gets the same CPU.

    Left to itself, a server started while another is pinned avoids that one's CPU.
    """
    allowed = affinity.allowed_cpus()
    if setting != affinity.AUTO or allowed is None:
        return setting
    chosen = affinity.choose(setting, allowed, affinity.pinned_elsewhere())
    return setting if chosen is None else chosen


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = make_plan(args)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        print(f"unknown scenario(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    logging.getLogger("floatkey").setLevel(logging.ERROR)
    report = Report()
    report.section("machine")
    for label, value in machine.describe():
        report.fact(label, value)
    report.fact("command", "python -m bench.run " + " ".join(sys.argv[1:] if argv is None else argv))
    with tempfile.TemporaryDirectory(prefix="floatkey-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        if "register" in chosen:
            register_scenario(
                report,
                workdir / "register",
                plan.load,
                plan.rounds,
                plan.warmup,
                plan.server,
                args.license_source,
            )
        if "scale" in chosen:
            scale_scenario(
                report, workdir / "scale", plan.load, plan.licenses, plan.seats_per_license, plan.server
            )
        if "features" in chosen:
            features_scenario(report, workdir / "features", plan.load, plan.rounds, plan.warmup, plan.server)
        if "affinity" in chosen:
            affinity_scenario(report, workdir / "affinity", plan.load, plan.rounds, plan.warmup, plan.server)
        if "keybound" in chosen:
            keybound_scenario(
                report,
                workdir / "keybound",
                plan.load,
                plan.rounds,
                plan.warmup,
                plan.server,
                args.license_source,
            )
    report.summary()
    if args.json:
        args.json.write_text(json.dumps(report.as_dict(), indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
