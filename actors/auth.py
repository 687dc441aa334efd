"""AuthActor: the users, their roles and password hashes, and the login throttle.

The actor owns every change to users and the throttle's counts. After each change it
publishes an immutable ``UserIndex`` that request threads read without asking the actor:
verifying a token on every request costs a dictionary lookup, not a round trip.

Passwords never enter the actor. The caller hashes a new password (or verifies a login
against the published hash) in its own thread, then hands the actor the hash (or the
outcome), so a fifth of a second of argon2 never blocks the actor's mailbox.

Each user has a security stamp, a random value replaced on every password or role
change; tokens carry it (see ``floatkey.auth.tokens``), so such a change voids older tokens.

The first admin: when the data directory has no user yet and ``auth.initialAdminPassword``
is set, the actor creates the user ``admin`` with that password, marked
``must_change_password``. Its tokens open only the password-change routes until the
password is changed. The password is used once per data directory: a marker keeps it
from re-creating ``admin`` after every user has been removed.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from types import MappingProxyType
from typing import Any, cast

import pykka
from pykka.typing import ActorMemberMixin, proxy_method

from floatkey.auth.hashing import PasswordHashing
from floatkey.auth.passwords import ADMIN, check_role
from floatkey.auth.throttle import Throttle
from floatkey.auth.users import UserHolder, UserIndex, UserView
from floatkey.errors import FloatkeyError
from floatkey.storage import Storage, records
from floatkey.timeutil import format_time, utcnow

logger = logging.getLogger(__name__)

INITIAL_ADMIN = "admin"


def no_such_user(username: str) -> FloatkeyError:
    return FloatkeyError("not_found", f"There is no user {username!r}.")


class AuthActor(pykka.ThreadingActor):
    def __init__(
        self,
        storage: Storage,
        holder: UserHolder,
        throttle: Throttle,
        *,
        hashing: PasswordHashing | None = None,
        initial_admin_password: str | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__()
        self._storage = storage
        self._holder = holder
        self._throttle = throttle
        self._hashing = hashing
        self._initial_password = initial_admin_password
        self._monotonic = monotonic
        self._clock = clock
        self._users: dict[str, UserView] = {}

    def on_start(self) -> None:
        for key, record in self._storage.items(records.USERS):
            if records.is_user_key(key):
                username = key.decode("utf-8")
                self._users[username] = records.user_from_record(username, record)
        if (
            not self._users
            and self._initial_password
            and self._storage.get(records.USERS, records.INITIAL_ADMIN_CREATED) is None
        ):
            self._create_initial_admin(self._initial_password)
        self._publish()
        logger.info("%d users loaded", len(self._users))

    def _create_initial_admin(self, password: str) -> None:
        hashing = self._hashing or PasswordHashing()
        user = UserView(INITIAL_ADMIN, ADMIN, hashing.hash(password), _new_stamp(), True, self._clock())
        self._storage.write_now(
            [
                ("put", records.USERS, records.user_key(INITIAL_ADMIN), records.user_record(user)),
                ("put", records.USERS, records.INITIAL_ADMIN_CREATED, format_time(self._clock())),
            ]
        )
        self._users[INITIAL_ADMIN] = user
        logger.warning(
            "initial admin %r created from auth.initialAdminPassword; its password must be "
            "changed at first login",
            INITIAL_ADMIN,
        )

    # Users

    def add_user(self, username: str, role: str, password_hash: str) -> dict[str, Any]:
        check_role(role)
        if username in self._users:
            raise FloatkeyError("validation_error", f"A user named {username!r} already exists.")
        user = UserView(username, role, password_hash, _new_stamp(), False, self._clock())
        self._save(user)
        logger.info("user %r added with role %s", username, role)
        return user.public()

    def remove_user(self, username: str) -> None:
        user = self._get(username)
        if user.role == ADMIN and self._holder.current.admins == 1:
            raise _last_admin(username)
        self._storage.write_now([("delete", records.USERS, records.user_key(username), None)])
        del self._users[username]
        self._publish()
        logger.info("user %r removed", username)

    def set_password(self, username: str, password_hash: str, expected_stamp: str | None = None) -> UserView:
        """Store a new hash (void older tokens); ``expected_stamp`` guards against a change in between."""
        user = self._get(username)
        if expected_stamp is not None and user.stamp != expected_stamp:
            raise FloatkeyError("unauthorized", "Unauthorized: Please log in")
        user = replace(user, password_hash=password_hash, stamp=_new_stamp(), must_change_password=False)
        self._save(user)
        logger.info("password of user %r changed", username)
        return user

    def rehash(self, username: str, old_hash: str, new_hash: str) -> None:
        """Replace a hash made with outdated parameters after a login proved the password.

        Tokens stay valid: the password is the same. Skipped if the hash changed meanwhile.
        """
        user = self._users.get(username)
        if user is None or user.password_hash != old_hash:
            return
        self._save(replace(user, password_hash=new_hash))
        logger.info("password hash of user %r upgraded to the current argon2 parameters", username)

    def set_role(self, username: str, role: str) -> dict[str, Any]:
        check_role(role)
        user = self._get(username)
        if user.role == role:
            return user.public()
        if user.role == ADMIN and self._holder.current.admins == 1:
            raise _last_admin(username)
        user = replace(user, role=role, stamp=_new_stamp())
        self._save(user)
        logger.info("user %r now has role %s", username, role)
        return user.public()

    def users(self) -> list[dict[str, Any]]:
        return [u.public() for u in sorted(self._users.values(), key=lambda u: u.username)]

    # Login throttling

    def login_allowed(self, username: str, address: str) -> int | None:
        """None when a login may be tried now; else the seconds to wait (HTTP Retry-After)."""
        return self._throttle.retry_after(_throttle_keys(username, address), self._monotonic())

    def login_failed(self, username: str, address: str) -> list[tuple[str, str]]:
        """Count a failure; answers what it newly throttles, as ``(kind, value)`` pairs."""
        throttled = self._throttle.fail(_throttle_keys(username, address), self._monotonic())
        for kind, value in throttled:
            logger.warning(
                "logins throttled for %s %r after %d failures within %d s",
                kind,
                value,
                self._throttle.max_failures,
                self._throttle.window,
            )
        return list(throttled)

    def login_succeeded(self, username: str) -> None:
        self._throttle.forget(("user", username))

    # Plumbing

    def _get(self, username: str) -> UserView:
        user = self._users.get(username)
        if user is None:
            raise no_such_user(username)
        return user

    def _save(self, user: UserView) -> None:
        """Persist (synced) before the change is visible or answered."""
        self._storage.write_now(
            [("put", records.USERS, records.user_key(user.username), records.user_record(user))]
        )
        self._users[user.username] = user
        self._publish()

    def _publish(self) -> None:
        self._holder.publish(UserIndex(MappingProxyType(dict(self._users))))


def _new_stamp() -> str:
    return secrets.token_urlsafe(16)


def _throttle_keys(username: str, address: str) -> tuple[tuple[str, str], tuple[str, str]]:
    return ("user", username[:256]), ("address", address)


def _last_admin(username: str) -> FloatkeyError:
    return FloatkeyError(
        "validation_error",
        f"{username!r} is the last admin; add another admin first, or nobody could administer this server.",
    )


class AuthProxy(ActorMemberMixin, pykka.ActorProxy[AuthActor]):
    """The typed way to talk to the AuthActor: every call answers a future of its result."""

    add_user = proxy_method(AuthActor.add_user)
    remove_user = proxy_method(AuthActor.remove_user)
    set_password = proxy_method(AuthActor.set_password)
    rehash = proxy_method(AuthActor.rehash)
    set_role = proxy_method(AuthActor.set_role)
    users = proxy_method(AuthActor.users)
    login_allowed = proxy_method(AuthActor.login_allowed)
    login_failed = proxy_method(AuthActor.login_failed)
    login_succeeded = proxy_method(AuthActor.login_succeeded)


def auth_proxy(ref: pykka.ActorRef[AuthActor]) -> AuthProxy:
    return cast(AuthProxy, ref.proxy())
