"""systemd's notification protocol (sd_notify), written with the socket module.

Under ``Type=notify`` systemd passes ``NOTIFY_SOCKET``, an AF_UNIX datagram socket (a
path, or an abstract name written with a leading ``@``); a service sends it ``READY=1``
once it serves, ``STOPPING=1`` when it begins to stop, and with ``WatchdogSec=`` set,
``WATCHDOG=1`` more often than every ``WATCHDOG_USEC`` microseconds or systemd kills and
restarts it. The watchdog here pings at half that interval, and only while a health
check passes: a server whose actors no longer answer stops pinging, and systemd restarts
it. Without ``NOTIFY_SOCKET`` (not under systemd) everything here does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping

logger = logging.getLogger(__name__)


class Notifier:
    """Sends states to systemd's ``NOTIFY_SOCKET``; a no-op when there is none."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self.address: str | None = None
        if address.startswith("@"):
            self.address = "\0" + address[1:]
        elif address.startswith("/"):
            self.address = address
        elif address:
            logger.warning(
                "NOTIFY_SOCKET %r is neither a path nor an abstract socket; not notifying", address
            )
        self.watchdog_interval = _watchdog_interval(env)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, state: str) -> bool:
        """Send ``state`` (``READY=1``...); False, logged, if systemd's socket refuses it."""
        if self.address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self.address)
                sock.sendall(state.encode())
        except OSError as exc:
            logger.warning("could not notify systemd (%s): %s", state, exc)
            return False
        return True


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    """Seconds between watchdog pings: half of ``WATCHDOG_USEC``, if it is meant for this process."""
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 2 / 1_000_000


class Watchdog:
    """A thread that sends ``WATCHDOG=1`` every ``notifier.watchdog_interval`` while ``healthy()``."""

    def __init__(self, notifier: Notifier, healthy: Callable[[], bool]) -> None:
        self.notifier = notifier
        self.healthy = healthy
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        interval = self.notifier.watchdog_interval
        if not self.notifier.enabled or interval is None or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(interval,), name="sd-watchdog", daemon=True)
        self._thread.start()
        logger.info("systemd watchdog: pinging every %.1f s while the server is healthy", interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _run(self, interval: float) -> None:
        unhealthy = False
        while not self._stop.wait(interval):
            if self.healthy():
                self.notifier.notify("WATCHDOG=1")
                if unhealthy:
                    logger.info("systemd watchdog: the server is healthy again; pinging")
                unhealthy = False
            elif not unhealthy:
                logger.error(
                    "systemd watchdog: the actors do not answer; not pinging, systemd will restart us"
                )
                unhealthy = True
