"""The key gate: "is the key valid now?" for every request thread, one live check at a time.

Also the protocol the embedding API uses to ask it (``KeyChecker``) and the checker of a
server without keys (``NoKeys``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection
from typing import Any, Protocol

import pykka

from floatkey.errors import key_not_accessible
from floatkey.hardware.pcsc import reader_busy
from floatkey.hardware.states import STATE_BUSY, STATE_VALID

logger = logging.getLogger(__name__)

#: The key a check wants: one serial, any of a set of serials (a vendor license file may
#: name a standby key), or None for any valid key.
Wanted = str | Collection[str] | None

#: Starts a live check of every key on the hardware-key actor (its ``live_check``).
LiveCheck = Callable[[], "pykka.Future[list[dict[str, Any]]]"]


class KeyChecker(Protocol):
    """Verifies, now, that a hardware key is present and valid."""

    def check(self, serial: Wanted, action: str) -> str: ...


class NoKeys:
    """The key checker of a server without a hardware-key subsystem: no key is ever valid."""

    def check(self, serial: Wanted, action: str) -> str:
        raise key_not_accessible(action)


class KeyGate:
    """Answers "is the key valid NOW?" for many request threads at once.

    Freshness and coalescing: a check must start after the request
    arrived; requests that arrive while a check runs wait for the next check, which then
    answers them all with one live APDU round on the card. Thread-safe; not an actor.
    """

    def __init__(self, live_check: LiveCheck, timeout: float) -> None:
        self._live_check = live_check
        self._timeout = timeout
        self._cond = threading.Condition()
        self._started = 0
        self._finished = 0
        self._running = False
        self._keys: list[dict[str, Any]] | None = None

    def check(self, serial: Wanted, action: str) -> str:
        """The serial of a valid key (``serial``, one of a set, or any when None) or FloatkeyError."""
        keys = self._fresh_keys()
        if keys is None:
            raise key_not_accessible(action)
        return _pick(keys, serial, action)

    def _fresh_keys(self) -> list[dict[str, Any]] | None:
        deadline = time.monotonic() + self._timeout
        with self._cond:
            needed = self._started + 1
            while self._finished < needed:
                if not self._running:
                    self._lead()
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)
            return self._keys

    def _lead(self) -> None:
        """Run one check for everyone waiting (called and returning with the lock held)."""
        self._running = True
        self._started += 1
        number = self._started
        self._cond.release()
        keys: list[dict[str, Any]] | None = None
        try:
            keys = self._live_check().get(timeout=self._timeout)
        except (pykka.Timeout, pykka.ActorDeadError):
            logger.warning("hardware keys: the key actor did not answer a check in time")
        finally:
            self._cond.acquire()
            self._running = False
            self._finished = number
            self._keys = keys
            self._cond.notify_all()


def _pick(keys: list[dict[str, Any]], serial: Wanted, action: str) -> str:
    serials = {serial} if isinstance(serial, str) else set(serial or ())
    wanted: Callable[[dict[str, Any]], bool] = (
        (lambda k: True) if serial is None else (lambda k: k["serial"] is None or k["serial"] in serials)
    )
    candidates = [k for k in keys if wanted(k)]
    for key in candidates:
        if key["state"] == STATE_VALID:
            return str(key["serial"])
    if any(k["state"] == STATE_BUSY for k in candidates):
        raise reader_busy()
    raise key_not_accessible(action)
