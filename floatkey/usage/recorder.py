"""The open minute of one license's usage, kept in memory by its license actor.

The actor notes every change and refusal here (a dictionary look-up and a few integer
updates); when an event falls in a later minute, or the sweeper wakes the license after
its minute ended, the finished buckets are handed over (``take_closed``) to be written
with the license's changes. Nothing here touches storage or threads.

Each bucket also integrates the seats held over its minute (``seat_seconds``): the
recorder remembers, per series, the seats held since the last event, so a minute counts
the seats carried in from before it too.
"""

from __future__ import annotations

from floatkey.usage.buckets import TIERS, Bucket

STEP = TIERS[0].step


class Recorder:
    __slots__ = ("_closed", "_held", "end", "open", "start")

    def __init__(self) -> None:
        #: series -> its bucket of the open minute
        self.open: dict[str, Bucket] = {}
        self.start = 0
        #: When the open minute ends; 0 when nothing is open.
        self.end = 0
        self._closed: list[tuple[int, dict[str, Bucket]]] = []
        #: series -> (seats held, since when): what the next event's seat-seconds start from
        self._held: dict[str, tuple[int, float]] = {}

    def seed(self, series: str, held: int, now: float) -> None:
        """``series`` holds ``held`` seats from ``now`` on (a license actor starting up)."""
        self._held[series] = (held, now)

    def bucket(self, series: str, now: float, held: int) -> Bucket:
        """The open bucket of ``series`` at ``now`` (seconds), sampled with ``held`` seats."""
        if not self.start <= now < self.end:
            self.close()
            self.start = int(now) - int(now) % STEP
            self.end = self.start + STEP
        bucket = self.open.get(series)
        if bucket is None:
            bucket = self.open[series] = Bucket()
        before = self._held.get(series)
        if before is not None:  # the seats held since the last event (or the minute's start)
            seconds = now - (before[1] if before[1] > self.start else self.start)
            if seconds > 0 and bucket.seat_seconds is not None:
                bucket.seat_seconds += before[0] * seconds
        self._held[series] = (held, now)
        bucket.sample(held)
        return bucket

    def _integrate(self, series: str, bucket: Bucket, until: float) -> None:
        """Add to ``bucket`` the seats ``series`` held from its last event (or the minute's
        start) until ``until``."""
        held, since = self._held.get(series, (0, until))
        seconds = until - max(since, self.start)
        if bucket.seat_seconds is not None and seconds > 0:
            bucket.seat_seconds += held * seconds
        self._held[series] = (held, max(since, until))

    def close(self, until: float | None = None) -> None:
        """End the open minute (its buckets wait in ``take_closed``); ``until`` (a server
        stopping) ends its seat-seconds before the minute's end."""
        if self.open:
            end = self.end if until is None else min(until, self.end)
            for series, bucket in self.open.items():
                self._integrate(series, bucket, end)
            self._closed.append((self.start, self.open))
        self.open = {}
        self.start = self.end = 0

    @property
    def has_closed(self) -> bool:
        """Whether a finished minute waits to be written."""
        return bool(self._closed)

    def pending(self, now: float | None = None) -> list[tuple[int, dict[str, Bucket]]]:
        """Every minute not yet handed over, the open one last (for reads); with ``now``,
        the open minute's buckets are copies whose seat-seconds run until ``now``."""
        if not self.open:
            return list(self._closed)
        if now is None:
            return [*self._closed, (self.start, self.open)]
        until = min(max(now, self.start), self.end)
        current = {}
        for series, bucket in self.open.items():
            copy = bucket.copy()
            held, since = self._held.get(series, (0, until))
            seconds = until - max(since, self.start)
            if copy.seat_seconds is not None and seconds > 0:
                copy.seat_seconds += held * seconds
            current[series] = copy
        return [*self._closed, (self.start, current)]

    def take_closed(self, now: float) -> list[tuple[int, dict[str, Bucket]]]:
        """The finished minutes (start, series -> bucket), oldest first; they are forgotten."""
        if self.end != 0 and now >= self.end:
            self.close()
        closed, self._closed = self._closed, []
        return closed
