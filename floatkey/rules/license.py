"""One license's book: its policy and usage, and every action on it, as plain data.

``LicenseBook`` holds no lock and starts no thread: its LicenseActor owns it and is the
only caller, one message at a time. Each action returns the answer for the client and
the ``Changes`` the actor must persist before it answers; an action that raises has
changed nothing.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import orjson

from floatkey.errors import FloatkeyError
from floatkey.rules import consumption, seats
from floatkey.rules.consumption import Counter
from floatkey.rules.policy import FeaturePolicy, Policy
from floatkey.rules.seats import ClientInfo, Seat
from floatkey.timeutil import format_time


@dataclass
class Changes:
    """What an action changed: seats put (a Seat) or freed (None), counters touched."""

    seats: dict[str, Seat | None] = field(default_factory=dict)
    feature_seats: dict[tuple[str, str], Seat | None] = field(default_factory=dict)
    counters: bool = False

    def __bool__(self) -> bool:
        return bool(self.seats or self.feature_seats or self.counters)

    def merge(self, other: Changes) -> None:
        self.seats.update(other.seats)
        self.feature_seats.update(other.feature_seats)
        self.counters = self.counters or other.counters


@dataclass
class LicenseBook:
    license_id: int
    policy: Policy
    added_at: datetime
    seats: dict[str, Seat] = field(default_factory=dict)
    #: feature code -> user -> seat
    feature_seats: dict[str, dict[str, Seat]] = field(default_factory=dict)
    consumption: Counter = field(default_factory=Counter)
    feature_consumption: dict[str, Counter] = field(default_factory=dict)
    #: No seat or feature seat expires before this (a lower bound, exact after ``expire``):
    #: until then every seat held is live, so counting seats is ``len``, not a scan.
    due: datetime | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.due = self._earliest_expiry()

    # Client actions

    def register(self, user: str, client: ClientInfo, now: datetime) -> tuple[dict[str, Any], Changes]:
        seats.check_usable(self.policy, now)
        seat = self._take(user, client, now, None)
        return self.register_answer(seat, now), Changes(seats={user: seat})

    def borrow(
        self, user: str, client: ClientInfo, until: datetime | None, now: datetime
    ) -> tuple[dict[str, Any], Changes]:
        seats.check_usable(self.policy, now)
        deadline = seats.borrow_deadline(self.policy, until, now)
        seat = self._take(user, client, now, deadline)
        return self.register_answer(seat, now), Changes(seats={user: seat})

    def unregister(self, user: str, now: datetime) -> Changes:
        seats.check_usable(self.policy, now)
        self._held_seat(user, now)
        return self._free(user)

    def add_consumption(self, n: int, now: datetime) -> tuple[dict[str, Any], Changes]:
        seats.check_usable(self.policy, now)
        self.consumption = consumption.add(self.consumption, n, self.policy.consumption, now, "license")
        c = self.policy.consumption
        answer = {
            "max_consumptions": c.max_consumptions,
            "total_consumptions": self.consumption.total,
            "allow_overages": c.allow_overages,
            "max_overages": c.max_overages,
            "reset_consumption": c.reset_consumption,
            "consumption_period": c.consumption_period,
            "allow_unlimited_consumptions": c.allow_unlimited_consumptions,
        }
        return answer, Changes(counters=True)

    def add_feature_consumption(self, code: str, n: int, now: datetime) -> tuple[dict[str, Any], Changes]:
        seats.check_usable(self.policy, now)
        feature = self._feature(code, now)
        if feature.feature_type != "consumption":
            raise FloatkeyError("validation_error", f"The feature {code!r} is not a consumption feature.")
        counter = self.feature_consumption.get(code, Counter())
        self.feature_consumption[code] = consumption.add(
            counter, n, feature.consumption, now, f"feature {code!r}"
        )
        return self.feature_object(feature, now), Changes(counters=True)

    def feature_register(
        self, code: str, user: str, client: ClientInfo, borrow_until: datetime | None, now: datetime
    ) -> tuple[dict[str, Any], Changes]:
        seats.check_usable(self.policy, now)
        feature = self._feature(code, now)
        if not feature.is_floating:
            raise FloatkeyError("feature_not_floating", f"The feature {code!r} is not floating.")
        held = self._held_seat(user, now)
        deadline = None
        if borrow_until is not None:
            deadline = seats.borrow_deadline(
                self.policy, borrow_until, now, ends=feature.expiry_date, field="borrow_until"
            )
        holders = self.feature_seats.get(code, {})
        seat = seats.take_seat(
            holders,
            user,
            client,
            capacity=feature.floating_users,
            timeout_minutes=feature.timeout_minutes(self.policy.floating_timeout),
            now=now,
            borrowed_until=deadline,
            what=f"feature {code!r}",
        )
        self.feature_seats.setdefault(code, {})[user] = seat
        self._note_expiry(seat)
        changes = Changes(feature_seats={(code, user): seat})
        if deadline is not None and held.expires_at < deadline:
            # A feature seat rests on the license seat: freeing that at its timeout would
            # take the borrowed feature seat with it, so the license seat is borrowed as long.
            changes.seats[user] = self._borrowed(held, deadline)
        answer = {
            "product": self.policy.product,
            "feature": code,
            "user": user,
            "os_hostname": client.os_hostname,
            "ip_local": client.ip_local,
            "user_info": client.user_info,
            "registered_at": format_time(seat.registered_at),
            "borrowed_until": format_time(seat.borrowed_until),
        }
        return answer, changes

    def feature_release(self, code: str, user: str, now: datetime) -> Changes:
        seats.check_usable(self.policy, now)
        if self.policy.feature(code) is None:
            raise _unknown_feature(code)
        held = self.feature_seats.get(code, {}).get(user)
        if held is None or not held.is_live(now):
            raise FloatkeyError(
                "registration_not_found", f"The user {user!r} holds no seat of the feature {code!r}."
            )
        del self.feature_seats[code][user]
        return Changes(feature_seats={(code, user): None})

    # Administration and housekeeping

    def release(self, user: str) -> Changes:
        """Free ``user``'s seat and feature seats, whatever the license's state."""
        if user not in self.seats:
            raise FloatkeyError("registration_not_found", f"The user {user!r} holds no seat.")
        return self._free(user)

    def release_all(self) -> Changes:
        changes = Changes()
        for user in list(self.seats):
            changes.merge(self._free(user))
        changes.merge(self.release_all_features())
        return changes

    def release_all_features(self) -> Changes:
        changes = Changes()
        for code, holders in self.feature_seats.items():
            for user in holders:
                changes.feature_seats[(code, user)] = None
        self.feature_seats.clear()
        return changes

    def expire(self, now: datetime) -> tuple[list[str], Changes]:
        """Free every seat that has run out; returns the users whose license seat ended."""
        changes = Changes()
        ended = seats.expired_users(self.seats, now)
        for user in ended:
            changes.merge(self._free(user))
        for code, holders in self.feature_seats.items():
            for user in seats.expired_users(holders, now):
                del holders[user]
                changes.feature_seats[(code, user)] = None
        self.due = self._earliest_expiry()
        return ended, changes

    def next_expiry(self) -> datetime | None:
        """No seat runs out before this, so a sweeper can skip licenses with nothing due."""
        return self.due

    def _earliest_expiry(self) -> datetime | None:
        times = [s.expires_at for s in self.seats.values()]
        times += [s.expires_at for holders in self.feature_seats.values() for s in holders.values()]
        return min(times, default=None)

    def _note_expiry(self, seat: Seat) -> None:
        if self.due is None or seat.expires_at < self.due:
            self.due = seat.expires_at

    # Views

    def live_seats(self, now: datetime) -> int:
        return self._live(self.seats, now)

    def _live(self, holders: dict[str, Seat], now: datetime) -> int:
        if self.due is None or now < self.due:
            return len(holders)
        return seats.live_count(holders, now)

    def license_object(self, now: datetime) -> dict[str, Any]:
        """The license as LicenseSpring's license model reads it, with live usage."""
        p = self.policy
        answer = dict(self._static_object)
        answer["is_expired"] = p.validity_period is not None and now >= p.validity_period
        answer["floating_in_use_devices"] = self.live_seats(now)
        answer["total_consumptions"] = consumption.current(self.consumption, p.consumption, now).total
        answer["product_features"] = [self.feature_object(f, now) for f in p.features]
        return answer

    @functools.cached_property
    def _static_object(self) -> dict[str, Any]:
        """The fields of the license object that only the (unchanging) policy decides."""
        p = self.policy
        c = p.consumption
        return {
            "id": self.license_id,
            "license_key": p.license_key,
            "license_type": p.license_type,
            "license_active": p.license_enabled,
            "license_enabled": p.license_enabled,
            "is_expired": False,
            "is_trial": p.is_trial,
            "validity_period": format_time(p.validity_period),
            "start_date": format_time(p.start_date or self.added_at),
            "is_floating": True,
            "is_floating_cloud": False,
            "floating_users": p.floating_users,
            "floating_timeout": p.floating_timeout,
            "floating_in_use_devices": 0,
            "can_borrow": p.max_borrow_time > 0,
            "max_borrow_time": p.max_borrow_time,
            "is_borrowed": False,
            "borrowed_until": None,
            "max_consumptions": c.max_consumptions,
            "total_consumptions": 0,
            "allow_unlimited_consumptions": c.allow_unlimited_consumptions,
            "allow_negative_consumptions": c.allow_negative_consumptions,
            "allow_overages": c.allow_overages,
            "max_overages": c.max_overages,
            "reset_consumption": c.reset_consumption,
            "consumption_period": c.consumption_period,
            "is_hardware_key_auth": p.is_hardware_key_auth,
            "product_details": {
                "product_id": self.license_id,
                "product_name": p.product_name,
                "short_code": p.product,
            },
            "product_features": [],
            "metadata": p.metadata,
            "customer": p.customer,
        }

    def feature_object(self, feature: FeaturePolicy, now: datetime) -> dict[str, Any]:
        c = feature.consumption
        counter = consumption.current(self.feature_consumption.get(feature.code, Counter()), c, now)
        return {
            "code": feature.code,
            "name": feature.name,
            "feature_type": feature.feature_type,
            "expiry_date": format_time(feature.expiry_date),
            "is_floating": feature.is_floating,
            "floating_users": feature.floating_users,
            "floating_timeout": feature.timeout_minutes(self.policy.floating_timeout),
            "floating_in_use_devices": self._live(self.feature_seats.get(feature.code, {}), now),
            "max_consumption": c.max_consumptions,
            "total_consumptions": counter.total,
            "allow_overages": c.allow_overages,
            "max_overages": c.max_overages,
            "allow_unlimited_consumptions": c.allow_unlimited_consumptions,
            "reset_consumption": c.reset_consumption,
            "consumption_period": c.consumption_period,
            "metadata": feature.metadata,
        }

    def register_answer(self, seat: Seat, now: datetime) -> dict[str, Any]:
        """What register and borrow answer: the SDKs merge the top level into their model."""
        license_object = self.license_object(now)
        # The seat's borrow, in license_json too: the SDK reads both and they must agree.
        license_object["is_borrowed"] = seat.borrowed_until is not None
        license_object["borrowed_until"] = format_time(seat.borrowed_until)
        answer = dict(license_object)
        # The Python SDK reads the seats in use from floating_slots_in_use, the Node SDK
        # from floating_in_use.
        answer["floating_slots_in_use"] = license_object["floating_in_use_devices"]
        answer["floating_in_use"] = license_object["floating_in_use_devices"]
        answer["license_json"] = orjson.dumps(license_object).decode()
        answer["registration"] = seat.to_answer()
        return answer

    def registrations(self, now: datetime) -> list[dict[str, Any]]:
        out = []
        for user, seat in self.seats.items():
            if not seat.is_live(now):
                continue
            features = [
                {"feature": code, **held.to_answer()}
                for code, holders in self.feature_seats.items()
                if (held := holders.get(user)) is not None and held.is_live(now)
            ]
            out.append(
                {
                    "license_id": self.license_id,
                    "product": self.policy.product,
                    **seat.to_answer(),
                    "features": features,
                }
            )
        return out

    # Helpers

    def _take(self, user: str, client: ClientInfo, now: datetime, until: datetime | None) -> Seat:
        seat = seats.take_seat(
            self.seats,
            user,
            client,
            capacity=self.policy.floating_users,
            timeout_minutes=self.policy.floating_timeout,
            now=now,
            borrowed_until=until,
        )
        self.seats[user] = seat
        self._note_expiry(seat)
        return seat

    def _borrowed(self, held: Seat, until: datetime) -> Seat:
        """``held`` borrowed until ``until``, a time later than it would have ended."""
        timeout = self.policy.floating_timeout
        seat = replace(held, borrowed_until=until, expires_at=seats.expiry(held.refreshed_at, timeout, until))
        self.seats[held.user] = seat
        return seat

    def _held_seat(self, user: str, now: datetime) -> Seat:
        seat = self.seats.get(user)
        if seat is None or not seat.is_live(now):
            raise FloatkeyError(
                "registration_not_found",
                f"The user {user!r} holds no seat of the license of {self.policy.product}; register first.",
            )
        return seat

    def _free(self, user: str) -> Changes:
        changes = Changes(seats={user: None})
        self.seats.pop(user, None)
        for code, holders in self.feature_seats.items():
            if holders.pop(user, None) is not None:
                changes.feature_seats[(code, user)] = None
        return changes

    def _feature(self, code: str, now: datetime) -> FeaturePolicy:
        feature = self.policy.feature(code)
        if feature is None:
            raise _unknown_feature(code)
        if feature.expiry_date is not None and now >= feature.expiry_date:
            raise FloatkeyError(
                "license_expired",
                f"The feature {code!r} expired on {format_time(feature.expiry_date)}.",
            )
        return feature


def _unknown_feature(code: str) -> FloatkeyError:
    return FloatkeyError(
        "invalid_license_feature_code", f"The license has no feature with the code {code!r}."
    )
