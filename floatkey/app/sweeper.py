"""The sweeper: frees seats whose time ran out, with or without traffic."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from floatkey.actors import license as lic
from floatkey.actors.directory import IndexHolder
from floatkey.errors import FloatkeyError

logger = logging.getLogger(__name__)

#: Licenses swept at once (see Sweeper).
SWEEP_GROUP = 4
#: Share of the time a long sweep may take: between groups it rests three times as long
#: as the last group took.
SWEEP_SHARE = 0.25


class Sweeper:
    """Every ``interval`` seconds, has the license actors with a seat due free it.

    Licenses are swept ``SWEEP_GROUP`` at a time, each group finished before the next
    starts, and a long sweep rests between groups so that it takes at most ``SWEEP_SHARE``
    of the time. All at once, a wave of timeouts over 1,000 licenses woke 1,000 actor
    threads together and queued 100,000 deletions in front of every client's write; a
    client's request waited behind all of it (p99 at half load 59 -> 148 ms through the
    wave). Now few actors run at once, and the wave's second of work is spread over a few
    (docs/benchmarks.md). A rest never exceeds the sweep interval, and a sweep of one
    group (up to four licenses with seats due at once, the usual case) never rests.
    """

    def __init__(
        self, holder: IndexHolder, interval: float, clock: Callable[[], datetime], timeout: float
    ) -> None:
        self._holder = holder
        self._interval = interval
        self._clock = clock
        self._timeout = timeout
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="seat-sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self.sweep_due()
            except Exception:
                logger.exception("a sweep failed; the next one runs in %g s", self._interval)

    def sweep_due(self) -> int:
        """Sweep every license with a seat due now; returns how many were swept."""
        now = self._clock()
        entries = self._holder.current.by_id
        due = [
            entries[license_id]
            for license_id, at in list(self._holder.due.items())
            if at is not None and now >= at and license_id in entries
        ]
        began = 0.0  # when the current group was told; read from the second group on
        for start in range(0, len(due), SWEEP_GROUP):
            if start:
                rest = min((time.monotonic() - began) * (1 / SWEEP_SHARE - 1), self._interval)
                if self._stopped.wait(rest):
                    break
            began = time.monotonic()
            group = []
            for entry in due[start : start + SWEEP_GROUP]:
                try:
                    group.append((entry.license_id, lic.send(entry.ref, lic.Sweep())))
                except FloatkeyError:
                    logger.debug("license %d removed during a sweep", entry.license_id)
            for license_id, ticket in group:
                if self._stopped.is_set():
                    break
                try:
                    ticket.result(self._timeout)
                except FloatkeyError as exc:
                    logger.warning("license %d failed to sweep its seats: %s", license_id, exc.message)
                except Exception:
                    logger.exception("license %d failed to sweep its seats", license_id)
        return len(due)
