"""The keybound scenario: the register mix on a license bound to a (virtual) hardware key,
and on a plain license of the same server, in alternating rounds of one run.

Everything runs through the real PC/SC stack: the benchmark starts its own
``pcscd --foreground`` (stopped by PID; it refuses to run beside a pcscd it did not start,
since every floatkey server grabs every PIV card it sees), a vendor CA in a temporary
folder, a virtual key (``python -m floatkey virtual-key`` in vpcd's first reader, a process
of its own) certified by that CA, and a floatkey server configured with the CA and the
key's PIN. Every key-bound request goes through the per-action live check
(``KeyGate``, floatkey/hardware/gate.py: one APDU round on the card answers every request
that arrived before it started).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

from bench.load import Load, LoadResult, call, run_wrk
from bench.processes import ROOT, Process, ServerSettings, floatkey_server, server_lines, terminate
from bench.register import POLICY, describe, describe_rounds, judged_ratio, measured
from bench.report import Report
from bench.vendor_license import LOCAL, VENDOR, config_lines, create_vendor, import_license
from tests.support.pcsc import (
    PCSCD_SOCKET,
    card_present,
    list_readers,
    socket_alive,
    vpcd_listening,
    vpcd_ports_free,
)
from tests.support.server import wait_until

#: docs/benchmarks.md: key-bound throughput at least this share of the plain license's.
RATIO_GOAL = 0.9
KEY_SERIAL = 31415926
KEY_PORT = 35963
KEY_READER = "Virtual PCD 00 00"
PIN = "271828"
KEYBOUND, PLAIN = "keybound", "plain"


class Unavailable(Exception):
    """The PC/SC test stack cannot be set up here (missing, or someone else's pcscd runs)."""


class Child:
    """A helper process (pcscd, the virtual key) with its output in a file, stopped by PID."""

    def __init__(self, args: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=log, env=env, cwd=ROOT)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        terminate(self.proc, 15)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-2000:]


def start_pcscd(workdir: Path) -> Child:
    binary = shutil.which("pcscd") or "/usr/sbin/pcscd"
    if not Path(binary).exists():
        raise Unavailable("pcscd is not installed (Debian: apt-get install pcscd vsmartcard-vpcd)")
    try:
        import smartcard  # noqa: F401
    except ImportError as exc:
        raise Unavailable(f"pyscard is not installed ({exc})") from None
    if socket_alive(PCSCD_SOCKET):
        raise Unavailable(
            f"another pcscd already serves {PCSCD_SOCKET}; the benchmark needs the "
            "PC/SC stack to itself (stop that pcscd and any floatkey server using it)"
        )
    # wrk's many connections leave ephemeral ports in TIME_WAIT; vpcd needs two of them.
    wait_until(vpcd_ports_free, 90, interval=0.5, what="vpcd's TCP ports to be free")
    env = {k: v for k, v in os.environ.items() if k != "PCSCLITE_FILTER_IGNORE_READER_NAMES"}
    pcscd = Child([binary, "--foreground"], workdir / "pcscd.log", env)
    try:
        wait_until(
            lambda: not pcscd.alive() or KEY_READER in list_readers(),
            15,
            what="pcscd to list the vpcd readers",
        )
        if not pcscd.alive():
            raise RuntimeError(f"pcscd exited with status {pcscd.proc.returncode}:\n{pcscd.log()}")
        wait_until(vpcd_listening, 10, what="vpcd to listen on its TCP ports")
    except BaseException:
        pcscd.stop()
        raise
    return pcscd


def plug_virtual_key(workdir: Path, ca_dir: Path, pin_file: Path) -> Child:
    args = [
        sys.executable,
        "-m",
        "floatkey",
        "virtual-key",
        "--serial",
        str(KEY_SERIAL),
        "--pin-file",
        str(pin_file),
        "--ca-dir",
        str(ca_dir),
        "--port",
        str(KEY_PORT),
    ]
    key = Child(args, workdir / "virtual-key.log")
    try:
        wait_until(lambda: not key.alive() or card_present(KEY_READER), 15, what=f"a card in {KEY_READER}")
        if not key.alive():
            raise RuntimeError(f"the virtual key exited:\n{key.log()}")
    except BaseException:
        key.stop()
        raise
    return key


def write_key_config(
    workdir: Path, settings: ServerSettings, license_source: str = LOCAL
) -> tuple[Path, Path, Path]:
    """(config, CA folder, PIN file) in ``workdir``: a fresh vendor CA and an owner-only PIN;
    with ``license_source`` vendor, the CA's folder is a whole vendor identity, trusted."""
    from floatkey.hardware.ca import CA_CERT_FILE, create_ca

    ca_dir = workdir / "vendor-ca"
    create_ca(ca_dir)
    vendor = ""
    if license_source == VENDOR:
        create_vendor(ca_dir)
        vendor = config_lines(ca_dir)
    pin_file = workdir / "pin"
    pin_file.write_text(PIN + "\n", encoding="utf-8")
    pin_file.chmod(0o600)
    config = workdir / "floatkey.yaml"
    config.write_text(
        f"{server_lines(settings)}hardwareKey:\n"
        f"  caCertificate: {ca_dir / CA_CERT_FILE}\n  pinFile: {pin_file}\n  pcscTimeout: 1.0\n{vendor}",
        encoding="utf-8",
    )
    return config, ca_dir, pin_file


