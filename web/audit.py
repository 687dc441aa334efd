"""The audit trail over HTTP: who is acting in a request, and ``GET /api/v4/audit``.

An audit record made while a request is served names the request's actor and route
(floatkey/audit/origin.py): the user's name in authentication mode, ``open-mode
<address>`` in open mode, ``anonymous <address>`` before a login. They are worked out when
the record is made, from the request as the tools left it (the role tool has found the
caller by then), so that the requests that record nothing, every client route, pay
nothing for them; an origin per request cost the register mix about 5 % of its CPU.
"""

from __future__ import annotations

from typing import Any

import cherrypy

from floatkey.app.config import Settings
from floatkey.app.system import Floatkey
from floatkey.audit import origin as origins
from floatkey.audit import trail
from floatkey.auth import client_address
from floatkey.errors import FloatkeyError
from floatkey.web import schemas
from floatkey.web.routes import ADMIN, Route

#: Most records one answer holds; narrow ``from``/``to`` (or use ``floatkey audit export``) for more.
MAX_RECORDS = 1000

_TIME = schemas.time()
_RECORD = {
    "type": "object",
    "properties": {
        "seq": {"type": "integer"},
        "at": {"type": "string"},
        "kind": {"type": "string"},
        "actor": {"type": "string"},
        "route": {"type": "string"},
        "outcome": {"type": "string"},
        "details": {"type": "object"},
        "prev": {"type": "string"},
        "hash": {"type": "string"},
    },
}


class AuditWeb:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._proxies = client_address.networks(settings.auth.trusted_proxies)

    def config(self) -> dict[str, Any]:
        """Name the origin of requests from now on (no per-request tool: see the module docstring)."""
        origins.name_requests_with(self.request_origin)
        return {"/": {}}

    def request_origin(self) -> origins.Origin | None:
        """The origin of the request this thread serves; None outside a request."""
        request = cherrypy.serving.request
        if request.app is None:  # CherryPy's placeholder: this thread serves no request
            return None
        route: Route | None = getattr(request, "floatkey_route", None)
        user = getattr(request, "floatkey_user", None)
        address = client_address.client_address(
            request.remote.ip or "unknown", request.headers.get("X-Forwarded-For"), self._proxies
        )
        if user is not None:
            actor = user.username
        elif self.settings.user_authentication:
            actor = f"anonymous {address}"
        else:
            actor = f"open-mode {address}"
        where = f"{route.method} {route.path}" if route is not None else request.path_info
        return origins.Origin(actor, where)

    def routes(self) -> list[Route]:
        return [
            Route(
                "GET",
                "/api/v4/audit",
                self.records,
                ADMIN,
                "The audit trail in order, within an optional time window (at most 1000 records)",
                {"type": "object", "properties": {"from": _TIME, "to": _TIME}},
                {
                    "type": "object",
                    "required": ["records", "truncated"],
                    "properties": {
                        "records": {"type": "array", "items": _RECORD},
                        "truncated": {"type": "boolean"},
                    },
                },
                tags=("admin",),
            )
        ]

    def records(self, fk: Floatkey, query: dict[str, Any], _: dict[str, Any]) -> Any:
        start, end = trail.window(query)
        storage = fk.storage
        if storage is None:
            raise FloatkeyError("service_unavailable", "floatkey is not running.")
        with storage.snapshot() as (txn, dbs):
            found, more = trail.select(txn, dbs, start, end, MAX_RECORDS)
        return {"records": found, "truncated": more}
