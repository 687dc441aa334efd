"""Usage buckets and their tiers: the arithmetic of usage history, as plain data.

A bucket holds what happened to one *series* (a license, or one floating or consumption
feature of it) during ``[start, start + step)``: the seats held when it ended (``seats``),
the most held at once (``peak``), the consumptions metered and the requests refused, by
error code. Times are whole seconds since the Unix epoch, UTC. ``seat_seconds`` is the
integral of the seats held over the bucket's whole span (seats carried in from before it
included), so seat-hours add up across buckets; None for buckets stored before it was kept.

History is kept in ``TIERS``: one-minute buckets for two days, hourly ones for ninety
days, daily ones for ten years. ``compact`` merges the buckets a tier no longer keeps
into the next coarser one and drops what the last tier no longer keeps, so one series
never holds more than ``max_buckets()`` buckets, however long the server runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

MINUTE = 60
HOUR = 3600
DAY = 86400


@dataclass(frozen=True)
class Tier:
    """Buckets of ``step`` seconds, kept for ``keep`` seconds after they start."""

    step: int
    keep: int


#: Finest first; each step divides the next.
TIERS: tuple[Tier, ...] = (
    Tier(MINUTE, 2 * DAY),
    Tier(HOUR, 90 * DAY),
    Tier(DAY, 3660 * DAY),
)


@dataclass(slots=True)
class Bucket:
    """One series during one step; mutable, since the license actor fills its open bucket."""

    seats: int = 0
    peak: int = 0
    consumptions: int = 0
    denials: dict[str, int] = field(default_factory=dict)
    seat_seconds: float | None = 0.0

    def sample(self, held: int) -> None:
        """The series holds ``held`` seats now."""
        self.seats = held
        if held > self.peak:
            self.peak = held

    def deny(self, code: str) -> None:
        self.denials[code] = self.denials.get(code, 0) + 1

    def copy(self) -> Bucket:
        return Bucket(self.seats, self.peak, self.consumptions, dict(self.denials), self.seat_seconds)


def merge(earlier: Bucket, later: Bucket) -> Bucket:
    """One bucket for both time spans: seats as ``later`` ended, peak the higher, counts summed."""
    denials = dict(earlier.denials)
    for code, n in later.denials.items():
        denials[code] = denials.get(code, 0) + n
    return Bucket(
        seats=later.seats,
        peak=max(earlier.peak, later.peak),
        consumptions=earlier.consumptions + later.consumptions,
        denials=denials,
        seat_seconds=add_seat_seconds(earlier.seat_seconds, later.seat_seconds),
    )


def add_seat_seconds(a: float | None, b: float | None) -> float | None:
    """Unknown (a bucket stored before seat-seconds were kept) stays unknown."""
    return None if a is None or b is None else a + b


def align(t: int, step: int) -> int:
    """The start of the ``step``-long bucket holding second ``t``."""
    return t - t % step


#: A stored bucket's place: tier index, series ("" for the license, else a feature code), start.
Place = tuple[int, str, int]


def compact(stored: Mapping[Place, Bucket], now: int) -> tuple[list[Place], dict[Place, Bucket]]:
    """What to delete and what to put so that every tier keeps only its span at ``now``.

    A bucket of tier ``i`` that starts before ``now - keep`` (aligned down to the next
    tier's step, so a coarse bucket is never made of half its span) is merged into the
    next tier's bucket that holds it; the last tier drops such buckets.
    """
    work = dict(stored)
    deletes: set[Place] = set()
    puts: set[Place] = set()
    for index, tier in enumerate(TIERS):
        last = index == len(TIERS) - 1
        coarse = None if last else TIERS[index + 1].step
        cutoff = align(now - tier.keep, coarse or tier.step)
        old = sorted(p for p in work if p[0] == index and p[2] < cutoff)
        #: coarse buckets made in this pass -> their members, in time order
        members: dict[Place, list[tuple[int, Bucket]]] = {}
        for place in old:  # sorted: by series, then time, so merges run earliest first
            bucket = work.pop(place)
            if place in stored:
                deletes.add(place)
            puts.discard(place)
            if coarse is None:
                continue
            target = (index + 1, place[1], align(place[2], coarse))
            if target in work:
                work[target] = merge(work[target], bucket)
            else:
                work[target] = bucket.copy()
                members[target] = []
            if target in members:
                members[target].append((place[2], bucket))
            puts.add(target)
        for target, made_of in members.items():
            assert coarse is not None
            carry = seats_before(stored, target[1], target[2])
            work[target].seat_seconds = covered_seat_seconds(target[2], coarse, tier.step, made_of, carry)
    return sorted(deletes), {p: work[p] for p in sorted(puts)}


def seats_before(stored: Mapping[Place, Bucket], series: str, t: int) -> int:
    """The seats held as second ``t`` began: those of the series' latest bucket before it."""
    latest = max((p for p in stored if p[1] == series and p[2] < t), key=lambda p: p[2], default=None)
    return 0 if latest is None else stored[latest].seats


def covered_seat_seconds(
    start: int, span: int, step: int, made_of: list[tuple[int, Bucket]], carry: int
) -> float | None:
    """The seat-seconds of ``[start, start + span)`` from its ``step``-long buckets (in time
    order): where no bucket was kept, the seats held did not change, so they carry on."""
    total = 0.0
    cursor, seats = start, carry
    for begin, bucket in made_of:
        if bucket.seat_seconds is None:
            return None
        total += seats * max(0, begin - cursor) + bucket.seat_seconds
        cursor, seats = begin + step, bucket.seats
    return total + seats * max(0, start + span - cursor)


def max_buckets() -> int:
    """The most buckets one series can hold after ``compact`` (each tier's span, plus the
    buckets of the next tier's step still waiting to be merged)."""
    total = 0
    for index, tier in enumerate(TIERS):
        coarse = TIERS[index + 1].step if index + 1 < len(TIERS) else tier.step
        total += (tier.keep + coarse) // tier.step + 1
    return total


def fold(buckets: Iterable[tuple[int, Bucket]]) -> Bucket | None:
    """One bucket for buckets given in time order (None for none)."""
    result: Bucket | None = None
    for _, bucket in buckets:
        result = bucket.copy() if result is None else merge(result, bucket)
    return result
