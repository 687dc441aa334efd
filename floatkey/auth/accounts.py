"""The request-thread side of authentication: what the HTTP routes and the CLI call.

``Accounts`` checks the password rules, hashes and verifies passwords in the calling
thread, asks the AuthActor for the rest, and issues and verifies tokens. Verifying a
token reads the actor's published ``UserIndex`` and never waits for the actor.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any, TypeVar

import pykka

from floatkey.actors.auth import AuthProxy
from floatkey.audit import events
from floatkey.audit.events import Audit, NoAudit
from floatkey.auth.hashing import PasswordHashing
from floatkey.auth.passwords import check_password, check_role, check_username
from floatkey.auth.tokens import InvalidToken, TokenSigner
from floatkey.auth.users import UserHolder, UserView
from floatkey.errors import FloatkeyError

logger = logging.getLogger(__name__)

T = TypeVar("T")

UNAUTHORIZED_MESSAGE = "Unauthorized: Please log in"


def unauthorized() -> FloatkeyError:
    """The V1 answer to a request without a valid token."""
    return FloatkeyError("unauthorized", UNAUTHORIZED_MESSAGE)


def login_failed() -> FloatkeyError:
    """The one answer to an unknown user and a wrong password alike."""
    return FloatkeyError("authentication_failed", "Wrong username or password.")


def throttled(retry_after: int) -> FloatkeyError:
    return FloatkeyError(
        "too_many_requests",
        f"Too many failed logins; try again in {retry_after} seconds.",
        retry_after=retry_after,
    )


class Accounts:
    def __init__(
        self,
        actor: AuthProxy,
        holder: UserHolder,
        signer: TokenSigner | None,
        hashing: PasswordHashing,
        timeout: float = 10.0,
        *,
        audit: Audit | None = None,
    ) -> None:
        self._actor = actor
        self._holder = holder
        self.signer = signer
        self._hashing = hashing
        self._timeout = timeout
        #: Where user changes and refused logins are recorded (never a password or token).
        self.audit = audit or NoAudit()

    # Tokens

    def authenticate(self, token: str) -> UserView:
        """The user a token stands for, if it is genuine and still current; else ``unauthorized``."""
        if self.signer is None:
            raise unauthorized()
        try:
            claims = self.signer.verify(token)
        except InvalidToken:
            raise unauthorized() from None
        user = self._holder.current.get(claims.username)
        if user is None or user.role != claims.role or not hmac.compare_digest(user.stamp, claims.stamp):
            raise unauthorized()
        return user

    def token_for(self, user: UserView) -> str:
        assert self.signer is not None
        return self.signer.issue(user.username, user.role, user.stamp)

    # Logins

    def login(self, username: str, password: str, address: str) -> UserView:
        """The user whose credentials these are; ``authentication_failed`` or ``too_many_requests``.

        A throttled username or address is refused before the password is looked at, so
        while throttled even the right password gets 429. An unknown user is verified
        against a dummy hash: same answer, same time as a wrong password.
        """
        retry_after = self._ask(self._actor.login_allowed(username, address))
        if retry_after is not None:
            # Not recorded one by one: the start of the throttling is (login_throttled).
            raise throttled(retry_after)
        user = self._holder.current.get(username)
        if self._hashing.verify(user.password_hash if user else None, password) and user is not None:
            self._actor.login_succeeded(username)
            if self._hashing.needs_rehash(user.password_hash):
                self._actor.rehash(username, user.password_hash, self._hashing.hash(password))
            return user
        newly_throttled = self._ask(self._actor.login_failed(username, address))
        named = self._known(username)
        self.audit.refused(events.LOGIN_REFUSED, "authentication_failed", username=named, address=address)
        for kind, value in newly_throttled or ():
            which = value if kind == "address" else self._known(value)
            self.audit.refused(events.LOGIN_THROTTLED, "too_many_requests", by=kind, value=which)
        raise login_failed()

    def _known(self, username: str) -> str | None:
        """``username`` if it names a user, else None: an unknown name may be a mistyped password."""
        return username if self._holder.current.get(username) is not None else None

    def change_own_password(self, user: UserView, old: str, new: str, address: str) -> UserView:
        """A user changes their own password: the old one is checked (and throttled) like a login."""

        def change() -> UserView:
            check_password(new, user.username)
            self.login(user.username, old, address)
            if hmac.compare_digest(old, new):
                raise FloatkeyError("validation_error", "The new password must differ from the old one.")
            return self._ask(self._actor.set_password(user.username, self._hashing.hash(new), user.stamp))

        return self.audit.audited(events.USER_PASSWORD_CHANGED, change, username=user.username, own=True)

    # Administration

    def add_user(self, username: str, password: str, role: str) -> dict[str, Any]:
        def add() -> dict[str, Any]:
            check_username(username)
            check_role(role)
            check_password(password, username)
            return self._ask(self._actor.add_user(username, role, self._hashing.hash(password)))

        return self.audit.audited(events.USER_ADDED, add, username=username, role=role)

    def set_password(self, username: str, password: str) -> UserView:
        """An admin (or the CLI) sets a password without knowing the old one."""

        def change() -> UserView:
            if self._holder.current.get(username) is None:
                raise FloatkeyError("not_found", f"There is no user {username!r}.")
            check_password(password, username)
            return self._ask(self._actor.set_password(username, self._hashing.hash(password)))

        return self.audit.audited(events.USER_PASSWORD_CHANGED, change, username=username, own=False)

    def set_role(self, username: str, role: str) -> dict[str, Any]:
        return self.audit.audited(
            events.USER_ROLE_CHANGED,
            lambda: self._ask(self._actor.set_role(username, check_role(role))),
            username=username,
            role=role,
        )

    def remove_user(self, username: str) -> None:
        self.audit.audited(
            events.USER_REMOVED, lambda: self._ask(self._actor.remove_user(username)), username=username
        )

    def users(self) -> list[dict[str, Any]]:
        return self._ask(self._actor.users())

    def _ask(self, future: pykka.Future[T]) -> T:
        try:
            return future.get(timeout=self._timeout)
        except pykka.Timeout:
            raise FloatkeyError(
                "service_unavailable", "The authentication service is overloaded; try again shortly."
            ) from None
        except pykka.ActorDeadError:
            raise FloatkeyError("service_unavailable", "floatkey is not running.") from None
