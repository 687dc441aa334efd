"""Usage history through the embedding API: real actors, real LMDB, a clock the test moves."""

from datetime import UTC, datetime, timedelta

import pytest

from floatkey import Floatkey, FloatkeyError, Settings
from floatkey.storage.records import USAGE, usage_place
from floatkey.usage.buckets import TIERS, max_buckets
from tests.floatkey.app.test_system import Clock
from tests.support.server import wait_until

START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path):
    return Settings(data_dir=tmp_path / "data", expiry_sweep_interval=0.02)


def add(fk):
    return fk.add_license(
        {
            "product": "cad",
            "floating_users": 2,
            "max_consumptions": 100,
            "features": [
                {"code": "fl", "is_floating": True, "floating_users": 1},
                {"code": "meter", "feature_type": "consumption", "max_consumption": 100},
            ],
        }
    )["id"]


def refused(call, *args, **kwargs):
    with pytest.raises(FloatkeyError) as err:
        call(*args, **kwargs)
    return err.value.code


def point(answer, when):
    stamp = when.isoformat().replace("+00:00", "Z")
    return next(p for p in answer["buckets"] if p["time"] == stamp)


def test_seats_refusals_and_consumptions_land_in_their_minute(settings):
    clock = Clock()
    with Floatkey(settings, clock=clock, hardware_keys=False) as fk:
        lid = add(fk)
        fk.register("cad", "a")
        fk.register("cad", "b")
        assert refused(fk.register, "cad", "c") == "floating_not_available"
        fk.unregister("cad", "b")
        fk.add_consumption("cad", 3)
        fk.feature_register("cad", "fl", "a")
        assert refused(fk.feature_register, "cad", "fl", "b") == "registration_not_found"
        fk.add_feature_consumption("cad", "meter", 5)
        clock.advance(minutes=1, seconds=5)
        fk.register("cad", "c")
        answer = fk.usage(lid, START, START + timedelta(minutes=3), "minute")
    first = point(answer, START)
    assert (first["seats_in_use"], first["peak"], first["consumptions"]) == (1, 2, 3)
    assert first["denials"] == {"floating_not_available": 1}
    assert first["features"]["fl"] == {
        "seats_in_use": 1,
        "peak": 1,
        "consumptions": 0,
        "denials": {"registration_not_found": 1},
    }
    assert first["features"]["meter"]["consumptions"] == 5
    second = point(answer, START + timedelta(minutes=1))
    assert (second["seats_in_use"], second["peak"], second["denials"]) == (2, 2, {})
    third = point(answer, START + timedelta(minutes=2))  # nothing happened: the seats carry on
    assert (third["seats_in_use"], third["peak"], third["consumptions"]) == (2, 2, 0)
    assert answer["buckets"][0]["time"] == "2026-03-02T12:00:00Z"
    assert len(answer["buckets"]) == 3


def test_history_survives_a_restart_and_the_quiet_minute_is_written_by_the_sweeper(settings):
    clock = Clock()
    with Floatkey(settings, clock=clock, hardware_keys=False) as fk:
        lid = add(fk)
        fk.register("cad", "a")
        clock.advance(minutes=2)
        # No traffic: the sweeper wakes the license once its minute ended, and it writes it.
        assert wait_until(lambda: any(True for _ in fk.storage.items(USAGE)), timeout=10)
    clock.advance(minutes=1)
    with Floatkey(settings, clock=clock, hardware_keys=False) as fk:
        fk.register("cad", "b")
        assert refused(fk.register, "cad", "c") == "floating_not_available"
    with Floatkey(
        settings, clock=clock, hardware_keys=False
    ) as fk:  # the open minute was written at the stop
        answer = fk.usage(lid, START, START + timedelta(minutes=4), "minute")
    assert point(answer, START)["peak"] == 1
    last = point(answer, START + timedelta(minutes=3))
    assert (last["seats_in_use"], last["denials"]) == (2, {"floating_not_available": 1})


def test_history_stays_bounded_over_years_of_simulated_time(settings):
    clock = Clock()
    with Floatkey(settings, clock=clock, hardware_keys=False) as fk:
        lid = add(fk)
        # Ten years of a seat taken and freed, with three days of minutes every 500 days.
        for step in range(0, 3700 * 24, 61):
            clock.now = START + timedelta(hours=step)
            fk.register("cad", "a")
            fk.unregister("cad", "a")
            if step % 12000 == 0:
                for minute in range(0, 3 * 24 * 60, 29):
                    clock.now = START + timedelta(hours=step, minutes=minute)
                    fk.register("cad", "a")
        clock.now += timedelta(hours=2)
        fk.register("cad", "b")
        places = [usage_place(k) for k, _ in fk.storage.items(USAGE)]
        answer = fk.usage(lid, clock.now - timedelta(days=1000), clock.now, "day")
    now = int(clock.now.timestamp())
    assert len(places) <= max_buckets()
    for tier, _, start in places:
        assert start >= now - TIERS[tier].keep - TIERS[min(tier + 1, len(TIERS) - 1)].step
    assert {tier for tier, _, _ in places} == {0, 1, 2}
    assert sum(p["peak"] for p in answer["buckets"]) > 0


def test_a_refusal_naming_no_feature_of_the_license_counts_under_the_license(settings):
    """Feature codes come from clients: only the license's own make a series, so history stays bounded."""
    with Floatkey(settings, clock=Clock(), hardware_keys=False) as fk:
        lid = add(fk)
        fk.register("cad", "a")
        for code in ("nope1", "nope2"):
            assert refused(fk.feature_register, "cad", code, "a") == "invalid_license_feature_code"
        answer = fk.usage(lid, START, START + timedelta(minutes=1))
    assert answer["buckets"][0]["denials"] == {"invalid_license_feature_code": 2}
    assert answer["buckets"][0]["features"] == {}


def test_a_removed_license_takes_its_history_with_it(settings):
    clock = Clock()
    with Floatkey(settings, clock=clock, hardware_keys=False) as fk:
        lid = add(fk)
        fk.register("cad", "a")
        clock.advance(minutes=2)
        fk.register("cad", "a")
        fk.remove_license(license_id=lid)
        assert list(fk.storage.items(USAGE)) == []
        assert refused(fk.usage, lid) == "license_not_found"


def test_bad_windows_are_refused_with_what_to_send(settings):
    with Floatkey(settings, clock=Clock(), hardware_keys=False) as fk:
        lid = add(fk)
        assert refused(fk.usage, lid, START, START) == "usage_range_not_valid"
        assert refused(fk.usage, lid, START - timedelta(days=30), START, "minute") == "usage_range_not_valid"
        assert refused(fk.usage, lid, START, None, "fortnight") == "validation_error"
        assert refused(fk.usage, lid, "yesterday") == "validation_error"
        assert fk.usage(lid, START - timedelta(days=30), START)["step"] == 3600
