"""Every request gets an id: answered in ``X-Request-Id``, repeated in error bodies, logged.

The ``floatkey_request`` tool runs first (``on_start_resource``), before any answer can
be decided, so 404s, refusals and 500s all carry the id. A client or proxy may send its
own ``X-Request-Id`` to follow a request through several systems; it is kept only when
it is short and made of safe characters (it goes into log lines and headers), else the
server makes one. The tool also works out the client address once (behind a trusted
reverse proxy, the one it names) for the log lines and the admin-network check.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Sequence

import cherrypy

from floatkey.app import logs
from floatkey.auth import client_address

logger = logging.getLogger(__name__)

HEADER = "X-Request-Id"
#: An incoming id kept as it is: letters, digits, ``.``, ``_``, ``-``; at most 64 of them.
SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def new_id() -> str:
    return uuid.uuid4().hex


def request_id() -> str | None:
    """The id of the request this thread serves, or None outside a request."""
    rid: str | None = getattr(cherrypy.serving.request, "floatkey_request_id", None)
    return rid


def client() -> str:
    """The client's address: the TCP peer, or behind a trusted proxy the client it names."""
    request = cherrypy.serving.request
    found: str | None = getattr(request, "floatkey_client", None)
    return found if found is not None else (request.remote.ip or "unknown")


def start_request(proxies: Sequence[client_address.Network] = ()) -> None:
    """Tool: give the request its id and address, and bind both to this thread's log lines."""
    request = cherrypy.serving.request
    incoming = request.headers.get(HEADER, "")
    rid = incoming if SAFE_ID.fullmatch(incoming) else new_id()
    request.floatkey_request_id = rid
    request.floatkey_client = client_address.client_address(
        request.remote.ip or "unknown", request.headers.get("X-Forwarded-For"), proxies
    )
    request.floatkey_started = time.perf_counter()
    cherrypy.serving.response.headers[HEADER] = rid
    logs.bind_request(
        request_id=rid, method=request.method, route=request.path_info, client=request.floatkey_client
    )
    request.hooks.attach("on_end_request", end_request, priority=90)


def end_request() -> None:
    """Hook: a DEBUG line per request (method, route, status, duration), then unbind."""
    try:
        if logger.isEnabledFor(logging.DEBUG):
            request = cherrypy.serving.request
            status = cherrypy.serving.response.status
            code = int(str(status).split()[0]) if status else None
            route = getattr(request, "floatkey_route", None)
            elapsed = (time.perf_counter() - request.floatkey_started) * 1000
            logger.debug(
                "%s %s answered %s",
                request.method,
                request.path_info,
                code,
                extra={
                    "status": code,
                    "route": route.path if route is not None else request.path_info,
                    "duration_ms": round(elapsed, 2),
                },
            )
    finally:
        logs.unbind_request()
