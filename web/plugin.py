"""Runs floatkey's actor system inside CherryPy's engine."""

from __future__ import annotations

import cherrypy
from cherrypy.process import plugins

from floatkey.app.sdnotify import Notifier, Watchdog
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


class SystemdPlugin(plugins.SimplePlugin):
    """Tells systemd (``Type=notify``) when the server listens and when it stops; pings its watchdog."""

    def __init__(
        self, bus: cherrypy.process.wspbus.Bus, fk: Floatkey, notifier: Notifier | None = None
    ) -> None:
        super().__init__(bus)
        self.notifier = notifier or Notifier()
        self.watchdog = Watchdog(self.notifier, fk.responsive)

    def start(self) -> None:
        self.notifier.notify("READY=1")
        self.watchdog.start()

    start.priority = 80  # type: ignore[attr-defined]  # after the HTTP server (75) listens

    def stop(self) -> None:
        self.notifier.notify("STOPPING=1")
        self.watchdog.stop()

    stop.priority = 10  # type: ignore[attr-defined]  # first, before the server and the actors stop
