"""What ``GET /api/v4/usage`` asks and answers: the window, its points, the CSV form.

A query names a window ``[from, to)`` and a step (``minute``, ``hour``, ``day`` or whole
seconds). Points start at multiples of the step since the epoch (midnight UTC for days);
each holds every stored bucket that starts within it, whatever its tier, so a one-minute
step over history older than two days shows one point per stored hour. A point with no
bucket carries the seats of the point before it (the seats held did not change).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from floatkey.errors import FloatkeyError
from floatkey.timeutil import as_utc, format_time
from floatkey.usage.buckets import DAY, HOUR, MINUTE, Bucket, merge

STEPS = {"minute": MINUTE, "hour": HOUR, "day": DAY}
MIN_STEP = MINUTE
MAX_STEP = 99_999_999
#: Most points one answer holds (a day of minutes, or four years of days).
MAX_POINTS = 1500
#: The window when ``from`` is not given: this long before ``to``.
DEFAULT_SPAN = DAY


@dataclass(frozen=True)
class Window:
    start: int
    end: int
    step: int

    @property
    def points(self) -> range:
        first = self.start - self.start % self.step
        return range(first, self.end, self.step)


def window(fields: Mapping[str, Any], now: datetime) -> Window:
    """The window a query asks for; a bad field is a ``validation_error``, a window the
    answer cannot hold a ``usage_range_not_valid``, each saying what to send instead."""
    to = as_utc(fields.get("to"), "to") or now
    since = as_utc(fields.get("from"), "from") or to - timedelta(seconds=DEFAULT_SPAN)
    start, end = int(since.timestamp()), int(to.timestamp())
    step = _step(fields.get("step"), end - start)
    if start >= end:
        raise FloatkeyError(
            "usage_range_not_valid", f"'from' ({format_time(since)}) must be before 'to' ({format_time(to)})."
        )
    points = len(Window(start, end, step).points)
    if points > MAX_POINTS:
        raise FloatkeyError(
            "usage_range_not_valid",
            f"The window holds {points} points of {step} s; at most {MAX_POINTS} are answered. "
            "Ask for a larger step or a shorter window.",
        )
    return Window(start, end, step)


def _step(value: Any, span: int) -> int:
    if value is None or value == "":
        # The finest named step whose points fit in one answer.
        for seconds in STEPS.values():
            if span / seconds <= MAX_POINTS - 1:
                return seconds
        return DAY
    if isinstance(value, str) and value.strip().lower() in STEPS:
        return STEPS[value.strip().lower()]
    number = value if isinstance(value, int) and not isinstance(value, bool) else None
    if isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    if number is None or not MIN_STEP <= number <= MAX_STEP:
        raise FloatkeyError(
            "validation_error",
            f"The field 'step' must be minute, hour, day or whole seconds from {MIN_STEP} "
            f"to {MAX_STEP}; got {str(value)[:40]!r}.",
        )
    return number


#: series ("" for the license) -> start -> bucket, starts in time order
History = Mapping[str, Mapping[int, Bucket]]


def points(history: History, win: Window) -> list[dict[str, Any]]:
    """The answer's buckets: one per point of ``win``, license first, then its features."""
    features = sorted(s for s in history if s)
    merged = {series: _per_point(buckets, win) for series, buckets in history.items()}
    answer = []
    for t in win.points:
        point = _shape(merged.get("", {}).get(t))
        point["time"] = format_time(datetime.fromtimestamp(t, UTC))
        point["features"] = {code: _shape(merged[code].get(t)) for code in features}
        answer.append(point)
    return answer


def _per_point(buckets: Mapping[int, Bucket], win: Window) -> dict[int, Bucket]:
    """The buckets of one series merged by point; empty points carry the seats before them."""
    first = win.points.start
    carried: Bucket | None = None
    by_point: dict[int, Bucket] = {}
    for start in sorted(buckets):
        bucket = buckets[start]
        if start < first:
            carried = bucket
            continue
        if start >= win.end:
            break
        t = start - (start - first) % win.step
        by_point[t] = merge(by_point[t], bucket) if t in by_point else bucket.copy()
    result = {}
    for t in win.points:
        if t in by_point:
            point = by_point[t]
            if carried is not None and carried.seats > point.peak:
                point.peak = carried.seats  # held when the point began
            carried = result[t] = point
        elif carried is not None:
            carried = result[t] = Bucket(carried.seats, carried.seats)
    return result


def _shape(bucket: Bucket | None) -> dict[str, Any]:
    if bucket is None:
        return {"seats_in_use": 0, "peak": 0, "consumptions": 0, "denials": {}}
    return {
        "seats_in_use": bucket.seats,
        "peak": bucket.peak,
        "consumptions": bucket.consumptions,
        "denials": dict(sorted(bucket.denials.items())),
    }


def to_csv(answer: Mapping[str, Any]) -> str:
    """The JSON answer as CSV: one row per point and series (feature empty for the license),
    one ``denied_<code>`` column per refusal code the answer holds."""
    rows = []
    for point in answer["buckets"]:
        rows.append((point["time"], "", point))
        rows.extend((point["time"], code, f) for code, f in point["features"].items())
    codes = sorted({code for _, _, r in rows for code in r["denials"]})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        ["time", "feature", "seats_in_use", "peak", "consumptions", *(f"denied_{c}" for c in codes)]
    )
    for time, feature, r in rows:
        writer.writerow(
            [
                time,
                feature,
                r["seats_in_use"],
                r["peak"],
                r["consumptions"],
                *(r["denials"].get(c, 0) for c in codes),
            ]
        )
    return out.getvalue()
