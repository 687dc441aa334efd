"""Reading the fields of a request body for the client routes (docs/api.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from floatkey import inputs
from floatkey.rules import seats
from floatkey.rules.seats import ClientInfo
from floatkey.timeutil import parse_time


def product(fields: Mapping[str, Any]) -> str:
    value = inputs.text(fields, "product", required=True)
    assert value is not None
    return value


def user(fields: Mapping[str, Any]) -> str:
    value = inputs.text(fields, "user", required=True, max_bytes=inputs.USER_MAX_BYTES)
    assert value is not None
    return value


def feature(fields: Mapping[str, Any]) -> str:
    value = inputs.text(fields, "feature", required=True)
    assert value is not None
    return value


def client(fields: Mapping[str, Any]) -> ClientInfo:
    return ClientInfo(
        os_hostname=inputs.text(fields, "os_hostname"),
        ip_local=inputs.text(fields, "ip_local"),
        user_info=inputs.text(fields, "user_info", max_length=seats.USER_INFO_MAX),
    )


def consumptions(fields: Mapping[str, Any]) -> int:
    """The count to add; the client's own overage fields are checked for type and ignored."""
    inputs.integer(fields, "max_overages", minimum=0)
    inputs.boolean(fields, "allow_overages", aliases=("allowOverages",))
    value = inputs.integer(fields, "consumptions", required=True)
    assert value is not None
    return value


def borrowed_until(fields: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        if fields.get(name) is not None:
            return parse_time(fields[name], name)
    return None
