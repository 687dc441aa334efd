"""What the benchmark ran on: machine, load at the start, and the versions that matter."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gib() -> float:
    try:
        with open("/proc/meminfo", encoding="utf-8") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def wrk_version() -> str:
    try:
        out = subprocess.run(["wrk", "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def describe() -> list[tuple[str, str]]:
    """(label, value) pairs, in the order the report prints them."""
    return [
        ("machine", f"{os.cpu_count()} cores, {cpu_model()}, {memory_gib():.1f} GiB RAM"),
        ("system", f"{platform.system()} {platform.release()}"),
        ("load average at start", load_average()),
        ("python", platform.python_version()),
        (
            "versions",
            ", ".join(
                f"{n} {package_version(n)}"
                for n in ("floatkey", "CherryPy", "cheroot", "pykka", "lmdb", "msgpack")
            ),
        ),
        ("load tool", wrk_version()),
    ]
