"""The reader watcher: a thread that tells the hardware-key actor what PC/SC sees."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import pykka

from floatkey.hardware.pcsc import SCARD_E_TIMEOUT, scard

#: How often the watcher looks at readers (and ticks the actor), in seconds.
WATCH_PERIOD = 0.25


@dataclass(frozen=True)
class ReadersSeen:
    """The watcher's view: reader -> (card present, pcsc event counter); None: no pcscd."""

    readers: dict[str, tuple[bool, int]] | None


@dataclass(frozen=True)
class Tick:
    """Time to look at each key again (sent every ``WATCH_PERIOD``)."""


class Watcher:
    """A thread that reports readers and card presence to the actor, and ticks it.

    It has its own PC/SC context and waits in ``SCardGetStatusChange`` (bounded by
    ``WATCH_PERIOD``), so a card event reaches the actor as soon as pcscd sees it.
    """

    def __init__(self, actor_ref: pykka.ActorRef[Any], ignore: tuple[str, ...]) -> None:
        self._ref = actor_ref
        self._ignore = ignore
        self._stop = threading.Event()
        self._context: int | None = None
        self._thread = threading.Thread(target=self._run, name="pcsc-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        context = self._context
        if context is not None:
            scard.SCardCancel(context)
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        last: dict[str, tuple[bool, int]] | str | None = "unknown"
        try:
            while not self._stop.is_set():
                seen, states = self._look()
                if seen != last:
                    self._tell(ReadersSeen(seen))
                    last = seen
                self._tell(Tick())
                self._wait(states)
        except pykka.ActorDeadError:
            pass
        finally:
            self._release()

    def _tell(self, message: Any) -> None:
        self._ref.tell(message)

    def _look(self) -> tuple[dict[str, tuple[bool, int]] | None, list[tuple[str, int]]]:
        """Current readers and card states, or None when pcscd does not answer."""
        if self._context is None:
            hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            if hresult != scard.SCARD_S_SUCCESS:
                return None, []
            self._context = context
        hresult, readers = scard.SCardListReaders(self._context, [])
        if hresult == scard.SCARD_E_NO_READERS_AVAILABLE:
            return {}, []
        if hresult != scard.SCARD_S_SUCCESS:
            self._release()
            return None, []
        names = [r for r in readers if not any(i in r for i in self._ignore)]
        if not names:
            return {}, []
        hresult, states = scard.SCardGetStatusChange(
            self._context, 0, [(r, scard.SCARD_STATE_UNAWARE) for r in names]
        )
        if hresult != scard.SCARD_S_SUCCESS:
            self._release()
            return None, []
        seen = {
            name: (bool(ev & scard.SCARD_STATE_PRESENT), (ev >> 16) & 0xFFFF) for name, ev, _atr in states
        }
        return seen, [(name, ev) for name, ev, _atr in states]

    def _wait(self, states: list[tuple[str, int]]) -> None:
        """Sleep until a card event or ``WATCH_PERIOD``, whichever comes first."""
        if self._context is None or not states:
            self._stop.wait(WATCH_PERIOD)
            return
        current = [(name, ev & ~scard.SCARD_STATE_CHANGED) for name, ev in states]
        hresult, _ = scard.SCardGetStatusChange(self._context, int(WATCH_PERIOD * 1000), current)
        if hresult not in (scard.SCARD_S_SUCCESS, SCARD_E_TIMEOUT, scard.SCARD_E_CANCELLED):
            self._stop.wait(WATCH_PERIOD)

    def _release(self) -> None:
        context, self._context = self._context, None
        if context is not None:
            scard.SCardReleaseContext(context)
