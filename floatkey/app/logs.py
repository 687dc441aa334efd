"""Log setup: text lines or one JSON object per line, with the request each line belongs to.

The web layer binds the request it serves (``bind_request``) in the serving thread; every
line logged in that thread until ``unbind_request`` carries the request id, the route and
the client address. Nothing else of a request (headers, bodies, query strings) is ever
put into a log line, so no password, token or PIN can reach one from here.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

#: Record attributes a JSON line carries when they are set, in this order.
FIELDS = ("request_id", "method", "route", "status", "client", "duration_ms")

_request = threading.local()


def bind_request(**fields: Any) -> None:
    """Attach ``fields`` (request_id, method, route, client...) to this thread's log lines,
    in place of any bound before."""
    _request.fields = fields


def unbind_request() -> None:
    _request.fields = {}


def request_fields() -> dict[str, Any]:
    """The fields bound in this thread (empty outside a request)."""
    fields: dict[str, Any] = getattr(_request, "fields", {})
    return fields


class RequestFilter(logging.Filter):
    """Adds the bound request fields to each record, unless the call gave its own (``extra=``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in request_fields().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (RFC 3339, UTC), level, logger, message, then the fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")[:-6] + "Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def setup(level: str, log_format: str = "text") -> None:
    """Log to standard error at ``level`` in ``log_format`` (``text`` or ``json``)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format.lower() == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(RequestFilter())
    logging.basicConfig(level=level.upper(), handlers=[handler])
    logging.getLogger("pykka").setLevel(logging.WARNING)
    logging.getLogger("cherrypy.access").setLevel(logging.WARNING)
