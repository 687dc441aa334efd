"""The clock guard, without threads: rollback beyond the tolerance, recovery, persistence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from floatkey import Floatkey, Settings
from floatkey.errors import FloatkeyError
from floatkey.licensing.clock import ClockGuard

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def test_a_clock_turned_back_beyond_the_tolerance_refuses_until_it_is_right() -> None:
    stored: list[datetime] = []
    guard = ClockGuard(None, HOUR, stored.append)
    guard.check(T0)
    guard.check(T0 - HOUR)  # within the tolerance
    with pytest.raises(FloatkeyError) as refused:
        guard.check(T0 - HOUR - timedelta(seconds=1))
    assert refused.value.code == "clock_rolled_back"
    assert guard.status(T0 - 2 * HOUR)["rolled_back"] is True
    guard.check(T0 + timedelta(seconds=5))  # clears by itself
    assert stored == [T0]  # persisted at most once a minute


def test_the_latest_time_survives_a_restart_through_what_was_persisted() -> None:
    stored: list[datetime] = []
    ClockGuard(None, HOUR, stored.append).check(T0 + 10 * HOUR)
    restarted = ClockGuard(stored[-1], HOUR, stored.append)
    with pytest.raises(FloatkeyError):
        restarted.check(T0)


def test_persisted_again_after_a_minute() -> None:
    stored: list[datetime] = []
    guard = ClockGuard(None, HOUR, stored.append)
    for seconds in (0, 30, 59, 60, 61, 130):
        guard.check(T0 + timedelta(seconds=seconds))
    assert stored == [T0, T0 + timedelta(seconds=60), T0 + timedelta(seconds=130)]


def test_through_the_embedding_api_only_licenses_with_an_end_date_are_refused(tmp_path: Path) -> None:
    now = [T0]
    settings = Settings(data_dir=tmp_path / "data", expiry_sweep_interval=0.05)
    with Floatkey(settings, clock=lambda: now[0]) as fk:
        fk.add_license(
            {
                "product": "ends",
                "license_type": "time-limited",
                "validity_period": "2027-12-31",
                "floating_users": 5,
            }
        )
        fk.add_license({"product": "forever"})
        fk.register("ends", "alice")
        now[0] = T0 - 2 * HOUR
        with pytest.raises(FloatkeyError) as refused:
            fk.register("ends", "bob")
        assert refused.value.code == "clock_rolled_back"
        fk.register("forever", "bob")  # no end date: never affected
        assert fk.health()["clock"]["rolled_back"] is True
        now[0] = T0 + timedelta(minutes=1)
        fk.register("ends", "bob")
        assert fk.health()["clock"]["rolled_back"] is False
    # The latest time seen survives a restart.
    now[0] = T0 - 2 * HOUR
    with Floatkey(settings, clock=lambda: now[0]) as fk, pytest.raises(FloatkeyError):
        fk.register("ends", "carol")
