from datetime import UTC, datetime, timedelta

import pytest

from floatkey.errors import FloatkeyError
from floatkey.rules import consumption
from floatkey.rules.consumption import Counter
from floatkey.rules.policy import ConsumptionPolicy

NOW = datetime(2026, 3, 4, 15, 30, tzinfo=UTC)  # a Wednesday


def limits(**kw):
    return ConsumptionPolicy(**{"max_consumptions": 10, **kw})


@pytest.mark.parametrize(
    ("total", "n", "policy", "ok"),
    [
        (0, 10, limits(), True),
        (0, 11, limits(), False),
        (9, 1, limits(), True),
        (10, 1, limits(), False),
        (10, 3, limits(allow_overages=True, max_overages=3), True),
        (10, 4, limits(allow_overages=True, max_overages=3), False),
        (10, 10**9, limits(allow_overages=True, max_overages=0), True),  # unlimited overages
        (10, 5, limits(allow_overages=False, max_overages=100), False),  # overages off: ignored
        (10, 10**9, limits(allow_unlimited_consumptions=True), True),
    ],
)
def test_the_sdk_limit_rule(total, n, policy, ok):
    assert consumption.allowed(total, n, policy) is ok


def test_add_refuses_beyond_the_limit_and_changes_nothing():
    counter = Counter(8, None)
    with pytest.raises(FloatkeyError) as err:
        consumption.add(counter, 3, limits(), NOW, "license")
    assert err.value.code == "license_not_enough_consumptions"
    assert consumption.add(counter, 2, limits(), NOW, "license").total == 10


def test_negative_consumption_needs_the_policy_and_cannot_go_below_zero():
    with pytest.raises(FloatkeyError) as err:
        consumption.add(Counter(5), -1, limits(), NOW, "license")
    assert err.value.code == "validation_error"
    allowed = limits(allow_negative_consumptions=True)
    assert consumption.add(Counter(5), -5, allowed, NOW, "license").total == 0
    with pytest.raises(FloatkeyError):
        consumption.add(Counter(5), -6, allowed, NOW, "license")


@pytest.mark.parametrize(
    ("period", "start"),
    [
        ("daily", datetime(2026, 3, 4, tzinfo=UTC)),
        ("weekly", datetime(2026, 3, 2, tzinfo=UTC)),
        ("monthly", datetime(2026, 3, 1, tzinfo=UTC)),
        ("annually", datetime(2026, 1, 1, tzinfo=UTC)),
    ],
)
def test_period_starts_in_utc(period, start):
    assert consumption.period_start(period, NOW) == start
    # A local offset does not move the boundary: 00:30+02:00 is still the previous UTC day.
    local = datetime.fromisoformat("2026-03-05T00:30:00+02:00")
    assert consumption.period_start("daily", local) == datetime(2026, 3, 4, tzinfo=UTC)


def test_counter_resets_at_the_period_boundary_not_before():
    policy = limits(reset_consumption=True, consumption_period="daily")
    counter = consumption.add(Counter(), 7, policy, NOW, "license")
    midnight = datetime(2026, 3, 5, tzinfo=UTC)
    assert consumption.current(counter, policy, midnight - timedelta(microseconds=1)).total == 7
    assert consumption.current(counter, policy, midnight).total == 0
    assert consumption.add(counter, 10, policy, midnight, "license").total == 10


def test_weekly_reset_on_monday():
    policy = limits(reset_consumption=True, consumption_period="weekly")
    counter = consumption.add(Counter(), 10, policy, NOW, "license")
    sunday_night = datetime(2026, 3, 8, 23, 59, tzinfo=UTC)
    monday = datetime(2026, 3, 9, tzinfo=UTC)
    assert consumption.current(counter, policy, sunday_night).total == 10
    assert consumption.current(counter, policy, monday).total == 0


def test_counter_without_reset_never_resets():
    counter = consumption.add(Counter(), 7, limits(), NOW, "license")
    assert consumption.current(counter, limits(), NOW + timedelta(days=400)).total == 7
