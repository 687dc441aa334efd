"""Pinning the server process to one CPU (the ``cpuAffinity`` setting).

floatkey's Python code runs under one interpreter lock: whatever the core count, one
thread runs Python at a time, and a request passes that lock between several threads
(the HTTP worker, the license actor, the storage writer). When those threads are spread
over several CPUs, every hand-off wakes a thread on another CPU, which on a VM is a
costly inter-processor interrupt, while the lock sits idle. On one CPU a hand-off is a
plain context switch. Measured on 2 cores (docs/benchmarks.md): about 30 % more
throughput and a third of the tail latency.

``auto`` avoids a CPU another process is already pinned to alone, so that two floatkey
servers on one machine each get a CPU of their own. It cannot see processes in other
PID namespaces (other containers), nor a server that starts at the very same moment.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Set

from floatkey.errors import ConfigError

logger = logging.getLogger(__name__)

AUTO = "auto"
ALL = "all"


def setting_from_text(text: str | int) -> str | int:
    """A setting as written in a file or on a command line: ``"1"`` means CPU 1."""
    return int(text) if isinstance(text, str) and text.isdigit() else text


def allowed_cpus() -> set[int] | None:
    """The CPUs this process may run on, or None where the platform cannot pin."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    return set(os.sched_getaffinity(0))


def choose(setting: str | int, allowed: Set[int], taken: Set[int] = frozenset()) -> int | None:
    """The CPU to pin to for ``setting`` given the ``allowed`` ones; None leaves the process alone.

    ``auto`` takes the highest-numbered allowed CPU that is not ``taken`` (another process
    is pinned to it alone: a second floatkey on the same machine must not share the first
    one's CPU while another idles), or the highest allowed one if all are taken. High
    numbers first: CPU 0 is where most systems route the bulk of their interrupts.
    """
    if setting == ALL:
        return None
    if setting == AUTO:
        return max(allowed - taken or allowed)
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
    taken = pinned_elsewhere() if setting == AUTO else set()
    cpu = choose(setting, allowed, taken)
    if cpu is None:
        return None
    try:
        for tid in _threads():
            try:
                os.sched_setaffinity(tid, {cpu})
            except ProcessLookupError:
                continue  # the thread ended meanwhile
    except OSError as exc:
        if setting == AUTO:
            logger.warning("could not pin to CPU %d (%s); running unpinned", cpu, exc.strerror or exc)
            return None
        raise ConfigError(f"cpuAffinity: cannot pin to CPU {cpu}: {exc.strerror or exc}") from None
    others = f"; other processes pinned to {format_cpus(taken)}" if taken & allowed else ""
    logger.info(
        "pinned to CPU %d (cpuAffinity: %s; allowed: %s%s)", cpu, setting, format_cpus(allowed), others
    )
    return cpu


def pinned_elsewhere() -> set[int]:
    """CPUs that another user-space process is pinned to, alone (per /proc)."""
    taken: set[int] = set()
    me = os.getpid()
    try:
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return taken
    for pid in pids:
        if pid == me:
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if not cmdline.read(1):
                    continue  # a kernel thread: one per CPU, pinned, and no competition
            # Bytes: the Name: line is whatever the process called itself, in any encoding.
            with open(f"/proc/{pid}/status", "rb") as status:
                for line in status:
                    if line.startswith(b"Cpus_allowed_list:"):
                        cpus = line.split(b":", 1)[1].strip()
                        if cpus.isdigit():
                            taken.add(int(cpus))
                        break
        except OSError:
            continue  # gone, or not ours to read
    return taken


def _threads() -> list[int]:
    try:
        return [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        return [0]  # the calling thread; threads started later inherit its affinity


def format_cpus(cpus: Set[int]) -> str:
    """``{0, 1, 2, 5}`` -> ``0-2,5``, as in /proc/PID/status."""
    if not cpus:
        return "none"
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
