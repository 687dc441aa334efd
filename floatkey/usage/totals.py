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


#: series -> (step, start) of a bucket cell -> what earlier reports counted of it (below)
Reported = Mapping[str, Mapping[tuple[int, int], SeriesTotals]]


def totals(
    places: Mapping[Place, Bucket],
    start: float,
    end: float,
    now: float | None = None,
    reported: Reported | None = None,
) -> dict[str, SeriesTotals]:
    """Totals of every series over ``[start, end)`` (seconds since the epoch); ``now``:
    when the open minute's seat-seconds end (default: the end of the period).

    ``reported``: what the report that ended at ``start`` counted of the buckets ``start``
    falls in (``reported_cells``); such a bucket then counts here for the rest, so that
    back-to-back reports neither lose nor repeat what happened in the minute (or, once
    compacted, the hour or day) they meet in.
    """
    by_series: dict[str, list[tuple[int, int, Bucket]]] = {}
    for (tier, series, begin), bucket in places.items():
        by_series.setdefault(series, []).append((begin, TIERS[tier].step, bucket))
    until = end if now is None else now
    return {
        series: series_totals(
            sorted(buckets, key=lambda b: b[0]), start, end, until, (reported or {}).get(series, {})
        )
        for series, buckets in sorted(by_series.items())
    }


def reported_cells(
    places: Mapping[Place, Bucket], end: float, now: float, reported: Reported | None = None
) -> dict[str, dict[tuple[int, int], SeriesTotals]]:
    """For each tier's step, the totals within ``[cell start, end)`` of the bucket cell that
    ``end`` falls in: what a report ending at ``end`` (with those before it) counted of it.
    ``reported``: the cells of the report before, when this one began in the same cells."""
    cells: dict[str, dict[tuple[int, int], SeriesTotals]] = {}
    for tier in TIERS:
        first = int(end) - int(end) % tier.step
        if first >= end:
            continue
        for series, sums in totals(places, first, end, now, reported).items():
            cells.setdefault(series, {})[(tier.step, first)] = sums
    return cells


def series_totals(
    buckets: list[tuple[int, int, Bucket]],
    start: float,
    end: float,
    now: float,
    reported: Mapping[tuple[int, int], SeriesTotals] | None = None,
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
        done = (reported or {}).get((step, begin)) if begin < start else None
        if done is not None:
            _add_rest(result, bucket, done, start, min(end, finish), min(finish, now))
        else:
            _add_share(result, bucket, begin, start, min(end, finish), min(finish, now))
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


def _add_share(
    result: SeriesTotals, bucket: Bucket, begin: int, start: float, stop: float, known: float
) -> None:
    """Seat-seconds of the part ``[max(start, begin), stop)`` of ``bucket``, pro rata of what
    it holds (the open minute holds them only until ``known``, i.e. now)."""
    overlap = stop - max(start, begin)
    if bucket.seat_seconds is None:
        result.seat_seconds += bucket.seats * overlap
        result.estimated = True
    else:
        result.seat_seconds += bucket.seat_seconds * min(1.0, overlap / max(known - begin, 1e-9))


def _add_rest(
    result: SeriesTotals, bucket: Bucket, done: SeriesTotals, start: float, stop: float, known: float
) -> None:
    """What ``bucket`` holds beyond what the report before counted of it (``done``)."""
    result.consumptions += max(0, bucket.consumptions - done.consumptions)
    for code, n in bucket.denials.items():
        rest = n - done.refusals.get(code, 0)
        if rest > 0:
            result.refusals[code] = result.refusals.get(code, 0) + rest
    if bucket.seat_seconds is None:
        result.seat_seconds += bucket.seats * (stop - start)
        result.estimated = True
    else:
        rest_seconds = max(0.0, bucket.seat_seconds - done.seat_seconds)
        result.seat_seconds += rest_seconds * min(1.0, (stop - start) / max(known - start, 1e-9))
