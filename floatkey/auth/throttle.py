"""Login throttling: a sliding window of failed attempts per key (a username, an address).

Pure: the caller passes the time. A key is throttled while it has ``max_failures``
failures inside the last ``window`` seconds; it is free again when the oldest of those
leaves the window, which is what ``retry_after`` answers.

Failures are recorded when a verification fails, so a burst of guesses sent at the same
moment can pass the check together before the first failure lands: the limit can be
exceeded by the number of guesses in flight at that moment (bounded by the server's
worker threads), once per window. Counting attempts in flight instead would refuse a
fleet of honest clients that log in together behind one address.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable, Iterable
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


class Throttle:
    def __init__(self, max_failures: int, window: float, max_keys: int = 100_000) -> None:
        if max_failures < 1 or window <= 0:
            raise ValueError("max_failures must be at least 1 and window more than 0")
        self.max_failures = max_failures
        self.window = window
        #: Above this many tracked keys, keys with no failure in the window are dropped.
        #: Each key keeps at most ``max_failures`` times, so memory stays bounded.
        self.max_keys = max_keys
        self._failures: dict[Hashable, deque[float]] = {}

    def retry_after(self, keys: Iterable[Hashable], now: float) -> int | None:
        """Whole seconds until every key in ``keys`` may try again, or None if none is throttled."""
        wait = 0.0
        for key in keys:
            times = self._recent(key, now)
            if times is not None and len(times) >= self.max_failures:
                wait = max(wait, times[0] + self.window - now)
        return max(1, math.ceil(wait)) if wait > 0 else None

    def fail(self, keys: Iterable[K], now: float) -> list[K]:
        """Record a failed attempt on each key; answers the keys this failure throttled."""
        throttled = []
        for key in keys:
            times = self._recent(key, now)
            if times is None:
                if len(self._failures) >= self.max_keys:
                    self.prune(now)
                times = self._failures[key] = deque(maxlen=self.max_failures)
            before = len(times)
            times.append(now)
            if before < self.max_failures <= len(times):
                throttled.append(key)
        return throttled

    def forget(self, key: Hashable) -> None:
        """Clear a key's failures (a successful login clears its username, not its address)."""
        self._failures.pop(key, None)

    def prune(self, now: float) -> None:
        """Drop every key without a failure inside the window."""
        for key in list(self._failures):
            self._recent(key, now)

    def __len__(self) -> int:
        return len(self._failures)

    def _recent(self, key: Hashable, now: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times