def key_state(url: str) -> str | None:
    with urllib.request.urlopen(url + "/api/v4/hardware_key", timeout=10) as answer:
        keys = json.loads(answer.read())["keys"]
    return next((k["state"] for k in keys if k["serial"] == str(KEY_SERIAL)), None)


def keybound_scenario(
    report: Report,
    workdir: Path,
    load: Load,
    rounds: int,
    warmup: float,
    settings: ServerSettings,
    license_source: str = LOCAL,
) -> None:
    report.section("key-bound license vs plain license")
    report.fact("load", describe_rounds(load, rounds, warmup))
    report.fact(
        "stack",
        f"own pcscd + vpcd, virtual key {KEY_SERIAL} (floatkey virtual-key, "
        "its own process) certified by a fresh vendor CA, PIN from a file",
    )
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        pcscd = start_pcscd(workdir)
    except Unavailable as exc:
        report.note(f"left out: {exc}")
        return
    key: Child | None = None
    server: Process | None = None
    try:
        config, ca_dir, pin_file = write_key_config(workdir, settings, license_source)
        key = plug_virtual_key(workdir, ca_dir, pin_file)
        server = floatkey_server(workdir / "data", workdir / "floatkey.log", config).start()
        url = server.url
        wait_until(
            lambda: key_state(url) == "valid",
            20,
            what=f"key {KEY_SERIAL} to be valid (another floatkey server may hold the card)",
        )
        add_licenses(report, url, ca_dir if license_source == VENDOR else None)
        _compare(report, server, load, rounds, warmup)
        if key_state(url) != "valid":
            raise RuntimeError("the key stopped being valid during the benchmark")
    finally:
        if server is not None:
            server.stop()
        if key is not None:
            key.stop()
        pcscd.stop()


def add_licenses(report: Report, url: str, vendor_dir: Path | None) -> None:
    """The key-bound and the plain license: from policies, or imported from vendor files
    (the key-bound one's file names the virtual key's serial)."""
    if vendor_dir is not None:
        bound = import_license(url, vendor_dir, KEYBOUND, POLICY, key_bound=True)
        import_license(url, vendor_dir, PLAIN, POLICY)
        report.fact("licenses", f"imported from vendor license files (key-bound: key {KEY_SERIAL})")
        return
    bound = call(url, "POST", "/api/v4/licenses", {"product": KEYBOUND, "isHWKeyReq": True, **POLICY})
    if not bound.get("is_hardware_key_auth"):
        raise RuntimeError(f"the license is not key-bound: {bound}")
    call(url, "POST", "/api/v4/licenses", {"product": PLAIN, **POLICY})
    report.fact("licenses", "added from policies")


def _compare(report: Report, server: Process, load: Load, rounds: int, warmup: float) -> None:
    warm = Load(connections=load.connections, threads=load.threads, seconds=warmup, span=load.span)
    run_wrk(server.url, warm, KEYBOUND, tag="w")
    run_wrk(server.url, warm, PLAIN, tag="w")
    bound_runs: list[LoadResult] = []
    plain_runs: list[LoadResult] = []
    ratios: list[float] = []
    for i in range(rounds):
        b, b_cpu = measured(server, server.url, load, KEYBOUND, f"k{i}")
        p, p_cpu = measured(server, server.url, load, PLAIN, f"p{i}")
        bound_runs.append(b)
        plain_runs.append(p)
        ratios.append(b.throughput / p.throughput)
        report.fact(f"round {i + 1} key-bound", describe(b, b_cpu))
        report.fact(f"round {i + 1} plain", describe(p, p_cpu))
        report.fact(f"round {i + 1} ratio", f"{ratios[-1]:.2f}")
    ratio = judged_ratio(report, bound_runs, plain_runs, ratios)
    kb, pl = _median_run(bound_runs), _median_run(plain_runs)
    report.fact(
        "key-bound (median round)",
        f"{kb.throughput:.0f} req/s, p50 {kb.p50_ms:.1f} ms, p99 {kb.p99_ms:.1f} ms",
    )
    report.fact(
        "plain (median round)", f"{pl.throughput:.0f} req/s, p50 {pl.p50_ms:.1f} ms, p99 {pl.p99_ms:.1f} ms"
    )
    errors = sum(r.errors + r.socket_errors for r in bound_runs + plain_runs)
    report.bar("key-bound vs plain", f"{ratio:.2f}", f">= {RATIO_GOAL}", ratio >= RATIO_GOAL and errors == 0)


def _median_run(runs: list[LoadResult]) -> LoadResult:
    return sorted(runs, key=lambda r: r.throughput)[len(runs) // 2]
