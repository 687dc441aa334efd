"""Timestamps from clients and from embedding code: every value out of range is a client error."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from floatkey.errors import FloatkeyError
from floatkey.timeutil import as_utc, parse_time


def test_offsets_and_bare_dates_become_utc():
    assert parse_time("2026-12-31T18:00:00+02:00", "f") == datetime(2026, 12, 31, 16, tzinfo=UTC)
    assert parse_time("2026-12-31", "f") == datetime(2026, 12, 31, tzinfo=UTC)
    assert parse_time("9999-12-31T23:59:59Z", "f") == datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert parse_time("0001-01-01T00:00:00Z", "f") is None


@pytest.mark.parametrize(
    "text",
    [
        "9999-12-31T23:59:59-05:00",  # past year 9999 once in UTC
        "9999-12-31T23:00:00.5-01:00",
        "10000-01-01T00:00:00Z",
        "2026-02-30",
        "2026-13-01T00:00:00Z",
    ],
)
def test_out_of_range_times_are_validation_errors_naming_the_field(text):
    with pytest.raises(FloatkeyError) as err:
        parse_time(text, "borrowed_until")
    assert err.value.code == "validation_error"
    assert "borrowed_until" in err.value.message


def test_embedding_times_must_be_aware_and_in_range():
    assert as_utc(None, "f") is None
    plus_two = timezone(timedelta(hours=2))
    assert as_utc(datetime(2026, 1, 1, 2, tzinfo=plus_two), "f") == datetime(2026, 1, 1, tzinfo=UTC)
    assert as_utc("2026-01-01", "f") == datetime(2026, 1, 1, tzinfo=UTC)
    minus_five = timezone(timedelta(hours=-5))
    for bad in (datetime(2026, 1, 1), datetime(9999, 12, 31, 23, tzinfo=minus_five), 1767225600):
        with pytest.raises(FloatkeyError) as err:
            as_utc(bad, "borrowed_until")
        assert err.value.code == "validation_error"
        assert "borrowed_until" in err.value.message


def test_only_the_zero_time_means_none_other_year_one_times_are_times():
    """A date in year 1 is not "none": taken as such, a validity_period of 0001-06-01 made
    a license that never expires."""
    assert parse_time("0001-01-01T00:00:00-05:00", "f") is None
    assert parse_time("0001-01-01T00:00:00.000Z", "f") is None
    assert parse_time("0001-06-01T00:00:00Z", "f") == datetime(1, 6, 1, tzinfo=UTC)
    with pytest.raises(FloatkeyError) as err:
        parse_time("0001-01-01T01:00:00+05:00", "validity_period")  # year 0 in UTC
    assert err.value.code == "validation_error" and "validity_period" in err.value.message
