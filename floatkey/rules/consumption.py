"""Consumption counters: the limit rule and periodic resets.

The rule is the one the SDKs apply offline: a consumption is allowed when consumptions
are unlimited, or overages are allowed with ``max_overages`` 0 (unlimited overages), or
``total + n <= max_consumptions + (max_overages if allow_overages else 0)``. Counters
that reset do so at the start of the UTC day, Monday, 1st of the month or 1 January.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from floatkey import inputs
from floatkey.errors import FloatkeyError
from floatkey.rules.policy import ConsumptionPolicy


@dataclass(frozen=True, slots=True)
class Counter:
    total: int = 0
    #: Start of the reset period ``total`` was counted in (None when the counter never resets).
    period_start: datetime | None = None


def period_start(period: str, now: datetime) -> datetime:
    """The start, in UTC, of the ``period`` that ``now`` falls in."""
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "daily":
        return day
    if period == "weekly":
        return day - timedelta(days=day.weekday())
    if period == "monthly":
        return day.replace(day=1)
    if period == "annually":
        return day.replace(month=1, day=1)
    raise ValueError(f"unknown consumption period {period!r}")


def current(counter: Counter, policy: ConsumptionPolicy, now: datetime) -> Counter:
    """The counter as it stands at ``now``: zero again once its period has turned."""
    if not policy.reset_consumption or policy.consumption_period is None:
        return counter
    start = period_start(policy.consumption_period, now)
    if counter.period_start is None or counter.period_start < start:
        return Counter(0, start)
    return counter


def allowed(total: int, n: int, policy: ConsumptionPolicy) -> bool:
    if policy.allow_unlimited_consumptions:
        return True
    if policy.allow_overages and policy.max_overages == 0:
        return True
    overages = policy.max_overages if policy.allow_overages else 0
    return total + n <= policy.max_consumptions + overages


def add(counter: Counter, n: int, policy: ConsumptionPolicy, now: datetime, what: str) -> Counter:
    """The counter after consuming ``n`` at ``now``, or an error that changes nothing.

    A total stays within int64, what storage and strict JSON clients take, even when
    consumptions are unlimited.
    """
    n = inputs.count(n)
    counter = current(counter, policy, now)
    if counter.total + n > inputs.INT64_MAX:
        raise FloatkeyError(
            "validation_error",
            f"A consumption of {n} would bring the {what}'s total of {counter.total} past "
            f"{inputs.INT64_MAX}, the largest count floatkey keeps.",
        )
    if n < 0:
        if not policy.allow_negative_consumptions:
            raise FloatkeyError("validation_error", f"Negative consumptions are not allowed on the {what}.")
        if counter.total + n < 0:
            raise FloatkeyError(
                "validation_error",
                f"A consumption of {n} would bring the {what}'s total of {counter.total} below 0.",
            )
    elif not allowed(counter.total, n, policy):
        raise FloatkeyError(
            "license_not_enough_consumptions",
            f"The {what} has {counter.total} of {policy.max_consumptions} consumptions used; "
            f"{n} more would exceed its limit.",
        )
    return Counter(counter.total + n, counter.period_start)
