"""A license's usage totals over a period, from its stored buckets (usage reports).

Per series (the license "" or a feature code): consumptions and refusals by code of the
buckets that start in the period (so back-to-back periods never count a bucket twice),
the peak seats of every bucket the period overlaps and the seats held as it began, and
the seat-seconds: each bucket's own (pro rata when the period cuts it), and where no
bucket was kept, the seats held before carried on. The open minute's seat-seconds run
only until ``now``, so its share is taken of that part. A bucket stored before
seat-seconds were kept counts its closing seats over its span, and the totals say they
are estimated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from floatkey.usage.buckets import TIERS, Bucket, Place


@dataclass
class SeriesTotals:
    consumptions: int = 0
    peak_seats: int = 0
    seat_seconds: float = 0.0
    refusals: dict[str, int] = field(default_factory=dict)
    #: Part of the seat-seconds came from buckets that did not keep them.
    estimated: bool = False

    def as_json(self) -> dict[str, object]:
        answer: dict[str, object] = {
            "consumptions": self.consumptions,
            "peak_seats": self.peak_seats,
            "seat_hours": round(self.seat_seconds / 3600, 6),
            "refusals": dict(sorted(self.refusals.items())),
        }
        if self.estimated:
            answer["seat_hours_estimated"] = True
        return answer


def totals(
    places: Mapping[Place, Bucket], start: float, end: float, now: float | None = None
) -> dict[str, SeriesTotals]:
    """Totals of every series over ``[start, end)`` (seconds since the epoch); ``now``:
    when the open minute's seat-seconds end (default: the end of the period)."""
    by_series: dict[str, list[tuple[int, int, Bucket]]] = {}
    for (tier, series, begin), bucket in places.items():
        by_series.setdefault(series, []).append((begin, TIERS[tier].step, bucket))
    return {
        series: series_totals(sorted(buckets, key=lambda b: b[0]), start, end, end if now is None else now)
        for series, buckets in sorted(by_series.items())
    }


def series_totals(
    buckets: list[tuple[int, int, Bucket]], start: float, end: float, now: float
) -> SeriesTotals:
    """Totals of one series whose ``(start, step, bucket)`` are given in time order."""
    result = SeriesTotals()
    cursor, seats = start, 0
    for begin, step, bucket in buckets:
        finish = begin + step
        if finish <= start:
            seats = bucket.seats
            continue
        if begin >= end:
            break
        if cursor == start:
            result.peak_seats = max(result.peak_seats, seats)  # held as the period began
        result.seat_seconds += seats * max(0, begin - cursor)
        overlap = min(end, finish) - max(start, begin)
        if bucket.seat_seconds is None:
            result.seat_seconds += bucket.seats * overlap
            result.estimated = True
        else:
            covered = max(min(finish, now) - begin, 1e-9)  # the open minute: until now
            result.seat_seconds += bucket.seat_seconds * min(1.0, overlap / covered)
        result.peak_seats = max(result.peak_seats, bucket.peak)
        if begin >= start:
            result.consumptions += bucket.consumptions
            for code, n in bucket.denials.items():
                result.refusals[code] = result.refusals.get(code, 0) + n
        cursor, seats = min(end, finish), bucket.seats
    if cursor == start:
        result.peak_seats = max(result.peak_seats, seats)
    result.seat_seconds += seats * max(0, end - cursor)
    return result
