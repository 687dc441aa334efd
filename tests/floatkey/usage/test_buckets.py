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
    assert puts == {(2, "f", now - 100 * DAY): Bucket(2, 3)}


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
    assert closed == [(120, {"": Bucket(1, 1, 2), "f": Bucket(1, 1, 0, {"floating_not_available": 1})})]
    assert recorder.take_closed(239.0) == []
    assert recorder.take_closed(240.0) == [(180, {"": Bucket(2, 2)})]  # the quiet minute ended
    assert recorder.end == 0 and recorder.pending() == []
