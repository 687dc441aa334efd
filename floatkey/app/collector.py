"""Keeping license actors, which live as long as their license, out of the collector's walks.

A full garbage collection holds the interpreter lock while it walks every tracked object
that is not frozen, and every request waits meanwhile. The server freezes what its
start-up left alive (``freeze_start_up_objects``), but license actors start later, on the first message
to their license (``LicenseCell``): about 42 tracked objects each (thread, inbox, locks,
events, the actor). With 10,000 licenses started, every full collection walked some
420,000 of them and took 100-150 ms, every few seconds under load, and set the half-load
p99. Frozen once started, a full collection takes 5-10 ms.

``ActorFreezer.check`` runs every second (a CherryPy Monitor). Once ``FREEZE_AFTER``
actors have started since the last freeze and none since the last check (the burst is
over), or twice as many whatever the pace, it collects once, then freezes everything
alive. The collection frees what is garbage first, so nothing dead is frozen; what is
frozen is still freed when its last reference goes, except a reference cycle made of
objects alive at that moment (a request in flight), which then outlives its use: a
bounded cost, since a server freezes at most once per ``FREEZE_AFTER`` licenses. The
collection itself stalls requests once, as long as one of the full collections it spares.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

#: License actors started since the last freeze that make the next one worth its collection.
FREEZE_AFTER = 1000


class ActorFreezer:
    """Freezes license actors out of the garbage collector's reach once many have started."""

    def __init__(self, actors_started: Callable[[], int], freeze_after: int = FREEZE_AFTER) -> None:
        """``actors_started``: how many license actors this process has started so far."""
        self._actors_started = actors_started
        self._freeze_after = freeze_after
        self._frozen_at = actors_started()
        self._seen = self._frozen_at

    def check(self) -> bool:
        """Freeze if enough actors started and their burst is over; answers whether it froze."""
        started = self._actors_started()
        settled = started == self._seen
        self._seen = started
        pending = started - self._frozen_at
        # A burst is frozen once it is over; a steady trickle of starts, at twice the count.
        if pending < self._freeze_after or (not settled and pending < 2 * self._freeze_after):
            return False
        began = time.perf_counter()
        collected = gc.collect()
        gc.freeze()
        newly, self._frozen_at = started - self._frozen_at, started
        logger.info(
            "%d license actors started since the last freeze: %d objects now frozen out of garbage "
            "collection, in %.0f ms (%d garbage objects freed first)",
            newly,
            gc.get_freeze_count(),
            (time.perf_counter() - began) * 1000,
            collected,
        )
        return True


def pause_collector_for_start_up() -> None:
    """Collect what the imports left, then no collection until ``freeze_start_up_objects``.

    The start-up makes millions of objects that live as long as the process and hold no
    cycle (the licenses and seats loaded): collections triggered by their number walked
    them all, twice, 0.3-0.8 s of a 1,000,000-seat restart, and found nothing.
    """
    gc.collect()
    gc.disable()


def freeze_start_up_objects() -> int:
    """Hide what start-up left alive (modules, the licenses and seats loaded) from the collector.

    A full collection holds the interpreter lock, so every request waits for it; it walks
    every tracked object, and most of them live as long as the process. Frozen, they are
    never walked again. They are still freed when their last reference goes; only a
    reference cycle among them would outlive its use, and the loaded licenses and seats
    hold none (actor refs point back to their actors weakly). Frozen without a collection
    first: ``pause_collector_for_start_up`` collected before the start-up, which makes no
    garbage worth a walk of everything. Returns how many objects were frozen.
    """
    gc.freeze()
    gc.enable()
    return gc.get_freeze_count()
