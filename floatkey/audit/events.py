"""The kinds of audit events, and ``Audit``: what the rest of floatkey calls to record one.

``Audit.record`` returns once the record is durable (the appender waits for the commit),
so an action that records before it answers never answers with its record still in memory.
``Audit.audited`` runs an action and records its outcome: ``ok``, or the error code it
failed with (and re-raises). Nothing secret ever goes in: callers pass names, ids and
hashes, never a password, token, PIN or secret.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

from floatkey.audit import origin as origins
from floatkey.errors import FloatkeyError, StorageError

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Licenses and seats
LICENSE_ADDED = "license_added"
LICENSE_IMPORTED = "license_imported"  # vendor license files (to come): see Audit.license_event
LICENSE_REFRESHED = "license_refreshed"  # idem
LICENSE_REMOVED = "license_removed"
SEAT_FORCE_RELEASED = "seat_force_released"
UNREGISTER_ALL = "unregister_all"
FEATURE_RELEASE_ALL = "feature_release_all"
# Users and logins
USER_ADDED = "user_added"
USER_REMOVED = "user_removed"
USER_ROLE_CHANGED = "user_role_changed"
USER_PASSWORD_CHANGED = "user_password_changed"
SECRET_ROTATED = "secret_rotated"
LOGIN_REFUSED = "login_refused"
LOGIN_THROTTLED = "login_throttled"
# Hardware keys
KEY_CONNECTED = "hardware_key_connected"
KEY_LOST = "hardware_key_lost"
KEY_INVALID = "hardware_key_invalid"
CRASH_NO_KEY = "crash_no_hardware_key"
# The server itself
CLOCK_ROLLED_BACK = "clock_rolled_back"  # reserved: the vendor-license work raises it
CONFIG_LOADED = "config_loaded"
AUDIT_PRUNED = "audit_pruned"

KINDS = frozenset(
    {
        LICENSE_ADDED,
        LICENSE_IMPORTED,
        LICENSE_REFRESHED,
        LICENSE_REMOVED,
        SEAT_FORCE_RELEASED,
        UNREGISTER_ALL,
        FEATURE_RELEASE_ALL,
        USER_ADDED,
        USER_REMOVED,
        USER_ROLE_CHANGED,
        USER_PASSWORD_CHANGED,
        SECRET_ROTATED,
        LOGIN_REFUSED,
        LOGIN_THROTTLED,
        KEY_CONNECTED,
        KEY_LOST,
        KEY_INVALID,
        CRASH_NO_KEY,
        CLOCK_ROLLED_BACK,
        CONFIG_LOADED,
        AUDIT_PRUNED,
    }
)

OK = "ok"


class Appender(Protocol):
    """What ``Audit`` needs of the appender: append one record, durable when it returns."""

    def append(
        self, kind: str, actor: str, route: str, outcome: str, details: Mapping[str, Any]
    ) -> dict[str, Any]: ...


def outcome_of(exc: BaseException) -> str:
    """The outcome a failed action is recorded with: its error code."""
    if isinstance(exc, FloatkeyError):
        return exc.code
    if isinstance(exc, StorageError):
        return "service_unavailable"
    return "internal_error"


class Audit:
    """The audit trail as the rest of floatkey sees it."""

    def __init__(self, appender: Appender) -> None:
        self._appender = appender

    def record(
        self, kind: str, outcome: str = OK, *, origin: origins.Origin | None = None, **details: Any
    ) -> dict[str, Any]:
        """Append one record, durable on return; ``origin`` defaults to the current one."""
        if kind not in KINDS:
            raise ValueError(f"unknown audit event kind {kind!r}")
        who = origin or origins.current()
        return self._appender.append(kind, who.actor, who.route, outcome, details)

    def audited(self, kind: str, action: Callable[[], T], **details: Any) -> T:
        """Run ``action`` and record its outcome; its error propagates once recorded."""
        try:
            result = action()
        except Exception as exc:
            self.refused(kind, outcome_of(exc), **details)
            raise
        self.record(kind, **details)
        return result

    def refused(self, kind: str, outcome: str, **details: Any) -> None:
        """Record a refusal. If that cannot be stored (a full disk), the refusal itself still
        goes out, and the lost record is logged, rather than a 503 taking its place."""
        try:
            self.record(kind, outcome, **details)
        except Exception as exc:
            logger.error("audit: the %s record (%s) could not be stored: %s", kind, outcome, exc)

    def license_event(self, kind: str, license_id: int | None, product: str | None, **details: Any) -> None:
        """For the vendor-license work: ``LICENSE_IMPORTED`` / ``LICENSE_REFRESHED`` (or added/removed)."""
        if kind not in (LICENSE_ADDED, LICENSE_IMPORTED, LICENSE_REFRESHED, LICENSE_REMOVED):
            raise ValueError(f"{kind!r} is not a license event")
        self.record(kind, license_id=license_id, product=product, **details)

    def clock_rolled_back(self, seen: str, now: str, **details: Any) -> None:
        """For the vendor-license work: the clock went back from ``seen`` to ``now`` (RFC 3339)."""
        self.record(CLOCK_ROLLED_BACK, origin=origins.SYSTEM, seen=seen, now=now, **details)


class NoAudit(Audit):
    """Records nothing: the stand-in while floatkey is not running."""

    def __init__(self) -> None:
        pass

    def record(
        self, kind: str, outcome: str = OK, *, origin: origins.Origin | None = None, **details: Any
    ) -> dict[str, Any]:
        return {}
