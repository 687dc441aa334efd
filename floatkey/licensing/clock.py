"""The clock guard: licenses with an end date must not be stretched by turning the clock back.

The server keeps the latest time it has seen (persisted at most once a minute). While the
wall clock is earlier than that by more than ``clockRollbackTolerance``, actions on
licenses that have an end date are refused with ``clock_rolled_back``; it clears by
itself once the clock is right again. Logged once when it starts and once when it clears.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from floatkey.errors import FloatkeyError
from floatkey.timeutil import format_time

logger = logging.getLogger(__name__)

#: The latest time seen is written to the data directory at most this often.
PERSIST_EVERY = timedelta(minutes=1)


class ClockGuard:
    """Thread-safe: request threads call :meth:`check`; ``persist`` stores the latest time."""

    def __init__(
        self,
        latest: datetime | None,
        tolerance: timedelta,
        persist: Callable[[datetime], object],
        rolled_back: Callable[[datetime, datetime], object] | None = None,
    ) -> None:
        """``rolled_back(latest, now)`` is called once each time the clock goes back (audit)."""
        self._lock = threading.Lock()
        self._on_rolled_back = rolled_back
        self._latest = latest
        self._persisted = latest
        self._tolerance = tolerance
        self._persist = persist
        self._rolled_back = False

    def observe(self, now: datetime) -> bool:
        """Note ``now``; True while the clock is rolled back beyond the tolerance."""
        store: datetime | None = None
        went_back: tuple[datetime, datetime] | None = None
        with self._lock:
            if self._latest is None or now > self._latest:
                self._latest = now
            rolled = self._latest - now > self._tolerance
            if rolled and not self._rolled_back:
                logger.warning(
                    "the clock reads %s, earlier than %s already seen here: actions on licenses "
                    "with an end date are refused (clock_rolled_back) until the clock is right",
                    format_time(now),
                    format_time(self._latest),
                )
                went_back = (self._latest, now)
            elif self._rolled_back and not rolled:
                logger.info(
                    "the clock is right again (%s): licenses with an end date work again", format_time(now)
                )
            self._rolled_back = rolled
            if not rolled and (self._persisted is None or now - self._persisted >= PERSIST_EVERY):
                self._persisted = store = now
        if store is not None:
            self._persist(store)
        if went_back is not None and self._on_rolled_back is not None:
            self._on_rolled_back(*went_back)
        return rolled

    def check(self, now: datetime) -> None:
        """Raise ``clock_rolled_back`` while the clock is rolled back."""
        if self.observe(now):
            with self._lock:
                latest = self._latest
            raise FloatkeyError(
                "clock_rolled_back",
                f"This machine's clock reads {format_time(now)}, earlier than {format_time(latest)} "
                "which this server has already seen; licenses with an end date are refused until "
                "the clock is set right (use NTP).",
            )

    def status(self, now: datetime) -> dict[str, Any]:
        rolled = self.observe(now)
        with self._lock:
            return {"rolled_back": rolled, "latest_seen": format_time(self._latest)}
