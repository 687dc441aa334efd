"""What floatkey stores: every record's database, key and shape, and the schema version.

One LMDB environment with named databases; values are msgpack (storage/codec.py keeps
datetimes exact). Keys are ordered so that all records of one license are one range:

| database | key | value |
|---|---|---|
| ``meta`` | ``schema_version``, ``next_license_id`` | int |
| ``licenses`` | license id (8 bytes, big-endian) | policy, added_at, counters |
| ``seats`` | license id + user (UTF-8) | one floating seat |
| ``feature_seats`` | license id + feature + NUL + user | one feature seat |
| ``users`` | user name (UTF-8); NUL-prefixed marks | one user of authentication mode |
| ``usage`` | license id + tier (1 byte) + series + NUL + start (8 bytes) | one usage bucket |

A usage series is the license ("") or one of its feature codes; a tier indexes
``floatkey.usage.buckets.TIERS``; the start is seconds since the epoch, big-endian.

**Changing a shape** means raising ``SCHEMA_VERSION`` and adding to ``MIGRATIONS`` the
function that rewrites a directory of the version before, in place (it runs at start-up
in the same write transaction that records the new version). An older floatkey refuses a
directory of a newer version.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from floatkey.auth.users import UserView
from floatkey.rules.consumption import Counter
from floatkey.rules.license import Changes, LicenseBook
from floatkey.rules.policy import ConsumptionPolicy, FeaturePolicy, Policy
from floatkey.rules.seats import ClientInfo, Seat
from floatkey.usage.buckets import Bucket, Place

if TYPE_CHECKING:
    import lmdb

    from floatkey.storage.environment import Op, Storage

#: The version of the shapes below; stored under ``meta/schema_version``.
SCHEMA_VERSION = 1

META = "meta"
LICENSES = "licenses"
SEATS = "seats"
FEATURE_SEATS = "feature_seats"
USERS = "users"
USAGE = "usage"
DATABASES = (META, LICENSES, SEATS, FEATURE_SEATS, USERS, USAGE)

SCHEMA_KEY = b"schema_version"
NEXT_LICENSE_ID = b"next_license_id"
#: Marks that the configured initial admin password has been used (no user name starts with NUL).
INITIAL_ADMIN_CREATED = b"\x00initial_admin_created"

#: ``MIGRATIONS[n]`` upgrades a data directory of schema ``n`` to ``n + 1`` inside ``txn``;
#: it may read and write every database (``dbs`` maps their names to LMDB handles).
Migration = Callable[["lmdb.Transaction", "Mapping[str, Any]"], None]
MIGRATIONS: dict[int, Migration] = {}

_ID = struct.Struct(">Q")


# --- keys --------------------------------------------------------------------------------


def license_key(license_id: int) -> bytes:
    return _ID.pack(license_id)


def license_id_of(key: bytes) -> int:
    license_id: int = _ID.unpack_from(key)[0]
    return license_id


def seat_key(license_id: int, user: str) -> bytes:
    return _ID.pack(license_id) + user.encode("utf-8")


def feature_seat_key(license_id: int, feature: str, user: str) -> bytes:
    return _ID.pack(license_id) + feature.encode("utf-8") + b"\x00" + user.encode("utf-8")


def user_key(username: str) -> bytes:
    return username.encode("utf-8")


def is_user_key(key: bytes) -> bool:
    return not key.startswith(b"\x00")


# --- seats, counters, policies, licenses --------------------------------------------------


def seat_record(seat: Seat) -> dict[str, Any]:
    return {
        "user": seat.user,
        "os_hostname": seat.client.os_hostname,
        "ip_local": seat.client.ip_local,
        "user_info": seat.client.user_info,
        "registered_at": seat.registered_at,
        "refreshed_at": seat.refreshed_at,
        "expires_at": seat.expires_at,
        "borrowed_until": seat.borrowed_until,
    }


def seat_from_record(record: Mapping[str, Any]) -> Seat:
    return Seat(
        user=record["user"],
        client=ClientInfo(record["os_hostname"], record["ip_local"], record["user_info"]),
        registered_at=record["registered_at"],
        refreshed_at=record["refreshed_at"],
        expires_at=record["expires_at"],
        borrowed_until=record["borrowed_until"],
    )


def counter_record(counter: Counter) -> dict[str, Any]:
    return {"total": counter.total, "period_start": counter.period_start}


def counter_from_record(record: Mapping[str, Any] | None) -> Counter:
    if record is None:
        return Counter()
    return Counter(record["total"], record["period_start"])


def policy_record(policy: Policy) -> dict[str, Any]:
    """Plain data (datetimes stay datetimes; msgpack keeps them)."""
    return asdict(policy)


def policy_from_record(record: Mapping[str, Any]) -> Policy:
    fields = dict(record)
    fields["consumption"] = ConsumptionPolicy(**fields["consumption"])
    fields["features"] = tuple(
        FeaturePolicy(**{**f, "consumption": ConsumptionPolicy(**f["consumption"])})
        for f in fields["features"]
    )
    return Policy(**fields)


def license_record(book: LicenseBook) -> dict[str, Any]:
    return {
        "policy": policy_record(book.policy),
        "added_at": book.added_at,
        "consumption": counter_record(book.consumption),
        "feature_consumption": {c: counter_record(v) for c, v in book.feature_consumption.items()},
    }


def license_ops(book: LicenseBook, changes: Changes) -> list[Op]:
    """The storage writes that make ``changes`` durable."""
    ops: list[Op] = []
    lid = book.license_id
    for user, seat in changes.seats.items():
        key = seat_key(lid, user)
        if seat is None:
            ops.append(("delete", SEATS, key, None))
        else:
            ops.append(("put", SEATS, key, seat_record(seat)))
    for (code, user), seat in changes.feature_seats.items():
        key = feature_seat_key(lid, code, user)
        if seat is None:
            ops.append(("delete", FEATURE_SEATS, key, None))
        else:
            ops.append(("put", FEATURE_SEATS, key, {"feature": code, **seat_record(seat)}))
    if changes.counters:
        ops.append(("put", LICENSES, license_key(lid), license_record(book)))
    return ops


def load_books(storage: Storage) -> list[LicenseBook]:
    """Every license with its seats and counters, as stored."""
    seats: dict[int, dict[str, Seat]] = {}
    for key, record in storage.items(SEATS):
        seats.setdefault(license_id_of(key), {})[record["user"]] = seat_from_record(record)
    feature_seats: dict[int, dict[str, dict[str, Seat]]] = {}
    for key, record in storage.items(FEATURE_SEATS):
        holders = feature_seats.setdefault(license_id_of(key), {})
        holders.setdefault(record["feature"], {})[record["user"]] = seat_from_record(record)
    books = []
    for key, record in storage.items(LICENSES):
        lid = license_id_of(key)
        books.append(_book(lid, record, seats.get(lid, {}), feature_seats.get(lid, {})))
    return books


def load_book(storage: Storage, license_id: int) -> LicenseBook | None:
    """One license as stored, or None if it is not."""
    prefix = license_key(license_id)
    record = storage.get(LICENSES, prefix)
    if record is None:
        return None
    seats = {r["user"]: seat_from_record(r) for _, r in storage.items(SEATS, prefix)}
    feature_seats: dict[str, dict[str, Seat]] = {}
    for _, r in storage.items(FEATURE_SEATS, prefix):
        feature_seats.setdefault(r["feature"], {})[r["user"]] = seat_from_record(r)
    return _book(license_id, record, seats, feature_seats)


def _book(
    license_id: int, record: dict[str, Any], seats: dict[str, Seat], feature_seats: dict[str, dict[str, Seat]]
) -> LicenseBook:
    return LicenseBook(
        license_id=license_id,
        policy=policy_from_record(record["policy"]),
        added_at=record["added_at"],
        seats=seats,
        feature_seats=feature_seats,
        consumption=counter_from_record(record["consumption"]),
        feature_consumption={
            code: counter_from_record(c) for code, c in record["feature_consumption"].items()
        },
    )


# --- usage history -----------------------------------------------------------------------


def usage_key(license_id: int, place: Place) -> bytes:
    tier, series, start = place
    return _ID.pack(license_id) + bytes((tier,)) + series.encode("utf-8") + b"\x00" + _ID.pack(start)


def usage_place(key: bytes) -> Place:
    """The (tier, series, start) of a usage key."""
    return key[8], key[9:-9].decode("utf-8"), license_id_of(key[-8:])


def usage_record(bucket: Bucket) -> dict[str, Any]:
    """Short field names: a license holds thousands of these."""
    record: dict[str, Any] = {"s": bucket.seats, "p": bucket.peak, "c": bucket.consumptions}
    if bucket.denials:
        record["d"] = bucket.denials
    return record


def usage_from_record(record: Mapping[str, Any]) -> Bucket:
    return Bucket(record["s"], record["p"], record["c"], dict(record.get("d", {})))


def usage_ops(license_id: int, deletes: list[Place], puts: Mapping[Place, Bucket]) -> list[Op]:
    ops: list[Op] = [("delete", USAGE, usage_key(license_id, p), None) for p in deletes]
    ops += [("put", USAGE, usage_key(license_id, p), usage_record(b)) for p, b in puts.items()]
    return ops


def load_usage(storage: Storage, license_id: int, tier: int | None = None) -> dict[Place, Bucket]:
    """The stored usage buckets of a license (of one tier if given)."""
    prefix = license_key(license_id) + (b"" if tier is None else bytes((tier,)))
    return {usage_place(k): usage_from_record(r) for k, r in storage.items(USAGE, prefix)}


def load_usage_bucket(storage: Storage, license_id: int, place: Place) -> Bucket | None:
    record = storage.get(USAGE, usage_key(license_id, place))
    return None if record is None else usage_from_record(record)


# --- users -------------------------------------------------------------------------------


def user_record(user: UserView) -> dict[str, Any]:
    return {
        "role": user.role,
        "hash": user.password_hash,
        "stamp": user.stamp,
        "must_change": user.must_change_password,
        "created_at": user.created_at,
    }


def user_from_record(username: str, record: Mapping[str, Any]) -> UserView:
    return UserView(
        username,
        record["role"],
        record["hash"],
        record["stamp"],
        record["must_change"],
        record["created_at"],
    )
