"""``floatkey serve``: the HTTP server on CherryPy's engine."""

from __future__ import annotations

import logging
from typing import Any

import cherrypy
from cherrypy.process import plugins

from floatkey.app import affinity, bench_switches
from floatkey.app.collector import ActorFreezer, freeze_start_up_objects, pause_collector_for_start_up
from floatkey.app.config import Settings
from floatkey.app.system import Floatkey
from floatkey.audit import origin as origins
from floatkey.metrics import exposition
from floatkey.web.access import AuthWeb
from floatkey.web.api import build_table
from floatkey.web.audit import AuditWeb
from floatkey.web.connections import ClientLimits, GuardedServer
from floatkey.web.guards import Guards, guard_request
from floatkey.web.openapi import OpenApi
from floatkey.web.plugin import FloatkeyPlugin, SystemdPlugin
from floatkey.web.routes import Route
from floatkey.web.server import build_app, server_config

logger = logging.getLogger(__name__)


def mount(
    fk: Floatkey,
    settings: Settings,
    extra_routes: list[Route] | None = None,
    extra_config: dict[str, Any] | None = None,
) -> cherrypy.Application:
    """Build the application with every route and the browser guards, and mount it at ``/``."""
    docs = OpenApi(settings.user_authentication)
    table = build_table(docs.routes() + (extra_routes or []))
    docs.table = table
    cherrypy.tools.floatkey_guards = cherrypy.Tool("before_handler", guard_request, priority=15)
    config: dict[str, Any] = {
        "/": {"tools.floatkey_guards.on": True, "tools.floatkey_guards.guards": Guards(settings)}
    }
    for path, values in (extra_config or {}).items():
        config.setdefault(path, {}).update(values)
    app = build_app(fk, settings, table, config)
    cherrypy.tree.apps[""] = app
    return app


def serve(settings: Settings, fk: Floatkey) -> None:
    """Run until a signal or ``cherrypy.engine.exit()``; blocks."""
    affinity.pin(settings.cpu_affinity)  # first: threads started later inherit it
    left_out = bench_switches.left_out()  # an unknown name stops here, with its message
    # Before the actors start: an unreadable scrape token stops here, with its message.
    metrics = [exposition.route(settings)] if settings.metrics.enabled else []
    pause_collector_for_start_up()
    fk.start()  # before the engine: a data directory error stops here, with its message
    auth = AuthWeb(settings, fk)
    audit = AuditWeb(settings)
    config = {"/": {**auth.config()["/"], **audit.config()["/"]}}
    if settings.metrics.enabled:
        config["/"].update(exposition.tool_config(fk.metrics))
    if left_out:
        logger.warning("%s: %s left out, for the benchmark", bench_switches.ENV, ", ".join(sorted(left_out)))
        config["/"]["tools.floatkey_request.on"] = bench_switches.REQUEST_LOG not in left_out
        if bench_switches.AUDIT in left_out:
            origins.name_requests_with(None)
    mount(fk, settings, auth.routes() + audit.routes() + metrics, config)
    cherrypy.config.update(server_config(settings))
    # After the update: the server reads its socket settings when it is built.
    cherrypy.server.instance = GuardedServer(ClientLimits.from_settings(settings))
    FloatkeyPlugin(cherrypy.engine, fk).subscribe()
    SystemdPlugin(cherrypy.engine, fk).subscribe()
    # License actors start after the start-up freeze, on their license's first message.
    freezer = ActorFreezer(lambda: fk.actors_started)
    plugins.Monitor(cherrypy.engine, freezer.check, frequency=1, name="actor-freezer").subscribe()
    if hasattr(cherrypy.engine, "signal_handler"):
        cherrypy.engine.signal_handler.subscribe()
    cherrypy.engine.start()
    frozen = freeze_start_up_objects()
    logger.debug("%d objects of the start-up frozen out of garbage collection", frozen)
    host, port = cherrypy.server.bound_addr[:2]
    scheme = "https" if settings.tls.enabled else "http"
    if settings.user_authentication:
        mode = "authentication mode"
    else:
        mode = "open mode: client routes open to anyone who reaches this port, admin routes to adminNetworks"
    logger.info("floatkey listening on %s://%s:%d (%s)", scheme, host, port, mode)
    cherrypy.engine.block()
