"""msgpack encoding of stored values; aware datetimes round-trip to the microsecond."""

from __future__ import annotations

from typing import Any

import msgpack


def pack(value: Any) -> bytes:
    """Encode ``value``; datetimes must be timezone-aware (they are stored as UTC)."""
    return msgpack.packb(value, datetime=True, use_bin_type=True)


def unpack(data: bytes) -> Any:
    """Decode what :func:`pack` wrote; datetimes come back aware, in UTC."""
    return msgpack.unpackb(data, timestamp=3, raw=False, strict_map_key=False)
