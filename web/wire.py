"""The HTTP layer under CherryPy: cheroot's own answers in the error shape, strict framing.

cheroot answers some requests itself, before CherryPy sees them: a malformed request
line or header, an oversized header, a timeout. It writes those with
``HTTPRequest.simple_response`` as plain text; here they get docs/api.md's JSON error shape.
It also keeps the last of several ``Content-Length`` headers, so that a request with two
different lengths waits for bytes that never come; here that is refused at once.

``FloatkeyRequest`` is the request class of floatkey's connections
(``GuardedConnection`` in web/connections.py). Nothing in cheroot is patched.
"""

from __future__ import annotations

import json
from typing import Any, BinaryIO

from cheroot import errors
from cheroot.server import HeaderReader
from cherrypy._cpwsgi_server import CPWSGIHTTPRequest

from floatkey.errors import FloatkeyError

#: The error code of each status cheroot answers on its own.
CODE_BY_STATUS = {
    400: "malformed_request",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "payload_too_large",
    414: "uri_too_long",
    431: "headers_too_large",
    500: "internal_error",
    501: "not_implemented",
    503: "service_unavailable",
    505: "http_version_not_supported",
}

#: What a person can do about each of them (cheroot's own words follow in parentheses).
ADVICE = {
    400: "The request is not valid HTTP/1.1; the client must frame it correctly.",
    405: "This method is not allowed here.",
    408: "The request did not arrive in time; send it again.",
    413: "The request is too large for this server.",
    414: "The request line is too long; send long values in a POST body.",
    431: "The request headers are too large; send fewer or shorter headers.",
    500: "The server failed on this request; it has been logged.",
    501: "The request uses a transfer coding this server does not implement; send it without one or chunked.",
    503: "The server is too busy to take this connection; try again shortly.",
    505: "This server speaks HTTP/1.0 and HTTP/1.1 only.",
}


def error_for(status: int, detail: str = "") -> FloatkeyError:
    """The JSON error for a status cheroot answers, with cheroot's own reason appended."""
    code = CODE_BY_STATUS.get(status, "malformed_request" if status < 500 else "internal_error")
    message = ADVICE.get(status, "The request cannot be served.")
    if detail and status < 500:
        message = f"{message} ({detail.rstrip('.')})"
    return FloatkeyError(code, message)


class _FramingHeaders(dict[bytes, bytes]):
    """The header dict while it is read: a second ``Content-Length`` is an error at once."""

    def __setitem__(self, key: bytes, value: bytes) -> None:
        if key == b"Content-Length" and key in self:
            raise ValueError("Content-Length is given more than once")
        super().__setitem__(key, value)


class StrictHeaderReader(HeaderReader):
    """cheroot's header reader, refusing ambiguous message framing (RFC 9112 6.3).

    Two ``Content-Length`` headers, or one beside ``Transfer-Encoding``, let a proxy and
    this server disagree on where the body ends (request smuggling); both are refused.
    """

    def __call__(self, rfile: BinaryIO, hdict: dict[bytes, bytes] | None = None) -> dict[bytes, bytes]:
        headers = _FramingHeaders()
        super().__call__(rfile, headers)
        if b"Content-Length" in headers and b"Transfer-Encoding" in headers:
            raise ValueError("Content-Length and Transfer-Encoding are both given")
        if hdict is None:
            hdict = {}
        hdict.update(headers)
        return hdict


class FloatkeyRequest(CPWSGIHTTPRequest):
    """CherryPy's request with strict headers and JSON answers for cheroot's own errors."""

    header_reader = StrictHeaderReader()

    def read_request_headers(self) -> bool:
        """As cheroot's, but headers over ``max_request_header_size`` get 431, not 413."""
        try:
            return bool(super().read_request_headers())
        except errors.MaxSizeExceeded:
            self.simple_response("431 Request Header Fields Too Large")
            return False

    def simple_response(self, status: Any, msg: Any = "") -> None:
        """Write ``status`` with the JSON error body, and close the connection after it.

        cheroot calls this only when the request could not be framed or read (or to
        refuse a connection), so the connection cannot carry another request.
        """
        number = int(str(status)[:3])
        detail = msg.decode("latin-1") if isinstance(msg, bytes) else str(msg)
        error = error_for(number, detail)
        body = json.dumps(error.to_dict()).encode()
        self.close_connection = True
        lines = [
            f"{self.server.protocol} {status}",
            f"Content-Length: {len(body)}",
            "Content-Type: application/json",
            "Connection: close",
        ]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            self.conn.wfile.write(head + body)
        except OSError as ex:
            if ex.args[0] not in errors.socket_errors_to_ignore:
                raise
