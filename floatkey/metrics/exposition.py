"""Metrics over HTTP: the ``GET /metrics`` route, its scrape token, and the request tool.

``/metrics`` is an admin route of the one route table. In authentication mode it also
accepts the scrape token of ``metrics.scrapeTokenFile``, so that Prometheus needs no user
account; in open mode it is open like every route.

The ``floatkey_metrics`` tool times every request from the moment CherryPy sets up its
tools to the end of its answer, and counts it by the *pattern* of the route it matched
(never the raw path, which a client chooses) and by the error code it was refused with.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cherrypy
from prometheus_client import generate_latest

from floatkey.app.config import Settings
from floatkey.errors import ConfigError
from floatkey.metrics.counters import UNMATCHED, Metrics
from floatkey.web.routes import ADMIN, Route

if TYPE_CHECKING:
    from floatkey.app.system import Floatkey

PATH = "/metrics"
#: Shorter tokens are refused at start-up: they could be guessed.
MIN_TOKEN_LENGTH = 16


def read_scrape_token(path: Path | None) -> str | None:
    """The scrape token from ``metrics.scrapeTokenFile``; None when no file is set.

    The file must be owner-only, like the PIN file: a token others can read is no secret.
    """
    if path is None:
        return None
    try:
        mode = path.stat().st_mode
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"metrics.scrapeTokenFile: cannot read {path}: {exc.strerror}") from None
    if mode & 0o077:
        raise ConfigError(
            f"metrics.scrapeTokenFile: {path} can be read by other users; make it owner-only "
            f"(chmod 600 {path})"
        )
    if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() for c in token):
        raise ConfigError(
            f"metrics.scrapeTokenFile: {path} must hold one token of at least {MIN_TOKEN_LENGTH} "
            "characters without spaces (e.g. `openssl rand -hex 32`)"
        )
    return token


def token_check(expected: str) -> Callable[[str], bool]:
    """A constant-time comparison with the scrape token."""
    want = expected.encode()

    def check(token: str) -> bool:
        return hmac.compare_digest(token.encode(), want)

    return check


def scrape(fk: Floatkey, _query: dict[str, Any], _params: dict[str, Any]) -> str:
    """The Prometheus text format of ``fk``'s registry, read now."""
    text: str = generate_latest(fk.metrics.registry).decode()
    return text


def route(settings: Settings) -> Route:
    """``GET /metrics``: an admin route that also takes the scrape token, if one is set."""
    token = read_scrape_token(settings.metrics.scrape_token_file)
    return Route(
        "GET",
        PATH,
        scrape,
        ADMIN,
        "Prometheus metrics (text format); also readable with the scrape token",
        None,
        {"type": "string"},
        tags=("operations",),
        token_check=token_check(token) if token is not None else None,
    )


class RequestTool(cherrypy.Tool):
    """Notes when the request's tools are set up, and records the request at its end."""

    def __init__(self) -> None:
        super().__init__("on_end_request", record_request)

    def _setup(self) -> None:
        cherrypy.serving.request.floatkey_started = time.perf_counter()
        super()._setup()


def record_request(metrics: Metrics) -> None:
    """``on_end_request``: count the request by route pattern and status, and its refusal."""
    request = cherrypy.serving.request
    seconds = time.perf_counter() - request.floatkey_started
    matched: Route | None = getattr(request, "floatkey_route", None)
    status = int(str(cherrypy.serving.response.status or 500)[:3])
    if matched is None:
        metrics.request(UNMATCHED, UNMATCHED, status, seconds)
    else:
        metrics.request(matched.path, matched.method, status, seconds)
    code = getattr(request, "floatkey_error_code", None)
    if code is not None:
        metrics.refused(code)


def tool_config(metrics: Metrics) -> dict[str, Any]:
    """Application config (under ``/``) that turns the request tool on."""
    cherrypy.tools.floatkey_metrics = RequestTool()
    return {"tools.floatkey_metrics.on": True, "tools.floatkey_metrics.metrics": metrics}
