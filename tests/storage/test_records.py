"""The stored shapes round-trip exactly, and the schema version upgrades through MIGRATIONS."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from floatkey.auth.users import UserView
from floatkey.errors import StorageError
from floatkey.rules.consumption import Counter
from floatkey.rules.license import LicenseBook
from floatkey.rules.policy import policy_from_fields
from floatkey.rules.seats import ClientInfo, Seat
from floatkey.storage import Storage, records
from floatkey.storage.codec import pack, unpack

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@contextmanager
def opened(path: Path) -> Iterator[Storage]:
    storage = Storage(path)
    try:
        yield storage
    finally:
        storage.close()


def rich_policy():
    return policy_from_fields(
        {
            "product": "cad",
            "floating_users": 3,
            "validity_period": "2027-01-01",
            "max_consumptions": 10,
            "features": [
                {"code": "render", "floating_users": 2},
                {
                    "code": "export",
                    "max_consumptions": 5,
                    "reset_consumption": True,
                    "consumption_period": "monthly",
                },
            ],
            "metadata": {"tier": "gold"},
        }
    )


def test_every_shape_round_trips_through_msgpack() -> None:
    seat = Seat("alice", ClientInfo("ws-1", "10.0.0.2", "x"), NOW, NOW, NOW + timedelta(minutes=5), NOW)
    assert records.seat_from_record(unpack(pack(records.seat_record(seat)))) == seat
    counter = Counter(7, NOW)
    assert records.counter_from_record(unpack(pack(records.counter_record(counter)))) == counter
    assert records.counter_from_record(None) == Counter()
    policy = rich_policy()
    assert records.policy_from_record(unpack(pack(records.policy_record(policy)))) == policy
    user = UserView("root", "admin", "$argon2id$...", "stamp", False, NOW)
    assert records.user_from_record("root", unpack(pack(records.user_record(user)))) == user


def test_a_license_is_stored_and_loaded_with_its_seats(tmp_path: Path) -> None:
    book = LicenseBook(license_id=9, policy=rich_policy(), added_at=NOW)
    with opened(tmp_path / "data") as storage:
        storage.write_now([("put", records.LICENSES, records.license_key(9), records.license_record(book))])
        _answer, changes = book.register("alice", ClientInfo(os_hostname="ws-1"), NOW)
        storage.write_now(records.license_ops(book, changes))
        [loaded] = records.load_books(storage)
        assert loaded.seats == book.seats and loaded.policy == book.policy
        assert records.load_book(storage, 9).seats == book.seats
        assert records.load_book(storage, 10) is None


def test_keys_keep_one_license_in_one_range() -> None:
    prefix = records.license_key(300)
    assert records.seat_key(300, "bob").startswith(prefix)
    assert records.feature_seat_key(300, "render", "bob").startswith(prefix)
    assert records.license_id_of(records.seat_key(300, "bob")) == 300
    assert records.seat_key(299, "zzz") < prefix < records.seat_key(301, "")


def test_an_older_directory_is_upgraded_by_its_migrations(tmp_path: Path, monkeypatch, caplog) -> None:
    with opened(tmp_path / "data") as storage:
        storage.write_now([("put", records.META, b"color", "blue")])

    def rename_color(txn, dbs) -> None:
        value = txn.get(b"color", db=dbs[records.META])
        txn.put(b"colour", value, db=dbs[records.META])
        txn.delete(b"color", db=dbs[records.META])

    monkeypatch.setattr(records, "SCHEMA_VERSION", 2)
    monkeypatch.setattr(records, "MIGRATIONS", {1: rename_color})
    from floatkey.storage import environment

    monkeypatch.setattr(environment, "SCHEMA_VERSION", 2)
    monkeypatch.setattr(environment, "MIGRATIONS", records.MIGRATIONS)
    with opened(tmp_path / "data") as storage:
        assert storage.get(records.META, b"colour") == "blue"
        assert storage.get(records.META, b"color") is None
        assert storage.get(records.META, records.SCHEMA_KEY) == 2
    assert "upgraded to schema 2" in caplog.text


def test_a_newer_directory_is_refused(tmp_path: Path) -> None:
    with opened(tmp_path / "data") as storage:
        storage.write_now([("put", records.META, records.SCHEMA_KEY, records.SCHEMA_VERSION + 1)])
    with pytest.raises(StorageError, match="written by a newer floatkey"):
        Storage(tmp_path / "data")


def test_a_load_shares_one_client_among_seats_that_say_the_same(tmp_path: Path) -> None:
    """1,000,000 seats at 230 bytes of client each would not fit in 1 GB (docs/benchmarks.md)."""
    books = [LicenseBook(license_id=lid, policy=rich_policy(), added_at=NOW) for lid in (3, 4)]
    with opened(tmp_path / "data") as storage:
        for book in books:
            storage.write_now(
                [
                    (
                        "put",
                        records.LICENSES,
                        records.license_key(book.license_id),
                        records.license_record(book),
                    )
                ]
            )
            for user in ("alice", "bob"):
                _answer, changes = book.register(user, ClientInfo("ws-1", "10.0.0.2", "cad 7"), NOW)
                storage.write_now(records.license_ops(book, changes))
            _answer, changes = book.register(
                "carol", ClientInfo("ws-2", None, "cad 7"), NOW + timedelta(seconds=1)
            )
            storage.write_now(records.license_ops(book, changes))
        loaded = records.load_books(storage)
    assert [b.seats for b in loaded] == [b.seats for b in books]
    first, second = loaded
    assert first.seats["alice"].client is first.seats["bob"].client is second.seats["alice"].client
    assert first.seats["carol"].client is not first.seats["alice"].client
    assert second.seats["carol"].client is first.seats["carol"].client
    assert first.seats["carol"].client.user_info is first.seats["alice"].client.user_info
    seat = first.seats["alice"]
    assert seat.refreshed_at is seat.registered_at


def test_a_loaded_seat_is_the_seat_its_constructor_makes() -> None:
    later = NOW + timedelta(minutes=5)
    for borrowed in (None, NOW + timedelta(days=1)):
        made = Seat("alice", ClientInfo("ws-1", "10.0.0.1", "app"), NOW, later, later, borrowed)
        loaded = records.seat_from_record(unpack(pack(records.seat_record(made))), records.ClientCache())
        assert loaded == made and hash(loaded) == hash(made) and repr(loaded) == repr(made)
        assert type(loaded) is Seat
        with pytest.raises(AttributeError):  # still frozen
            loaded.user = "mallory"  # type: ignore[misc]
