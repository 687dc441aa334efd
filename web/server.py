"""The CherryPy application: route matching, JSON in and out, the error shape.

Cross-cutting work runs as CherryPy tools at ``before_handler``: ``floatkey_route``
matches the route table first (priority 10), then the authentication tool, when on,
checks the route's role (priority 20). The one exposed handler reads the fields, calls
the route's handler and renders the answer.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

import cherrypy
from cherrypy import _cplogging

from floatkey import __version__, inputs
from floatkey.app.config import Settings
from floatkey.app.system import Floatkey
from floatkey.auth import client_address
from floatkey.console import assets
from floatkey.errors import FloatkeyError, StorageError, not_stored
from floatkey.web import pages, request_log
from floatkey.web.routes import Route, RouteTable, path_params
from floatkey.web.upload import file_from_body

logger = logging.getLogger(__name__)

JSON_TYPE = "application/json"

#: A body over ``maxBodySize`` is still read and dropped, up to this size, so that the
#: client gets its 413; past it the connection is cut without reading the rest.
DRAIN_LIMIT = 8 * 1024 * 1024
DRAIN_PIECE = 64 * 1024


class JsonError(cherrypy.HTTPError):
    """An HTTPError whose response is the API's JSON error shape.

    Tools raise it: CherryPy answers an HTTPError without logging a traceback.
    """

    def __init__(self, error: FloatkeyError) -> None:
        self.error = error
        super().__init__(error.status, error.message)

    def set_response(self) -> None:
        cherrypy.serving.response.body = error_body(self.error)


def match_route(table: RouteTable) -> None:
    """Tool: find the route of this request, or answer 404/405."""
    request = cherrypy.serving.request
    route, params, known = table.match(request.method, request.path_info)
    if route is None:
        if known:
            cherrypy.serving.response.headers["Allow"] = ", ".join(table.allowed_methods(request.path_info))
            raise JsonError(
                FloatkeyError(
                    "method_not_allowed", f"{request.method} is not allowed on {request.path_info}."
                )
            )
        raise JsonError(not_found(request.path_info))
    request.floatkey_route = route
    # The request target as sent: the decoded path keeps %2F, so it cannot tell a%2Fb from a%252Fb.
    raw_uri = getattr(request, "wsgi_environ", {}).get("REQUEST_URI")
    request.floatkey_path_params = (
        path_params(route, urlsplit(raw_uri).path) if raw_uri and params else params
    )


def check_query() -> None:
    """Tool: a query string that is not UTF-8 is the client's error (CherryPy answers 404)."""
    query = cherrypy.serving.request.query_string
    if "%" in query or not query.isascii():
        try:
            unquote_to_bytes(query.replace("+", " ")).decode("utf-8")
        except UnicodeDecodeError:
            raise JsonError(
                FloatkeyError(
                    "validation_error",
                    "The query string is not UTF-8 once percent-decoded; percent-encode the "
                    "UTF-8 bytes of each value.",
                )
            ) from None


def raw_body() -> None:
    """Tool: keep the body unparsed so the handler reads it as JSON whatever its type says."""
    cherrypy.serving.request.body.processors.clear()


