"""Pinning the server process to one CPU (the ``cpuAffinity`` setting).

floatkey's Python code runs under one interpreter lock: whatever the core count, one
thread runs Python at a time, and a request passes that lock between several threads
(the HTTP worker, the license actor, the storage writer). When those threads are spread
over several CPUs, every hand-off wakes a thread on another CPU, which on a VM is a
costly inter-processor interrupt, while the lock sits idle. On one CPU a hand-off is a
plain context switch. Measured on 2 cores (docs/benchmarks.md): about 30 % more
throughput and a third of the tail latency.
"""

from __future__ import annotations

import logging
import os

from floatkey.errors import ConfigError

logger = logging.getLogger(__name__)

AUTO = "auto"
ALL = "all"


def allowed_cpus() -> set[int] | None:
    """The CPUs this process may run on, or None where the platform cannot pin."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    return set(os.sched_getaffinity(0))


def choose(setting: str | int, allowed: set[int]) -> int | None:
    """The CPU to pin to for ``setting`` given the ``allowed`` ones; None leaves the process alone.

    ``auto`` takes the highest-numbered allowed CPU: CPU 0 is where most systems route
    the bulk of their interrupts.
    """
    if setting == ALL:
        return None
    if setting == AUTO:
        return max(allowed)
    if isinstance(setting, int) and not isinstance(setting, bool):
        if setting not in allowed:
            raise ConfigError(
                f"cpuAffinity: CPU {setting} is not one this process may run on "
                f"(allowed: {format_cpus(allowed)})"
            )
        return setting
    raise ConfigError(f"cpuAffinity: must be auto, all or a CPU number, not {setting!r}")


def pin(setting: str | int) -> int | None:
    """Apply ``setting`` to every thread of this process; returns the CPU, or None."""
    allowed = allowed_cpus()
    if allowed is None:
        if setting not in (AUTO, ALL):
            raise ConfigError("cpuAffinity: this platform cannot pin a process to a CPU; use auto or all")
        return None
    cpu = choose(setting, allowed)
    if cpu is None:
        return None
    for tid in _threads():
        try:
            os.sched_setaffinity(tid, {cpu})
        except ProcessLookupError:
            continue  # the thread ended meanwhile
    logger.info("pinned to CPU %d (cpuAffinity: %s; allowed: %s)", cpu, setting, format_cpus(allowed))
    return cpu


def _threads() -> list[int]:
    try:
        return [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        return [0]  # the calling thread; threads started later inherit its affinity


def format_cpus(cpus: set[int]) -> str:
    """``{0, 1, 2, 5}`` -> ``0-2,5``, as in /proc/PID/status."""
    parts: list[str] = []
    ordered = sorted(cpus)
    start = prev = ordered[0]
    for cpu in [*ordered[1:], None]:
        if cpu is not None and cpu == prev + 1:
            prev = cpu
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if cpu is not None:
            start = prev = cpu
    return ",".join(parts)
