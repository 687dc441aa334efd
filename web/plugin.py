"""Runs floatkey's actor system inside CherryPy's engine."""

from __future__ import annotations

import cherrypy
from cherrypy.process import plugins

from floatkey.app.system import Floatkey


class FloatkeyPlugin(plugins.SimplePlugin):
    """Starts the actors before the HTTP server listens; stops them after it has stopped."""

    def __init__(self, bus: cherrypy.process.wspbus.Bus, fk: Floatkey) -> None:
        super().__init__(bus)
        self.fk = fk

    def start(self) -> None:
        if not self.fk.running:
            self.fk.start()

    start.priority = 40  # type: ignore[attr-defined]

    def stop(self) -> None:
        self.fk.stop()

    stop.priority = 60  # type: ignore[attr-defined]