class Api:
    """The root of the application: one handler for every route of the table.

    CherryPy calls ``index`` for ``/`` and ``default`` for every other path; the
    ``floatkey_route`` tool has already matched the route either way.
    """

    def __init__(self, fk: Floatkey, table: RouteTable, settings: Settings) -> None:
        self.fk = fk
        self.table = table
        self.max_body = settings.max_body_size

    @cherrypy.expose
    def default(self, *_vpath: str, **query: Any) -> bytes:
        request = cherrypy.serving.request
        route: Route = request.floatkey_route
        try:
            if route.file_body:
                fields = {"file": file_from_body(self._raw(), request.headers.get("Content-Type"))}
            else:
                fields = self._body() if request.method == "POST" else _single_values(query)
            result = route.handler(self.fk, fields, request.floatkey_path_params)
        except FloatkeyError as error:
            return error_body(error)
        except StorageError:
            return error_body(not_stored())  # the storage writer has logged why
        cherrypy.serving.response.status = route.status
        return render(result)

    @cherrypy.expose
    def index(self, **query: Any) -> bytes:
        return self.default(**query)

    def _body(self) -> dict[str, Any]:
        raw = self._raw()
        if not raw.strip():
            return {}
        try:
            parsed = json.loads(raw)
        except (ValueError, RecursionError):
            raise FloatkeyError("invalid_json", "The request body is not valid JSON.") from None
        if not isinstance(parsed, dict):
            raise FloatkeyError("invalid_json", "The request body must be a JSON object.")
        inputs.finite_numbers(parsed)  # NaN, Infinity, 1e400: a validation_error naming the field
        return parsed

    def _raw(self) -> bytes:
        request = cherrypy.serving.request
        length = request.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            if int(length) <= DRAIN_LIMIT:
                discard(request.body, DRAIN_LIMIT)
            raise too_large(self.max_body)
        try:
            raw = request.body.read(self.max_body + 1) if request.body else b""
        except ValueError as error:  # cheroot: a chunk size or terminator that is not HTTP
            cherrypy.serving.response.headers["Connection"] = "close"
            raise FloatkeyError(
                "malformed_request", f"The chunked request body is malformed ({error}); send valid HTTP/1.1."
            ) from None
        if len(raw) > self.max_body:
            discard(request.body, DRAIN_LIMIT - len(raw))
            raise too_large(self.max_body)
        return raw


def _single_values(query: dict[str, Any]) -> dict[str, Any]:
    for name, value in query.items():
        if not isinstance(value, str):
            raise FloatkeyError("validation_error", f"The query parameter {name!r} is given twice.")
    return query


def not_found(path: str) -> FloatkeyError:
    return FloatkeyError("not_found", f"There is no route {path}; see /api/v4/docs.")


def discard(body: Any, limit: int) -> None:
    """Read and drop up to ``limit`` bytes of what is left of a refused body.

    The 413 closes the connection, and a socket closed with unread data resets it: a
    client still sending would get a broken pipe instead of the answer (RFC 9112 9.6).
    """
    left = limit
    try:
        while left > 0:
            piece = body.read(min(left, DRAIN_PIECE))
            if not piece:
                return
            left -= len(piece)
    except (OSError, ValueError):
        return


def too_large(limit: int) -> FloatkeyError:
    cherrypy.serving.response.headers["Connection"] = "close"
    return FloatkeyError("payload_too_large", f"The request body is larger than {limit} bytes.")


def render(result: Any) -> bytes:
    response = cherrypy.serving.response
    if isinstance(result, assets.Asset):
        return assets.answer(result, cherrypy.serving.request, response)
    if isinstance(result, pages.Html):
        response.headers["Content-Type"] = "text/html;charset=utf-8"
        return result.encode()
    if isinstance(result, pages.Csv):
        response.headers["Content-Type"] = "text/csv;charset=utf-8"
        return result.encode()
    if isinstance(result, str):
        response.headers["Content-Type"] = "text/plain;charset=utf-8"
        return result.encode()
    response.headers["Content-Type"] = JSON_TYPE
    return json.dumps(result, separators=(",", ":")).encode()


def error_body(error: FloatkeyError) -> bytes:
    cherrypy.serving.request.floatkey_error_code = error.code  # refusals by code (metrics)
    response = cherrypy.serving.response
    response.status = error.status
    response.headers["Content-Type"] = JSON_TYPE
    response.headers.pop("Content-Length", None)
    return json.dumps(with_request_id(error.to_dict())).encode()


def with_request_id(body: dict[str, Any]) -> dict[str, Any]:
    """The error body with the request's id (V1 clients ignore a key they do not know)."""
    rid = request_log.request_id()
    return {**body, "request_id": rid} if rid is not None and "request_id" not in body else body


def handle_error() -> None:
    """``request.error_response``: every exception becomes the JSON error shape."""
    exc = sys.exc_info()[1]
    response = cherrypy.serving.response
    if isinstance(exc, FloatkeyError):
        response.body = error_body(exc)
        return
    if isinstance(exc, cherrypy.HTTPError) and exc.status < 500:
        response.body = error_body(http_error(exc.status, exc._message or ""))
        return
    request_id = request_log.request_id() or request_log.new_id()
    logger.exception(
        "internal error, request %s: %s %s",
        request_id,
        cherrypy.serving.request.method,
        cherrypy.serving.request.path_info,
        extra={"status": 500},
    )
    response.body = error_body(
        FloatkeyError(
            "internal_error",
            f"The server failed on this request (request id {request_id}); it has been logged.",
            request_id=request_id,
        )
    )


