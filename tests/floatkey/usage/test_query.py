"""Windows, points and CSV of the usage answer, without threads or storage."""

import csv
import io
from datetime import UTC, datetime

import pytest

from floatkey.errors import FloatkeyError
from floatkey.usage.buckets import DAY, HOUR, MINUTE, Bucket
from floatkey.usage.query import MAX_POINTS, Window, points, to_csv, window

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def code(fields):
    with pytest.raises(FloatkeyError) as err:
        window(fields, NOW)
    return err.value.code, err.value.message


def test_window_defaults_to_the_last_day_at_the_finest_step_that_fits():
    win = window({}, NOW)
    assert (win.end - win.start, win.step) == (DAY, MINUTE)
    assert window({"from": "2026-01-01"}, NOW).step == HOUR
    assert window({"from": "2023-01-01"}, NOW).step == DAY
    assert window({"step": "Hour"}, NOW).step == HOUR
    assert window({"step": "900"}, NOW).step == 900
    assert window({"step": 120}, NOW).step == 120


def test_bad_windows_name_the_field_and_what_to_send():
    assert code({"step": "fortnight"})[0] == "validation_error"
    assert code({"step": "59"})[0] == "validation_error"
    assert code({"step": True})[0] == "validation_error"
    assert code({"from": "soon"})[0] == "validation_error"
    kind, message = code({"from": "2026-03-03"})
    assert kind == "usage_range_not_valid" and "before" in message
    kind, message = code({"from": "2026-01-01", "step": "minute"})
    assert kind == "usage_range_not_valid" and f"at most {MAX_POINTS}" in message


def test_points_merge_buckets_by_step_and_carry_seats_over_empty_points():
    history = {
        "": {0: Bucket(9, 9), 3 * MINUTE: Bucket(2, 3, 1), 4 * MINUTE: Bucket(1, 4, 2, {"x": 1})},
        "f": {5 * MINUTE: Bucket(1, 1)},
    }
    answer = points(history, Window(2 * MINUTE, 8 * MINUTE, 2 * MINUTE))
    assert [p["time"] for p in answer] == [
        "1970-01-01T00:02:00Z",
        "1970-01-01T00:04:00Z",
        "1970-01-01T00:06:00Z",
    ]
    assert [(p["seats_in_use"], p["peak"], p["consumptions"]) for p in answer] == [
        (2, 9, 1),
        (1, 4, 2),
        (1, 1, 0),
    ]
    assert answer[1]["denials"] == {"x": 1}
    assert [p["features"]["f"]["seats_in_use"] for p in answer] == [0, 1, 1]


def test_csv_holds_the_same_numbers_as_the_json():
    history = {"": {0: Bucket(1, 2, 3, {"b": 1})}, "f": {0: Bucket(0, 1, 0, {"a": 2})}}
    answer = {"buckets": points(history, Window(0, 2 * MINUTE, MINUTE))}
    rows = list(csv.DictReader(io.StringIO(to_csv(answer))))
    assert rows[0] == {
        "time": "1970-01-01T00:00:00Z",
        "feature": "",
        "seats_in_use": "1",
        "peak": "2",
        "consumptions": "3",
        "denied_a": "0",
        "denied_b": "1",
    }
    assert rows[1]["feature"] == "f" and rows[1]["denied_a"] == "2"
    assert len(rows) == 4
