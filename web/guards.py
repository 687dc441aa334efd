"""Browser guards: what a web page that someone on the network visits may make the server do.

A browser sends some requests to any address without asking the server first ("simple"
requests): a POST whose body is text/plain, form-urlencoded or multipart, or has no type;
and a GET from an image, a link or a form, which carries no ``Origin``. It cannot add a
JSON ``Content-Type`` or an ``Authorization: Bearer`` header to a request for another site
without a CORS preflight, which floatkey never grants. So, on every route:

- a request whose ``Host`` is not a served name is refused (421): with DNS rebinding a
  foreign page points its own host name at the server and reads the answers as its own
  origin; an IP address or a name of this machine is not the attacker's to rebind;
- a request whose ``Origin`` is another site's is refused (403): that page may neither
  write nor read;
- a body must be declared JSON (415), so that no simple POST is ever parsed as JSON;
- a GET route that changes state (the V1 protocol has a few, and the SDKs call
  ``GET /api/v4/unregister/all``) runs only with a JSON ``Content-Type`` (both SDKs send
  one on every request) or a Bearer token: headers a foreign page cannot send.

``guard_request`` is a CherryPy tool at ``before_handler`` priority 15: after
``floatkey_route`` has matched the route (10), before the authentication tool (20).
"""

from __future__ import annotations

import ipaddress
import socket
from functools import lru_cache
from urllib.parse import urlsplit

import cherrypy

from floatkey.app.config import Settings
from floatkey.errors import FloatkeyError
from floatkey.web.routes import PUBLIC, Route
from floatkey.web.server import DRAIN_LIMIT, JsonError, discard

JSON_MEDIA_TYPE = "application/json"
#: Methods whose request may change nothing: a Content-Type on them matters only with a body.
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def default_host_names() -> tuple[str, ...]:
    """The names served when ``allowedHosts`` is empty: localhost and this machine's names."""
    names = {"localhost", socket.gethostname(), socket.getfqdn()}
    return tuple(sorted(name.lower().rstrip(".") for name in names if name))


def split_host(header: str) -> tuple[str, int | None]:
    """``Host`` header -> (lower-case name or address without brackets or final dot, port)."""
    value = header.strip().lower()
    port: int | None = None
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
    elif value.count(":") == 1:
        name, _, text = value.partition(":")
        if text.isdigit():
            port = int(text)
    else:
        name = value
    return name.rstrip("."), port


def is_ip_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name.partition("%")[0])
    except ValueError:
        return False
    return True


def media_type(content_type: str) -> str:
    return content_type.partition(";")[0].strip().lower()


class Guards:
    """The browser guards of one server, built from its settings."""

    def __init__(self, settings: Settings) -> None:
        configured = tuple(name.lower().rstrip(".") for name in settings.allowed_hosts)
        self.any_host = "*" in configured
        self.host_names = frozenset(configured or default_host_names())
        #: Authentication mode: every route but PUBLIC ones needs a Bearer token anyway.
        self.tokens_required = settings.user_authentication
        # A few Host values come back on every request: decide each once.
        self.host_allowed = lru_cache(maxsize=256)(self._host_allowed)

    def _host_allowed(self, header: str) -> bool:
        name, _ = split_host(header)
        return self.any_host or name in self.host_names or is_ip_address(name)

    def check(self) -> None:
        request = cherrypy.serving.request
        headers = request.headers
        host = headers.get("Host")
        if host is not None and not self.host_allowed(host):
            raise _refused(host_not_allowed(host))
        origin = headers.get("Origin")
        if origin is not None and not same_origin(origin, host):
            raise _refused(foreign_origin(origin))
        content_type = headers.get("Content-Type")
        declared_json = content_type is not None and media_type(content_type) == JSON_MEDIA_TYPE
        route: Route | None = getattr(request, "floatkey_route", None)
        file_upload = route is not None and route.file_body  # a foreign Origin was refused above
        if (
            not declared_json
            and not file_upload
            and (_has_body(headers) or (content_type and request.method not in _SAFE_METHODS))
        ):
            raise _refused(not_json(content_type))
        if (
            route is not None
            and route.changes_state
            and not (self.tokens_required and route.role != PUBLIC)  # the role tool will answer 401
            and not declared_json
            and not _has_bearer(headers)
        ):
            raise _refused(state_change_by_page(route))


def guard_request(guards: Guards) -> None:
    """Tool: refuse what a foreign web page could send (see the module's docstring)."""
    guards.check()


def same_origin(origin: str, host: str | None) -> bool:
    """Whether ``Origin`` names the server the request was sent to (its ``Host``).

    The scheme is not compared: behind a TLS proxy the server sees plain HTTP. When the
    Host has no port, the Origin must use its scheme's default port.
    """
    if host is None:
        return False
    try:
        parts = urlsplit(origin.strip())
        origin_port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return False
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return False
    name, port = split_host(host)
    if port is None:
        port = _DEFAULT_PORTS[parts.scheme]
    return parts.hostname.rstrip(".") == name and origin_port == port


def _has_body(headers: cherrypy.lib.httputil.HeaderMap) -> bool:
    length = headers.get("Content-Length", "0").strip()
    return "Transfer-Encoding" in headers or (length != "0" and length != "")


def _refused(error: FloatkeyError) -> JsonError:
    """The error to raise; a body sent with the request is read and dropped first.

    Left unread, a chunked body would be parsed as the next request of the connection
    (the HTTP server drains only a body of known length). Up to ``DRAIN_LIMIT`` bytes are
    read, as for a 413 (server.py).
    """
    request = cherrypy.serving.request
    if _has_body(request.headers):
        discard(request.body, DRAIN_LIMIT)
    return JsonError(error)


def _has_bearer(headers: cherrypy.lib.httputil.HeaderMap) -> bool:
    """A Bearer token, never Basic: a browser resends cached Basic credentials on its own."""
    return headers.get("Authorization", "").lower().startswith("bearer ")


def host_not_allowed(host: str) -> FloatkeyError:
    return FloatkeyError(
        "host_not_allowed",
        f"This server does not serve the host name {host[:100]!r}; add it to the allowedHosts setting "
        "(it protects against DNS rebinding), or use the server's IP address.",
    )


def foreign_origin(origin: str) -> FloatkeyError:
    return FloatkeyError(
        "forbidden",
        f"Requests from the web page origin {origin[:100]!r} are refused: a page of another site may "
        "not use this server. Call it from an application or a command line instead.",
    )


def not_json(content_type: str | None) -> FloatkeyError:
    given = f"not {content_type[:100]!r}" if content_type else "it has none"
    return FloatkeyError(
        "unsupported_media_type",
        f"Send the request body as JSON with the header Content-Type: application/json ({given}); "
        "with curl, add -H 'Content-Type: application/json' or use --json.",
    )


def state_change_by_page(route: Route) -> FloatkeyError:
    return FloatkeyError(
        "forbidden",
        f"{route.method} {route.path} changes state, so a web page must not be able to trigger it: "
        "send it with the header Content-Type: application/json (the LicenseSpring SDKs do) or a "
        "Bearer token; with curl, add -H 'Content-Type: application/json'.",
    )
