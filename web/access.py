"""Authentication mode on CherryPy: the role tool, the login and the user routes.

The ``floatkey_auth`` tool runs at ``before_handler`` priority 20, after ``floatkey_route``
has matched the route, and enforces the route's ``role`` from the one route table:
PUBLIC needs nothing, USER a valid token of a user or an admin, ADMIN an admin's token.
It is switched on only in authentication mode; in open mode the client routes are open,
the admin routes answer only ``adminNetworks`` (web/admin_networks.py), the
user-management routes answer 403 (``floatkey users`` manages users), and the secret
rotation reads a Bearer token if one is sent.

A user whose password must be changed (the initial admin) may only call the password
routes until they have changed it.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable
from typing import Any

import cherrypy

from floatkey import inputs
from floatkey.app.config import Settings
from floatkey.app.system import Floatkey
from floatkey.audit import events
from floatkey.auth import client_address, tokens
from floatkey.auth.accounts import Accounts, unauthorized
from floatkey.auth.passwords import ROLES
from floatkey.auth.users import UserView
from floatkey.errors import FloatkeyError
from floatkey.web import admin_networks, schemas
from floatkey.web.routes import ADMIN, PUBLIC, USER, V4, Route
from floatkey.web.server import JsonError

logger = logging.getLogger(__name__)

SET_PASSWORD = f"{V4}/setPassword"
USER_PASSWORD = f"{V4}/users/{{username}}/password"
#: The routes a user who must change their password may still call.
PASSWORD_ROUTES = frozenset({SET_PASSWORD, USER_PASSWORD})

#: What ``GET /auth`` answers in open mode, whatever the credentials: not a JWT, so no
#: server in authentication mode accepts it; it is worth nothing as a credential.
OPEN_MODE_TOKEN = "open-mode"
OPEN_MODE_MESSAGE = "Open mode: no login needed; this token is not a credential"

_BEARER_CHALLENGE = 'Bearer realm="floatkey"'
_BASIC_CHALLENGE = 'Basic realm="floatkey", charset="UTF-8"'

#: A password to check (old_password, passwordOld): any text the reader takes.
_PASSWORD = schemas.text(1024, required=True)
#: A new password (passwords.password_problems): 12 to 256 characters, no control characters.
_NEW_PASSWORD = {
    "anyOf": [
        {"type": "string", "maxLength": 256, "pattern": r"^[^\u0000-\u001f\u007f-\u009f]{12,256}$"},
        {"type": "integer", "minimum": 10**11},
    ],
    "description": "not the username, not one of the passwords guessers try first",
}
_USERNAME = schemas.text(64, required=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_ROLE = {"type": "string", "enum": list(ROLES)}
_PATH_USERNAME = {"type": "string", "minLength": 1}
_USER = {
    "type": "object",
    "properties": {
        "username": {"type": "string"},
        "role": _ROLE,
        "created_at": {"type": "string"},
        "must_change_password": {"type": "boolean"},
    },
}
_TOKEN_ANSWER = {
    "type": "object",
    "required": ["message", "token"],
    "properties": {
        "message": {"type": "string"},
        "token": {"type": "string"},
        "must_change_password": {"type": "boolean"},
    },
}
_MESSAGE = {"type": "object", "properties": {"message": {"type": "string"}, "token": {"type": "string"}}}


class AuthWeb:
    """Authentication over HTTP: the login and user routes and the role tool.

    The users, their actor and the tokens belong to ``Floatkey`` (it builds and stops
    them); this class only speaks HTTP to ``fk.accounts``.
    """

    def __init__(self, settings: Settings, fk: Floatkey | None = None) -> None:
        self.settings = settings
        self.fk = fk
        self._proxies = client_address.networks(settings.auth.trusted_proxies)

    @property
    def accounts(self) -> Accounts:
        if self.fk is None:
            raise FloatkeyError("service_unavailable", "floatkey is not running.")
        return self.fk.accounts

    def _address(self) -> str:
        """The client's address for throttling: behind a trusted proxy, the one it names."""
        request = cherrypy.serving.request
        return client_address.client_address(
            request.remote.ip or "unknown", request.headers.get("X-Forwarded-For"), self._proxies
        )

    # CherryPy wiring

    def config(self) -> dict[str, Any]:
        """Application config: the role tool in authentication mode, else the admin-network tool."""
        cherrypy.tools.floatkey_auth = cherrypy.Tool("before_handler", require_role, priority=20)
        cherrypy.tools.floatkey_admin_networks = cherrypy.Tool(
            "before_handler", admin_networks.require_admin_network, priority=20
        )
        return {
            "/": {
                "tools.floatkey_auth.on": self.settings.user_authentication,
                "tools.floatkey_auth.auth": self,
                "tools.floatkey_admin_networks.on": not self.settings.user_authentication,
                "tools.floatkey_admin_networks.networks": client_address.networks(
                    self.settings.admin_networks
                ),
            }
        }

    def bearer_user(self) -> UserView:
        """The user of the request's Bearer token; ``unauthorized`` without a valid one."""
        header = cherrypy.serving.request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized()
        return self.accounts.authenticate(token.strip())

    # Routes

    def routes(self) -> list[Route]:
        tags = ("authentication",)
        return [
            Route(
                "GET",
                "/auth",
                self.login,
                PUBLIC,
                "Log in with HTTP Basic credentials; answers a Bearer token (in open mode, the "
                "worthless token `open-mode` for V1 clients that insist on one)",
                None,
                _TOKEN_ANSWER,
                tags=tags,
            ),
            Route(
                "GET",
                f"{V4}/users",
                self._users_route(self.list_users),
                ADMIN,
                "The users and their roles",
                None,
                {"type": "object", "properties": {"users": {"type": "array", "items": _USER}}},
                tags=tags,
            ),
            Route(
                "POST",
                f"{V4}/users",
                self._users_route(self.add_user),
                ADMIN,
                "Add a user",
                {
                    "type": "object",
                    "required": ["username", "password"],
                    "properties": {
                        "username": _USERNAME,
                        "password": _NEW_PASSWORD,
                        "role": schemas.enum(*ROLES),
                    },
                },
                _USER,
                status=201,
                tags=tags,
            ),
            Route(
                "DELETE",
                f"{V4}/users/{{username}}",
                self._users_route(self.remove_user),
                ADMIN,
                "Remove a user (their tokens stop working)",
                {"type": "object", "properties": {"username": _PATH_USERNAME}},
                {"type": "string", "enum": ["user_removed"]},
                tags=tags,
            ),
            Route(
                "POST",
                USER_PASSWORD,
                self._users_route(self.change_password),
                USER,
                "Change a password: your own (with old_password), or anyone's as an admin",
                {
                    "type": "object",
                    "required": ["password"],
                    "properties": {
                        "username": _PATH_USERNAME,
                        "password": _NEW_PASSWORD,
                        "old_password": _PASSWORD,
                    },
                },
                _MESSAGE,
                tags=tags,
            ),
            Route(
                "POST",
                f"{V4}/users/{{username}}/role",
                self._users_route(self.change_role),
                ADMIN,
                "Change a user's role (their tokens stop working)",
                {
                    "type": "object",
                    "required": ["role"],
                    "properties": {"username": _PATH_USERNAME, "role": _ROLE},
                },
                _USER,
                tags=tags,
            ),
            Route(
                "GET",
                SET_PASSWORD,
                self._users_route(self.set_password_v1),
                USER,
                "Change your own password (V1 shape)",
                {
                    "type": "object",
                    "required": ["passwordOld", "passwordNew"],
                    "properties": {"passwordOld": _PASSWORD, "passwordNew": _NEW_PASSWORD},
                },
                _MESSAGE,
                tags=tags,
                changes_state=True,
            ),
            Route(
                "POST",
                f"{V4}/secret/rotate",
                self.rotate_secret,
                ADMIN,
                "Replace the token secret: every token stops working",
                None,
                _MESSAGE,
                tags=tags,
            ),
        ]

    def _users_route(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        """``handler``, refused in open mode: there every caller would count as an admin."""

        def in_authentication_mode(*args: Any) -> Any:
            if not self.settings.user_authentication:
                raise users_need_authentication_mode()
            return handler(*args)

        return in_authentication_mode

    def login(self, _fk: Floatkey, _query: dict[str, Any], _: dict[str, Any]) -> Any:
        if not self.settings.user_authentication:
            # V1 clients (the Node SDK) refuse to register before they hold a token, even
            # against an open server: give them one that opens nothing open mode does not.
            return {"message": OPEN_MODE_MESSAGE, "token": OPEN_MODE_TOKEN}
        username, password = _basic_credentials()
        user = _throttled_answer(lambda: self.accounts.login(username, password, self._address()))
        answer: dict[str, Any] = {"message": "Login successful", "token": self.accounts.token_for(user)}
        if user.must_change_password:
            answer["must_change_password"] = True
        return answer

    def list_users(self, _fk: Floatkey, _query: dict[str, Any], _: dict[str, Any]) -> Any:
        return {"users": self.accounts.users()}

    def add_user(self, _fk: Floatkey, body: dict[str, Any], _: dict[str, Any]) -> Any:
        username = _required_text(body, "username", 64)
        password = _required_text(body, "password", 1024)
        role = inputs.text(body, "role", default="user") or "user"
        answer = self.accounts.add_user(username, password, role)
        logger.info("user %r added over HTTP by %s", username, self._caller_name())
        return answer

    def remove_user(self, _fk: Floatkey, _query: dict[str, Any], params: dict[str, Any]) -> Any:
        self.accounts.remove_user(params["username"])
        return "user_removed"

    def change_role(self, _fk: Floatkey, body: dict[str, Any], params: dict[str, Any]) -> Any:
        return self.accounts.set_role(params["username"], _required_text(body, "role", 16))

    def change_password(self, _fk: Floatkey, body: dict[str, Any], params: dict[str, Any]) -> Any:
        username = params["username"]
        new = _required_text(body, "password", 1024)
        caller = self._caller()
        if caller is not None and caller.username == username:
            old = _required_text(body, "old_password", 1024)
            return self._own_password_changed(caller, old, new)
        if caller is not None and (caller.role != ADMIN or caller.must_change_password):
            raise forbidden()
        self.accounts.set_password(username, new)
        return {"message": "Password changed"}

    def set_password_v1(self, _fk: Floatkey, query: dict[str, Any], _: dict[str, Any]) -> Any:
        old = _required_text(query, "passwordOld", 1024)
        new = _required_text(query, "passwordNew", 1024)
        caller = self._caller()
        if caller is None:
            raise unauthorized()
        return self._own_password_changed(caller, old, new)

    def rotate_secret(self, _fk: Floatkey, _query: dict[str, Any], _: dict[str, Any]) -> Any:
        signer = self.accounts.signer
        assert signer is not None
        self.accounts.audit.audited(
            events.SECRET_ROTATED, lambda: signer.replace_secret(tokens.rotate_secret(self.settings.data_dir))
        )
        logger.warning("token secret rotated by %s: every token issued before is void", self._caller_name())
        answer = {"message": "Token secret rotated; every earlier token is void"}
        caller = self._caller()
        if caller is not None:
            answer["token"] = self.accounts.token_for(caller)
        return answer

    def _own_password_changed(self, caller: UserView, old: str, new: str) -> dict[str, Any]:
        user = _throttled_answer(lambda: self.accounts.change_own_password(caller, old, new, self._address()))
        return {"message": "Password changed", "token": self.accounts.token_for(user)}

    def _caller(self) -> UserView | None:
        """Who is calling: the user the tool checked, or in open mode the sender of a Bearer token.

        None in open mode without a token: an operator with every right (the user routes,
        where that would let anyone make an admin, are refused in open mode).
        """
        request = cherrypy.serving.request
        user = getattr(request, "floatkey_user", None)
        if user is None and "Authorization" in request.headers:
            user = self.bearer_user()
        return user

    def _caller_name(self) -> str:
        request = cherrypy.serving.request
        user = getattr(request, "floatkey_user", None)
        return f"user {user.username!r}" if user is not None else f"an open-mode client at {self._address()}"


def require_role(auth: AuthWeb) -> None:
    """Tool: enforce the matched route's role (authentication mode only)."""
    request = cherrypy.serving.request
    route: Route | None = getattr(request, "floatkey_route", None)
    if route is not None and route.role == PUBLIC:
        return
    if route is not None and route.token_check is not None:
        scheme, _, token = cherrypy.serving.request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and route.token_check(token.strip()):
            return
    try:
        user = auth.bearer_user()
    except FloatkeyError as error:
        if error.code == "unauthorized":
            cherrypy.serving.response.headers["WWW-Authenticate"] = _BEARER_CHALLENGE
        raise JsonError(error) from None
    if route is None or route.role not in (USER, ADMIN):
        raise JsonError(forbidden())
    if user.must_change_password and route.path not in PASSWORD_ROUTES:
        raise JsonError(
            FloatkeyError(
                "forbidden",
                "Change your initial password first: POST /api/v4/users/{you}/password or "
                "GET /api/v4/setPassword?passwordOld=...&passwordNew=..., then log in again.",
            )
        )
    if route.role == ADMIN and user.role != ADMIN:
        raise JsonError(forbidden())
    request.floatkey_user = user


def users_need_authentication_mode() -> FloatkeyError:
    return FloatkeyError(
        "forbidden",
        "User management over HTTP needs authentication mode (userAuthentication: true); "
        "in open mode manage users with the `floatkey users` command on the server.",
    )


def forbidden() -> FloatkeyError:
    return FloatkeyError("forbidden", "Your role may not use this route.")


def _required_text(fields: dict[str, Any], name: str, max_length: int) -> str:
    value = inputs.text(fields, name, required=True, max_length=max_length)
    assert value is not None
    return value


def _basic_credentials() -> tuple[str, str]:
    """Username and password of the request's Basic header; ``authentication_failed`` if none."""
    header = cherrypy.serving.request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    try:
        if scheme.lower() != "basic":
            raise ValueError("not Basic")
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        username, sep, password = decoded.partition(":")
        if not sep or not username:
            raise ValueError("no colon")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        cherrypy.serving.response.headers["WWW-Authenticate"] = _BASIC_CHALLENGE
        raise FloatkeyError(
            "authentication_failed", "Send the username and password with HTTP Basic authentication."
        ) from None
    return username, password


def _throttled_answer(call: Any) -> Any:
    """Run a login; a throttled one gets the ``Retry-After`` header with its 429."""
    try:
        return call()
    except FloatkeyError as error:
        if error.code == "too_many_requests":
            cherrypy.serving.response.headers["Retry-After"] = str(error.extra["retry_after"])
        raise
