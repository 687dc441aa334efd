"""What floatkey stores: every record's database, key and shape, and the schema version.

One LMDB environment with named databases; values are msgpack (storage/codec.py keeps
datetimes exact). Keys are ordered so that all records of one license are one range:

| database | key | value |
|---|---|---|
| ``meta`` | ``schema_version``, ``next_license_id`` | int |
| ``meta`` | ``latest_seen`` | the latest time the server has seen (the clock guard) |
| ``licenses`` | license id (8 bytes, big-endian) | policy, added_at, counters |
| ``seats`` | license id + user (UTF-8) | one floating seat |
| ``feature_seats`` | license id + feature + NUL + user | one feature seat |
| ``users`` | user name (UTF-8); NUL-prefixed marks | one user of authentication mode |
| ``audit`` | record sequence number (8 bytes, big-endian) | one audit record (floatkey/audit/chain.py) |
| ``vendor_licenses`` | the vendor's ``license_uid`` (UTF-8) | license id, sequence, key serials, the file |
| ``activation_nonces`` | nonce (ASCII) | product, created_at, answered_by (a license_uid or None) |
| ``usage`` | license id + tier (1 byte) + series + NUL + start (8 bytes) | one usage bucket |
| ``usage_reports`` | license id (8 bytes, big-endian) | the last usage report's sequence, hash and end |

``meta`` also holds ``audit_head`` (the last audit record's seq and hash, written with it)
and, once pruned, ``audit_checkpoint`` (seq and hash of the last record pruned).
A usage series is the license ("") or one of its feature codes; a tier indexes
``floatkey.usage.buckets.TIERS``; the start is seconds since the epoch, big-endian.

**Changing a shape** means raising ``SCHEMA_VERSION`` and adding to ``MIGRATIONS`` the
function that rewrites a directory of the version before, in place (it runs at start-up
in the same write transaction that records the new version). An older floatkey refuses a
directory of a newer version.

**Adding a database or a ``meta`` key** is not a shape change: records already stored keep
their shape, an older directory simply has the new database empty (LMDB creates it on
open), so ``SCHEMA_VERSION`` stays. The ``audit`` database came that way, at version 1.
"""

from __future__ import annotations

import gc
import struct
from collections.abc import Callable, Mapping
from dataclasses import asdict, fields
from datetime import datetime
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
AUDIT = "audit"
VENDOR_LICENSES = "vendor_licenses"
ACTIVATION_NONCES = "activation_nonces"
USAGE = "usage"
USAGE_REPORTS = "usage_reports"
DATABASES = (
    META,
    LICENSES,
    SEATS,
    FEATURE_SEATS,
    USERS,
    AUDIT,
    VENDOR_LICENSES,
    ACTIVATION_NONCES,
    USAGE,
    USAGE_REPORTS,
)

SCHEMA_KEY = b"schema_version"
NEXT_LICENSE_ID = b"next_license_id"
#: The latest time seen (floatkey/licensing/clock.py), a datetime.
LATEST_SEEN = b"latest_seen"
#: Marks that the configured initial admin password has been used (no user name starts with NUL).
INITIAL_ADMIN_CREATED = b"\x00initial_admin_created"
#: In ``meta``: where the audit chain ends, and where it starts after pruning (chain.Link).
AUDIT_HEAD = b"audit_head"
AUDIT_CHECKPOINT = b"audit_checkpoint"

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


def audit_key(seq: int) -> bytes:
    return _ID.pack(seq)


def audit_seq_of(key: bytes) -> int:
    seq: int = _ID.unpack_from(key)[0]
    return seq


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


def seat_from_record(record: Mapping[str, Any], clients: ClientCache | None = None) -> Seat:
    """The seat of ``record``; ``clients`` shares one ClientInfo among seats that say the same."""
    client = (record["os_hostname"], record["ip_local"], record["user_info"])
    registered_at = record["registered_at"]
    refreshed_at = record["refreshed_at"]
    if refreshed_at == registered_at:  # never refreshed: one datetime instead of two
        refreshed_at = registered_at
    return _new_seat(
        record["user"],
        ClientInfo(*client) if clients is None else clients.get(client),
        registered_at,
        refreshed_at,
        record["expires_at"],
        record["borrowed_until"],
    )


def _seat_builder() -> Callable[[str, ClientInfo, datetime, datetime, datetime, datetime | None], Seat]:
    """``Seat(...)`` for a load, which makes 1,000,000 of them: a third faster.

    A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``; this
    sets Seat's slots directly. Same object, same fields (checked by name here, and
    against the constructor by a test).
    """
    names = ("user", "client", "registered_at", "refreshed_at", "expires_at", "borrowed_until")
    if tuple(f.name for f in fields(Seat)) != names:
        raise TypeError("Seat's fields changed: change records._seat_builder with them")
    user_, client_, registered_, refreshed_, expires_, borrowed_ = (getattr(Seat, n).__set__ for n in names)
    new = object.__new__

    def build(
        user: str,
        client: ClientInfo,
        registered_at: datetime,
        refreshed_at: datetime,
        expires_at: datetime,
        borrowed_until: datetime | None,
    ) -> Seat:
        seat: Seat = new(Seat)
        user_(seat, user)
        client_(seat, client)
        registered_(seat, registered_at)
        refreshed_(seat, refreshed_at)
        expires_(seat, expires_at)
        borrowed_(seat, borrowed_until)
        return seat

    return build


