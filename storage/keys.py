"""Byte keys of the records: ordered so that all records of one license are a range."""

from __future__ import annotations

import struct

_ID = struct.Struct(">Q")


def license_key(license_id: int) -> bytes:
    return _ID.pack(license_id)


def license_id_of(key: bytes) -> int:
    return _ID.unpack_from(key)[0]


def seat_key(license_id: int, user: str) -> bytes:
    return _ID.pack(license_id) + user.encode("utf-8")


def feature_seat_key(license_id: int, feature: str, user: str) -> bytes:
    return _ID.pack(license_id) + feature.encode("utf-8") + b"\x00" + user.encode("utf-8")
