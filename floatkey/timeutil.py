"""Timestamps on the wire: RFC 3339 in UTC with a ``Z`` out, any offset or a bare date in."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from floatkey.errors import FloatkeyError

ZERO_TIME = "0001-01-01T00:00:00Z"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ZERO = datetime(1, 1, 1)


def utcnow() -> datetime:
    return datetime.now(UTC)


def format_time(value: datetime | None) -> str | None:
    """``2026-11-28T10:00:00Z`` (microseconds kept when present), or None."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat()[:-6] + "Z"  # drop "+00:00"


def parse_time(value: object, field: str) -> datetime | None:
    """Parse a client timestamp; None or the zero time mean "none".

    Raises ``validation_error`` naming ``field`` for anything else.
    """
    if value is None or value == "" or value == ZERO_TIME:
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise _bad(field, value)
    text = value.strip()
    try:
        if _DATE.fullmatch(text):
            return datetime.fromisoformat(text).replace(tzinfo=UTC)
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise _bad(field, value) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if parsed.replace(tzinfo=None) == _ZERO:
        return None  # the zero time, whatever offset the client's language gave it
    return _to_utc(parsed, field)


def as_utc(value: object, field: str) -> datetime | None:
    """A time handed over by embedding code (or a client string), in UTC; None stays None.

    A naive datetime is refused rather than guessed at: ``datetime.now()`` is local time.
    """
    if value is None or isinstance(value, str):
        return parse_time(value, field)
    if not isinstance(value, datetime):
        raise _bad(field, value)
    if value.tzinfo is None or value.utcoffset() is None:
        raise FloatkeyError(
            "validation_error",
            f"{field} must be a timezone-aware datetime such as datetime.now(UTC), not the naive {value!r}",
        )
    return _to_utc(value, field)


def _to_utc(value: datetime, field: str) -> datetime:
    """``value`` in UTC; a time that falls outside years 1 to 9999 once in UTC is refused."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise FloatkeyError(
            "validation_error",
            f"{field} is out of range: {value.isoformat()} falls outside years 1 to 9999 "
            "once converted to UTC; send a time no later than 9999-12-31T23:59:59Z",
        ) from None


def _bad(field: str, value: object) -> FloatkeyError:
    return FloatkeyError(
        "validation_error",
        f"{field} must be an RFC 3339 timestamp such as 2026-12-31T18:00:00Z or a date "
        f"such as 2026-12-31, not {value!r}",
    )