def http_error(status: int, message: str) -> FloatkeyError:
    code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(status)
    if code is None:
        return FloatkeyError("validation_error", message or "The request is not valid.")
    return FloatkeyError(code, message or "The request cannot be served.")


def error_page(status: str, message: str, traceback: str, version: str) -> str:
    """``error_page.default``: errors CherryPy raises on its own get the JSON shape too."""
    code = int(status.split()[0])
    error = http_error(code, message) if code < 500 else FloatkeyError("internal_error", "The server failed.")
    cherrypy.serving.response.headers["Content-Type"] = JSON_TYPE
    return json.dumps(with_request_id(error.to_dict()))


def build_app(
    fk: Floatkey, settings: Settings, table: RouteTable, extra_config: dict[str, Any] | None = None
) -> cherrypy.Application:
    cherrypy.tools.floatkey_route = cherrypy.Tool("before_handler", match_route, priority=10)
    cherrypy.tools.floatkey_raw_body = cherrypy.Tool("before_request_body", raw_body)
    cherrypy.tools.floatkey_query = cherrypy.Tool("on_start_resource", check_query)
    cherrypy.tools.floatkey_request = cherrypy.Tool(
        "on_start_resource", request_log.start_request, priority=1
    )
    api = Api(fk, table, settings)
    config: dict[str, Any] = {
        "/": {
            "request.error_response": handle_error,
            "error_page.default": error_page,
            "tools.floatkey_request.on": True,
            "tools.floatkey_request.proxies": client_address.networks(settings.auth.trusted_proxies),
            "tools.floatkey_raw_body.on": True,
            "tools.floatkey_query.on": True,
            "tools.floatkey_route.on": True,
            "tools.floatkey_route.table": table,
            "tools.encode.on": False,
            "tools.trailing_slash.on": False,
            # CherryPy's own 500 logging writes every request header, the bearer token and
            # cookies included; handle_error logs the traceback with the request id instead.
            "tools.log_headers.on": False,
            "tools.log_tracebacks.on": False,
        },
    }
    for path, values in (extra_config or {}).items():
        config.setdefault(path, {}).update(values)
    app = cherrypy.Application(api, "", config)
    app.log.access_log.propagate = False
    app.log.access = functools.partial(access_if_written, app.log)
    return app


def access_if_written(manager: Any) -> None:
    """CherryPy's access line, only when a handler of its logger would write it.

    CherryPy formats the line for every request before its logger decides anything;
    floatkey gives that logger no handler (it logs requests itself, request_log.py), and
    the formatting alone took about a tenth of a register's CPU.
    """
    access_log = manager.access_log
    writers = [
        h for h in access_log.handlers if not isinstance(h, (logging.NullHandler, _cplogging.NullHandler))
    ]
    if writers and access_log.isEnabledFor(logging.INFO):
        type(manager).access(manager)


def server_config(settings: Settings) -> dict[str, Any]:
    config: dict[str, Any] = {
        "server.socket_host": settings.host,
        "server.socket_port": settings.port,
        "server.thread_pool": settings.thread_pool,
        "server.socket_queue_size": 512,
        "server.max_request_body_size": 0,
        # Read by floatkey's connection manager only for the HTTP/1.0 Keep-Alive header.
        "server.socket_timeout": settings.idle_timeout,
        "engine.autoreload.on": False,
        "checker.on": False,
        "log.screen": False,
        "log.access_file": "",
        "log.error_file": "",
        "request.show_tracebacks": False,
        "request.show_mismatched_params": False,
        "response.headers.server": f"floatkey/{__version__}",
    }
    if settings.tls.enabled:
        config["server.ssl_module"] = "builtin"
        config["server.ssl_certificate"] = str(settings.tls.certificate)
        config["server.ssl_private_key"] = str(settings.tls.private_key)
    return config
