import json
from datetime import UTC, datetime, timedelta

import pytest

from floatkey.errors import FloatkeyError
from floatkey.rules.license import LicenseBook
from floatkey.rules.policy import policy_from_fields
from floatkey.rules.seats import ClientInfo

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
PC = ClientInfo("pc", "10.0.0.9", None)


def book(**fields):
    policy = policy_from_fields(
        {"product": "cad", "floating_users": 2, "max_borrow_time": 48, "max_consumptions": 10, **fields}
    )
    return LicenseBook(license_id=7, policy=policy, added_at=T0)


def test_register_answer_has_what_the_python_sdk_reads():
    b = book()
    answer, changes = b.register("alice", PC, T0)
    assert answer["floating_slots_in_use"] == 1
    assert answer["floating_in_use"] == 1  # what the Node SDK reads
    assert json.loads(answer["license_json"])["id"] == 7
    assert "user" not in answer  # the SDK parses a top-level user as an object
    assert answer["borrowed_until"] is None
    assert answer["is_borrowed"] is False
    assert answer["registration"]["user"] == "alice"
    assert answer["registration"]["expires_at"] == "2026-03-02T12:30:00Z"
    assert answer["product_details"]["short_code"] == "cad"
    assert set(changes.seats) == {"alice"}


def test_refused_action_changes_nothing():
    b = book(floating_users=1)
    b.register("alice", PC, T0)
    before = dict(b.seats)
    with pytest.raises(FloatkeyError):
        b.register("bob", PC, T0)
    assert b.seats == before
    with pytest.raises(FloatkeyError):
        b.add_consumption(11, T0)
    assert b.consumption.total == 0


def test_unregister_frees_the_seat_and_its_feature_seats():
    b = book(features=[{"code": "render", "is_floating": True, "floating_users": 1}])
    b.register("alice", PC, T0)
    b.feature_register("render", "alice", PC, None, T0)
    changes = b.unregister("alice", T0)
    assert changes.seats == {"alice": None}
    assert changes.feature_seats == {("render", "alice"): None}
    assert b.seats == {} and b.feature_seats["render"] == {}
    with pytest.raises(FloatkeyError) as err:
        b.unregister("alice", T0)
    assert err.value.code == "registration_not_found"


def test_borrow_sets_borrowed_until_in_the_answer():
    b = book()
    until = T0 + timedelta(hours=24)
    answer, _ = b.borrow("alice", PC, until, T0)
    assert answer["borrowed_until"] == "2026-03-03T12:00:00Z"
    assert answer["is_borrowed"] is True
    assert b.seats["alice"].expires_at == until


def test_feature_seats():
    b = book(features=[{"code": "render", "is_floating": True, "floating_users": 1}, {"code": "plain"}])
    with pytest.raises(FloatkeyError) as err:
        b.feature_register("render", "alice", PC, None, T0)
    assert err.value.code == "registration_not_found"
    b.register("alice", PC, T0)
    b.register("bob", PC, T0)
    answer, _ = b.feature_register("render", "alice", PC, None, T0)
    assert answer == {
        "product": "cad",
        "feature": "render",
        "user": "alice",
        "os_hostname": "pc",
        "ip_local": "10.0.0.9",
        "user_info": None,
        "registered_at": "2026-03-02T12:00:00Z",
        "borrowed_until": None,
    }
    b.feature_register("render", "alice", PC, None, T0 + timedelta(minutes=1))  # refresh
    with pytest.raises(FloatkeyError) as err:
        b.feature_register("render", "bob", PC, None, T0)
    assert err.value.code == "floating_not_available"
    with pytest.raises(FloatkeyError) as err:
        b.feature_register("plain", "bob", PC, None, T0)
    assert err.value.code == "feature_not_floating"
    with pytest.raises(FloatkeyError) as err:
        b.feature_register("nope", "bob", PC, None, T0)
    assert err.value.code == "invalid_license_feature_code"
    b.feature_release("render", "alice", T0)
    with pytest.raises(FloatkeyError) as err:
        b.feature_release("render", "alice", T0)
    assert err.value.code == "registration_not_found"
    b.feature_register("render", "bob", PC, None, T0)


def test_feature_consumption_and_expiry():
    b = book(
        features=[
            {
                "code": "export",
                "feature_type": "consumption",
                "max_consumption": 3,
                "expiry_date": "2026-03-03",
            }
        ]
    )
    answer, _ = b.add_feature_consumption("export", 3, T0)
    assert answer["total_consumptions"] == 3
    with pytest.raises(FloatkeyError) as err:
        b.add_feature_consumption("export", 1, T0)
    assert err.value.code == "license_not_enough_consumptions"
    with pytest.raises(FloatkeyError) as err:
        b.add_feature_consumption("export", 1, datetime(2026, 3, 3, tzinfo=UTC))
    assert err.value.code == "license_expired"


def test_expire_frees_seats_and_feature_seats_in_time():
    b = book(floating_timeout=1, features=[{"code": "render", "is_floating": True}])
    b.register("alice", PC, T0)
    b.feature_register("render", "alice", PC, None, T0)
    b.register("bob", PC, T0 + timedelta(seconds=30))
    assert b.next_expiry() == T0 + timedelta(minutes=1)
    ended, changes = b.expire(T0 + timedelta(minutes=1))
    assert ended == ["alice"]
    assert set(changes.seats) == {"alice"} and ("render", "alice") in changes.feature_seats
    assert list(b.seats) == ["bob"]
    assert b.next_expiry() == T0 + timedelta(minutes=1, seconds=30)


