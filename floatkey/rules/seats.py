"""Floating seats: taking, refreshing, borrowing and expiring them.

A seat lives until ``floating_timeout`` minutes after its holder's last register (the
periodic check-in), or until ``borrowed_until`` when that is later. A holder who
registers again refreshes the seat it has; it never takes a second one. Feature seats
follow the same rules with the feature's own capacity and timeout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from floatkey import inputs
from floatkey.errors import FloatkeyError
from floatkey.rules.policy import Policy
from floatkey.timeutil import as_utc, format_time


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """What a client says about itself on register; shown to administrators."""

    os_hostname: str | None = None
    ip_local: str | None = None
    user_info: str | None = None


@dataclass(frozen=True, slots=True)
class Seat:
    user: str
    client: ClientInfo
    registered_at: datetime
    refreshed_at: datetime
    expires_at: datetime
    borrowed_until: datetime | None = None

    def is_live(self, now: datetime) -> bool:
        return now < self.expires_at

    def to_answer(self) -> dict[str, Any]:
        """The seat as clients and administrators see it."""
        return {
            "user": self.user,
            "os_hostname": self.client.os_hostname,
            "ip_local": self.client.ip_local,
            "user_info": self.client.user_info,
            "registered_at": format_time(self.registered_at),
            "expires_at": format_time(self.expires_at),
            "borrowed_until": format_time(self.borrowed_until),
        }


#: Longest ``user_info`` a client may give (the other client fields: ``inputs.MAX_TEXT``).
USER_INFO_MAX = 4096


def check_client(user: str, client: ClientInfo) -> None:
    """What a seat stores about its holder, checked whatever the entry point (HTTP or the
    embedding API): a bad value refused here would otherwise fail the storage commit it
    shares with other clients' changes."""
    inputs.user(user)
    if not isinstance(client, ClientInfo):
        raise inputs.invalid("client", "a ClientInfo", client)
    inputs.optional_text(client.os_hostname, "os_hostname")
    inputs.optional_text(client.ip_local, "ip_local")
    inputs.optional_text(client.user_info, "user_info", USER_INFO_MAX)


def expiry(refreshed_at: datetime, timeout_minutes: int, borrowed_until: datetime | None) -> datetime:
    ends = refreshed_at + timedelta(minutes=timeout_minutes)
    if borrowed_until is not None and borrowed_until > ends:
        return borrowed_until
    return ends


def expired_users(seats: Mapping[str, Seat], now: datetime) -> list[str]:
    """Holders whose seat has run out at ``now``."""
    return [user for user, seat in seats.items() if not seat.is_live(now)]


def live_count(seats: Mapping[str, Seat], now: datetime) -> int:
    return sum(1 for seat in seats.values() if seat.is_live(now))


def check_usable(policy: Policy, now: datetime) -> None:
    """Refuse every action on a disabled, not yet started or expired license."""
    if not policy.license_enabled:
        raise FloatkeyError("license_not_active", f"The license of {policy.product} is disabled.")
    if policy.start_date is not None and now < policy.start_date:
        raise FloatkeyError(
            "license_not_active",
            f"The license of {policy.product} starts on {format_time(policy.start_date)}.",
        )
    if policy.validity_period is not None and now >= policy.validity_period:
        raise FloatkeyError(
            "license_expired",
            f"The license of {policy.product} expired on {format_time(policy.validity_period)}.",
        )


def take_seat(
    seats: Mapping[str, Seat],
    user: str,
    client: ClientInfo,
    *,
    capacity: int,
    timeout_minutes: int,
    now: datetime,
    borrowed_until: datetime | None = None,
    what: str = "license",
) -> Seat:
    """The seat ``user`` holds after registering at ``now``: refreshed, or newly taken.

    A borrow already in force is kept unless ``borrowed_until`` replaces it.
    Raises ``floating_not_available`` when the user has no live seat and all are taken,
    and ``validation_error`` for a user or client the storage could not keep.
    """
    check_client(user, client)
    held = seats.get(user)
    if held is not None and held.is_live(now):
        until = borrowed_until if borrowed_until is not None else held.borrowed_until
        if until is not None and until <= now:
            until = None
        return replace(
            held,
            client=client,
            refreshed_at=now,
            borrowed_until=until,
            expires_at=expiry(now, timeout_minutes, until),
        )
    others = len(seats) - (1 if user in seats else 0)
    # Fewer seat records than seats means a free one, live or not: count only when full.
    if others >= capacity:
        in_use = sum(1 for other, seat in seats.items() if other != user and seat.is_live(now))
        if in_use >= capacity:
            raise FloatkeyError(
                "floating_not_available",
                f"All {capacity} floating seats of the {what} are in use; "
                "try again when a user releases one or ask for more seats.",
            )
    return Seat(
        user=user,
        client=client,
        registered_at=now,
        refreshed_at=now,
        expires_at=expiry(now, timeout_minutes, borrowed_until),
        borrowed_until=borrowed_until,
    )


def borrow_deadline(
    policy: Policy,
    requested: datetime | None,
    now: datetime,
    *,
    ends: datetime | None = None,
    field: str = "borrowed_until",
) -> datetime:
    """When a borrow asked for at ``now`` ends; None asks for the longest allowed.

    A borrow never outlasts the license (``validity_period``) nor ``ends`` (a feature's
    ``expiry_date``): it is cut short to that time. The SDKs refuse an expired license,
    borrowed or not, so a later end would promise what no client can use; the answer's
    ``borrowed_until`` tells the client the end it got.
    """
    if policy.max_borrow_time <= 0:
        raise FloatkeyError(
            "license_borrow_not_allowed", f"The license of {policy.product} does not allow borrowing."
        )
    requested = as_utc(requested, field)
    latest = now + timedelta(hours=policy.max_borrow_time)
    if requested is not None and (requested <= now or requested > latest):
        raise FloatkeyError(
            "borrow_until_not_valid",
            f"{field} must be after now and at most {policy.max_borrow_time} hours "
            f"from now (until {format_time(latest)}).",
        )
    deadline = latest if requested is None else requested
    for end in (policy.validity_period, ends):
        if end is not None and end < deadline:
            deadline = end
    return deadline
