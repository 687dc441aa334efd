"""The open minute of one license's usage, kept in memory by its license actor.

The actor notes every change and refusal here (a dictionary look-up and a few integer
updates); when an event falls in a later minute, or the sweeper wakes the license after
its minute ended, the finished buckets are handed over (``take_closed``) to be written
with the license's changes. Nothing here touches storage or threads.
"""

from __future__ import annotations

from floatkey.usage.buckets import TIERS, Bucket

STEP = TIERS[0].step


class Recorder:
    __slots__ = ("_closed", "end", "open", "start")

    def __init__(self) -> None:
        #: series -> its bucket of the open minute
        self.open: dict[str, Bucket] = {}
        self.start = 0
        #: When the open minute ends; 0 when nothing is open.
        self.end = 0
        self._closed: list[tuple[int, dict[str, Bucket]]] = []

    def bucket(self, series: str, now: float, held: int) -> Bucket:
        """The open bucket of ``series`` at ``now`` (seconds), sampled with ``held`` seats."""
        if not self.start <= now < self.end:
            self.close()
            self.start = int(now) - int(now) % STEP
            self.end = self.start + STEP
        bucket = self.open.get(series)
        if bucket is None:
            bucket = self.open[series] = Bucket()
        bucket.sample(held)
        return bucket

    def close(self) -> None:
        """End the open minute (its buckets wait in ``take_closed``)."""
        if self.open:
            self._closed.append((self.start, self.open))
        self.open = {}
        self.start = self.end = 0

    @property
    def has_closed(self) -> bool:
        """Whether a finished minute waits to be written."""
        return bool(self._closed)

    def pending(self) -> list[tuple[int, dict[str, Bucket]]]:
        """Every minute not yet handed over, the open one last (for reads)."""
        return [*self._closed, *([(self.start, self.open)] if self.open else [])]

    def take_closed(self, now: float) -> list[tuple[int, dict[str, Bucket]]]:
        """The finished minutes (start, series -> bucket), oldest first; they are forgotten."""
        if self.end != 0 and now >= self.end:
            self.close()
        closed, self._closed = self._closed, []
        return closed