def test_registrations_view():
    b = book()
    b.register("alice", PC, T0)
    [seat] = b.registrations(T0)
    assert seat["license_id"] == 7 and seat["product"] == "cad" and seat["user"] == "alice"
    assert b.registrations(T0 + timedelta(hours=1)) == []


def test_seat_counts_stay_exact_when_a_seat_ran_out_but_was_not_swept_yet():
    b = book(floating_timeout=1, floating_users=3)
    b.register("alice", PC, T0)
    b.register("bob", PC, T0 + timedelta(seconds=40))
    assert b.license_object(T0 + timedelta(seconds=59))["floating_in_use_devices"] == 2
    later = T0 + timedelta(seconds=70)
    assert b.license_object(later)["floating_in_use_devices"] == 1
    answer, _ = b.register("carol", PC, later)
    assert answer["floating_slots_in_use"] == 2
    ended, _ = b.expire(later)
    assert ended == ["alice"] and b.next_expiry() == T0 + timedelta(seconds=100)


def test_release_keeps_the_expiry_bound_safe():
    b = book(floating_timeout=1)
    b.register("alice", PC, T0)
    b.unregister("alice", T0)
    # The bound may be early (nothing is lost by sweeping once for nothing), never late.
    assert b.next_expiry() is None or b.next_expiry() <= T0 + timedelta(minutes=1)
    ended, changes = b.expire(T0 + timedelta(minutes=2))
    assert ended == [] and not changes and b.next_expiry() is None


def test_a_borrowed_feature_seat_outlives_the_license_seat_timeout():
    """A feature borrow holds its seat until its time; the license seat it rests on too."""
    b = book(floating_timeout=1, features=[{"code": "render", "is_floating": True, "floating_users": 1}])
    b.register("alice", PC, T0)
    b.register("bob", PC, T0)
    until = T0 + timedelta(hours=8)
    answer, changes = b.feature_register("render", "alice", PC, until, T0)
    assert answer["borrowed_until"] == "2026-03-02T20:00:00Z"
    assert set(changes.seats) == {"alice"}  # the license seat's longer life is stored too
    ended, _ = b.expire(T0 + timedelta(minutes=5))
    assert ended == ["bob"]
    b.register("bob", PC, T0 + timedelta(minutes=5))
    with pytest.raises(FloatkeyError) as err:
        b.feature_register("render", "bob", PC, None, T0 + timedelta(minutes=5))
    assert err.value.code == "floating_not_available"
    assert b.registrations(T0 + timedelta(hours=7))[0]["features"][0]["feature"] == "render"
    ended, _ = b.expire(until)
    assert "alice" in ended
    b.register("bob", PC, until)
    b.feature_register("render", "bob", PC, None, until)


def test_a_feature_borrow_never_shortens_a_longer_license_borrow():
    b = book(features=[{"code": "render", "is_floating": True}])
    b.borrow("alice", PC, T0 + timedelta(hours=24), T0)
    _, changes = b.feature_register("render", "alice", PC, T0 + timedelta(hours=2), T0)
    assert b.seats["alice"].borrowed_until == T0 + timedelta(hours=24)
    assert changes.seats == {}


def test_a_feature_borrow_ends_when_the_feature_or_the_license_does():
    b = book(
        validity_period="2026-03-03T00:00:00Z",
        features=[
            {"code": "render", "is_floating": True, "expiry_date": "2026-03-02T18:00:00Z"},
            {"code": "export", "is_floating": True},
        ],
    )
    b.register("alice", PC, T0)
    answer, _ = b.feature_register("render", "alice", PC, T0 + timedelta(hours=20), T0)
    assert answer["borrowed_until"] == "2026-03-02T18:00:00Z"
    answer, _ = b.feature_register("export", "alice", PC, T0 + timedelta(hours=20), T0)
    assert answer["borrowed_until"] == "2026-03-03T00:00:00Z"


def test_borrow_answer_and_its_license_json_agree():
    b = book()
    answer, _ = b.borrow("alice", PC, T0 + timedelta(hours=24), T0)
    inner = json.loads(answer["license_json"])
    assert inner["is_borrowed"] is True and answer["is_borrowed"] is True
    assert inner["borrowed_until"] == answer["borrowed_until"] == "2026-03-03T12:00:00Z"
    for key, value in inner.items():
        assert answer[key] == value, key
    # A later register keeps the borrow, and says so in both places.
    answer, _ = b.register("alice", PC, T0 + timedelta(minutes=1))
    inner = json.loads(answer["license_json"])
    assert inner["is_borrowed"] is answer["is_borrowed"] is True
    assert {k: answer[k] for k in inner} == inner


def test_embedding_times_are_checked_like_client_times():
    """The embedding API hands datetimes straight to the rules: a naive or out-of-range one
    is the caller's mistake (validation_error), not a server failure."""
    b = book(features=[{"code": "render", "is_floating": True}])
    b.register("alice", PC, T0)
    naive = datetime(2026, 3, 2, 20, 0)
    for call in (
        lambda: b.borrow("alice", PC, naive, T0),
        lambda: b.feature_register("render", "alice", PC, naive, T0),
    ):
        with pytest.raises(FloatkeyError) as err:
            call()
        assert err.value.code == "validation_error"
    assert b.seats["alice"].borrowed_until is None and b.feature_seats == {}