_new_seat = _seat_builder()


class ClientCache:
    """One ClientInfo for all the seats of a load whose clients say the same.

    With 1,000,000 seats, a ClientInfo and its three strings per seat are about 230 MB;
    seats of one host share one ClientInfo instead, and clients that differ share the
    strings they have in common (one application's ``user_info``). The cache lives for
    one load only.
    """

    __slots__ = ("_known", "_strings")

    def __init__(self) -> None:
        self._known: dict[tuple[str | None, str | None, str | None], ClientInfo] = {}
        self._strings: dict[str, str] = {}

    def get(self, fields: tuple[str | None, str | None, str | None]) -> ClientInfo:
        client = self._known.get(fields)
        if client is None:
            host, ip, info = (None if f is None else self._strings.setdefault(f, f) for f in fields)
            client = self._known[fields] = ClientInfo(host, ip, info)
        return client


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


#: The databases ``load_books`` reads whole (so its load checks them: storage.Preload).
BOOK_DATABASES = frozenset({LICENSES, SEATS, FEATURE_SEATS})


def load_books(storage: Storage) -> list[LicenseBook]:
    """Every license with its seats and counters, as stored; reads BOOK_DATABASES whole.

    The cyclic garbage collector is paused meanwhile: a load makes millions of objects
    without a cycle among them, and collections triggered by their number found nothing
    and took a fifth of a 1,000,000-seat load (docs/benchmarks.md).
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        return _load_books(storage)
    finally:
        if paused:
            gc.enable()


def _load_books(storage: Storage) -> list[LicenseBook]:
    clients = ClientCache()
    seats: dict[int, dict[str, Seat]] = {}
    # Keys are ordered by license: look a license's dict up once per license, not per seat.
    license_prefix: bytes | None = None
    held: dict[str, Seat] = {}
    for key, record in storage.items(SEATS):
        if license_prefix is None or not key.startswith(license_prefix):
            license_prefix = key[: _ID.size]
            held = seats.setdefault(license_id_of(key), {})
        held[record["user"]] = seat_from_record(record, clients)
    feature_seats: dict[int, dict[str, dict[str, Seat]]] = {}
    for key, record in storage.items(FEATURE_SEATS):
        holders = feature_seats.setdefault(license_id_of(key), {})
        holders.setdefault(record["feature"], {})[record["user"]] = seat_from_record(record, clients)
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
    clients = ClientCache()
    seats = {r["user"]: seat_from_record(r, clients) for _, r in storage.items(SEATS, prefix)}
    feature_seats: dict[str, dict[str, Seat]] = {}
    for _, r in storage.items(FEATURE_SEATS, prefix):
        feature_seats.setdefault(r["feature"], {})[r["user"]] = seat_from_record(r, clients)
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


# --- vendor license files (docs/licensing.md) ---------------------------------------------


def vendor_license_key(license_uid: str) -> bytes:
    return license_uid.encode("utf-8")


def vendor_license_key_text(key: bytes) -> str:
    """The ``license_uid`` of a ``vendor_licenses`` key."""
    return key.decode("utf-8")


def vendor_license_record(
    license_id: int, sequence: int, key_serials: tuple[str, ...], text: str, installed_at: Any
) -> dict[str, Any]:
    """What an installed license file left: which local license it is, at which sequence."""
    return {
        "license_id": license_id,
        "sequence": sequence,
        "key_serials": list(key_serials),
        "file": text,
        "installed_at": installed_at,
    }


def nonce_key(nonce: str) -> bytes:
    return nonce.encode("ascii")


def nonce_record(product: str, created_at: Any, answered_by: str | None = None) -> dict[str, Any]:
    return {"product": product, "created_at": created_at, "answered_by": answered_by}


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
    if bucket.seat_seconds is not None:
        record["a"] = bucket.seat_seconds
    return record


def usage_from_record(record: Mapping[str, Any]) -> Bucket:
    """A bucket stored before seat-seconds were kept (no ``a``) has them unknown (None)."""
    return Bucket(record["s"], record["p"], record["c"], dict(record.get("d", {})), record.get("a"))


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


# --- usage reports (floatkey/licensing/report.py) ----------------------------------------


def report_chain_record(
    sequence: int, content_hash: str, end: Any, made_at: Any, cells: list[list[Any]]
) -> dict[str, Any]:
    """Where a license's chain of reports stands: the next one is ``sequence + 1``, names
    ``hash`` as its previous, and starts by default where this one ended (``to``).
    ``cells``: [series, step, start, consumptions, refusals, seat-seconds] of each usage
    bucket cell ``to`` falls in, as far as this report counted it (floatkey/usage/totals.py)."""
    return {"sequence": sequence, "hash": content_hash, "to": end, "made_at": made_at, "cells": cells}


def report_chain_ops(license_id: int, record: Mapping[str, Any]) -> list[Op]:
    return [("put", USAGE_REPORTS, license_key(license_id), dict(record))]


def load_report_chain(storage: Storage, license_id: int) -> dict[str, Any] | None:
    record: dict[str, Any] | None = storage.get(USAGE_REPORTS, license_key(license_id))
    return record


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
