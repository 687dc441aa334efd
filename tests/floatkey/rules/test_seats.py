from datetime import UTC, datetime, timedelta

import pytest

from floatkey.errors import FloatkeyError
from floatkey.rules import seats
from floatkey.rules.policy import policy_from_fields
from floatkey.rules.seats import ClientInfo

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
ALICE = ClientInfo("alice-pc", "10.0.0.2", "cad 2026")


def take(held, user, now=T0, capacity=2, timeout=30, until=None):
    return seats.take_seat(
        held, user, ALICE, capacity=capacity, timeout_minutes=timeout, now=now, borrowed_until=until
    )


def test_new_seat_lives_for_the_timeout():
    seat = take({}, "alice")
    assert seat.registered_at == T0
    assert seat.expires_at == T0 + timedelta(minutes=30)
    assert seat.borrowed_until is None


def test_register_again_refreshes_the_same_seat_and_never_takes_a_second():
    first = take({}, "alice")
    later = T0 + timedelta(minutes=20)
    again = take({"alice": first}, "alice", now=later, capacity=1)
    assert again.registered_at == T0
    assert again.refreshed_at == later
    assert again.expires_at == later + timedelta(minutes=30)


def test_full_license_refuses_a_new_user():
    held = {"alice": take({}, "alice"), "bob": take({}, "bob")}
    with pytest.raises(FloatkeyError) as err:
        take(held, "carol")
    assert err.value.code == "floating_not_available"


def test_timeout_boundary_the_seat_is_gone_at_exactly_its_expiry():
    seat = take({}, "alice", capacity=1)
    just_before = seat.expires_at - timedelta(microseconds=1)
    assert seat.is_live(just_before)
    assert not seat.is_live(seat.expires_at)
    assert seats.expired_users({"alice": seat}, just_before) == []
    assert seats.expired_users({"alice": seat}, seat.expires_at) == ["alice"]
    # At its expiry the seat no longer counts: another user may take it.
    bob = take({"alice": seat}, "bob", now=seat.expires_at, capacity=1)
    assert bob.user == "bob"
    with pytest.raises(FloatkeyError):
        take({"alice": seat}, "bob", now=just_before, capacity=1)


def test_expired_holder_registering_again_gets_a_fresh_seat():
    seat = take({}, "alice")
    later = seat.expires_at + timedelta(minutes=1)
    again = take({"alice": seat}, "alice", now=later)
    assert again.registered_at == later


def test_borrow_extends_the_seat_and_survives_a_refresh():
    until = T0 + timedelta(hours=5)
    seat = take({}, "alice", until=until)
    assert seat.expires_at == until
    refreshed = take({"alice": seat}, "alice", now=T0 + timedelta(hours=1))
    assert refreshed.borrowed_until == until
    assert refreshed.expires_at == until


def test_a_borrow_in_the_past_is_dropped_on_refresh():
    seat = take({}, "alice", until=T0 + timedelta(minutes=10))
    later = T0 + timedelta(minutes=20)
    refreshed = take({"alice": seat}, "alice", now=later)
    assert refreshed.borrowed_until is None
    assert refreshed.expires_at == later + timedelta(minutes=30)


def policy(**fields):
    return policy_from_fields({"product": "cad", **fields})


def test_borrow_deadline_rules():
    p = policy(max_borrow_time=24)
    assert seats.borrow_deadline(p, None, T0) == T0 + timedelta(hours=24)
    exact = T0 + timedelta(hours=24)
    assert seats.borrow_deadline(p, exact, T0) == exact
    for bad in (exact + timedelta(seconds=1), T0, T0 - timedelta(hours=1)):
        with pytest.raises(FloatkeyError) as err:
            seats.borrow_deadline(p, bad, T0)
        assert err.value.code == "borrow_until_not_valid"


def test_borrow_not_allowed_when_max_borrow_time_is_zero():
    with pytest.raises(FloatkeyError) as err:
        seats.borrow_deadline(policy(), None, T0)
    assert err.value.code == "license_borrow_not_allowed"


def test_license_usable_checks():
    seats.check_usable(policy(), T0)
    with pytest.raises(FloatkeyError) as err:
        seats.check_usable(policy(license_enabled=False), T0)
    assert err.value.code == "license_not_active"
    with pytest.raises(FloatkeyError) as err:
        seats.check_usable(policy(start_date="2026-04-01"), T0)
    assert err.value.code == "license_not_active"
    ends = policy(license_type="time-limited", validity_period="2026-03-02T12:00:00Z")
    seats.check_usable(ends, T0 - timedelta(microseconds=1))
    with pytest.raises(FloatkeyError) as err:
        seats.check_usable(ends, T0)
    assert err.value.code == "license_expired"


def test_a_borrow_ends_when_the_license_does():
    """The SDKs refuse a license past its validity_period, borrowed or not: a borrow past
    it would promise what no client can use, so it ends with the license."""
    ends = T0 + timedelta(hours=10)
    p = policy(max_borrow_time=24, validity_period=ends.isoformat())
    assert seats.borrow_deadline(p, None, T0) == ends
    assert seats.borrow_deadline(p, T0 + timedelta(hours=20), T0) == ends
    assert seats.borrow_deadline(p, T0 + timedelta(hours=5), T0) == T0 + timedelta(hours=5)
    with pytest.raises(FloatkeyError) as err:
        seats.borrow_deadline(p, T0 + timedelta(hours=25), T0)
    assert err.value.code == "borrow_until_not_valid"
