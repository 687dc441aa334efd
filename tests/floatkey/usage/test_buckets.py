"""The arithmetic of usage history, without threads or storage."""

from floatkey.usage.buckets import DAY, HOUR, MINUTE, TIERS, Bucket, compact, max_buckets, merge
from floatkey.usage.recorder import Recorder


def test_merge_keeps_the_later_seats_the_higher_peak_and_sums_the_counts():
    earlier = Bucket(seats=3, peak=5, consumptions=2, denials={"floating_not_available": 1})
    later = Bucket(
        seats=1, peak=2, consumptions=4, denials={"floating_not_available": 2, "license_expired": 1}
    )
    assert merge(earlier, later) == Bucket(1, 5, 6, {"floating_not_available": 3, "license_expired": 1})
    assert earlier.denials == {"floating_not_available": 1}  # inputs unchanged


def test_sample_tracks_the_last_and_the_most_seats():
    bucket = Bucket()
    for held in (1, 4, 2):
        bucket.sample(held)
    assert (bucket.seats, bucket.peak) == (2, 4)


def test_compact_moves_old_minutes_into_their_hour_and_keeps_recent_ones():
    now = 10 * DAY + 30 * MINUTE
    old_hour = now - 3 * DAY - (now - 3 * DAY) % HOUR
    stored = {
        (0, "", old_hour): Bucket(2, 2, 1),
        (0, "", old_hour + MINUTE): Bucket(1, 3, 1, {"floating_not_available": 1}),
        (0, "", now - MINUTE): Bucket(4, 4),
        (1, "", old_hour): Bucket(0, 1, 10),  # compacted before
    }
    deletes, puts = compact(stored, now)
    assert deletes == [(0, "", old_hour), (0, "", old_hour + MINUTE)]
    assert puts == {(1, "", old_hour): Bucket(1, 3, 12, {"floating_not_available": 1})}


def test_compact_cascades_through_the_tiers_and_drops_what_the_last_keeps_no_longer():
    now = 4000 * DAY
    stored = {(0, "f", 100 * DAY + 5 * MINUTE): Bucket(1, 1), (2, "", 7 * DAY): Bucket(1, 1)}
    deletes, puts = compact(stored, now)
    assert set(deletes) == {(0, "f", 100 * DAY + 5 * MINUTE), (2, "", 7 * DAY)}
    assert puts == {}  # the minute went through hour and day, and is older than ten years
    deletes, puts = compact({(0, "f", now - 100 * DAY): Bucket(2, 3)}, now)
    # Its two seats were held for the rest of that day: the day's seat-seconds count them.
    assert puts == {(2, "f", now - 100 * DAY): Bucket(2, 3, seat_seconds=2 * (DAY - MINUTE))}


def test_a_series_stays_within_its_bound_however_long_it_runs():
    stored: dict = {}
    bound = max_buckets()
    assert bound < 10_000
    t = 0
    end = 3700 * DAY
    while t < end:  # ten years of an event every two days, then three days of one every 7 minutes
        stored[(0, "", t - t % MINUTE)] = Bucket(1, 1, 1)
        if t < end - 3 * DAY or t % HOUR < 7 * MINUTE:  # compacted when an hour begins
            deletes, puts = compact(stored, t)
            for place in deletes:
                del stored[place]
            stored.update(puts)
            assert len(stored) <= bound
            assert all(start >= t - TIERS[tier].keep - DAY for tier, _, start in stored)
        t += 2 * DAY if t < end - 3 * DAY else 7 * MINUTE
    total = sum(b.consumptions for (tier, _, start), b in stored.items() if start >= t - 3600 * DAY)
    assert total > 0
    assert {tier for tier, _, _ in stored} == {0, 1, 2}


def test_the_recorder_closes_a_minute_when_an_event_falls_in_a_later_one():
    recorder = Recorder()
    recorder.bucket("", 125.0, 1).consumptions += 2
    recorder.bucket("f", 130.0, 1).deny("floating_not_available")
    assert not recorder.has_closed and recorder.end == 180
    recorder.bucket("", 185.0, 2)
    assert recorder.has_closed
    closed = recorder.take_closed(185.0)
    # One seat from 125 s (license) and from 130 s (feature) to the minute's end.
    assert closed == [
        (
            120,
            {
                "": Bucket(1, 1, 2, seat_seconds=55.0),
                "f": Bucket(1, 1, 0, {"floating_not_available": 1}, seat_seconds=50.0),
            },
        )
    ]
    assert recorder.take_closed(239.0) == []
    # The quiet minute ended: one seat carried in for 5 s, then two for 55 s.
    assert recorder.take_closed(240.0) == [(180, {"": Bucket(2, 2, seat_seconds=5.0 + 110.0)})]
    assert recorder.end == 0 and recorder.pending() == []


def test_an_hour_compacted_from_its_minutes_keeps_the_seats_held_between_them() -> None:
    now = 10 * DAY
    hour = now - 3 * DAY
    stored = {
        (0, "", hour - HOUR): Bucket(2, 2, seat_seconds=120.0),  # two seats held into the hour
        (0, "", hour + 10 * MINUTE): Bucket(3, 3, seat_seconds=150.0),  # 2 for 30 s, then 3
    }
    _, puts = compact(stored, now)
    # 2 seats for the first ten minutes, the minute's own 150 s, 3 seats for the 49 left.
    assert puts[(1, "", hour)].seat_seconds == 2 * 600 + 150 + 3 * 49 * 60
    legacy = {(0, "", hour + MINUTE): Bucket(1, 1, seat_seconds=None)}
    assert compact(legacy, now)[1][(1, "", hour)].seat_seconds is None  # unknown stays unknown


def test_a_seeded_recorder_counts_the_seats_held_before_the_first_event() -> None:
    recorder = Recorder()
    recorder.seed("", 2, 100.0)  # a license actor starts with two seats held
    recorder.bucket("", 130.0, 3)
    assert recorder.pending(150.0)[0][1][""].seat_seconds == 2 * 10 + 3 * 20  # from 120 s on
    recorder.close(until=170.0)  # the server stops before the minute ends
    assert recorder.take_closed(170.0) == [(120, {"": Bucket(3, 3, seat_seconds=2 * 10 + 3 * 40)})]
