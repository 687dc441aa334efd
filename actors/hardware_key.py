"""The hardware-key actor: the only code in floatkey that talks to PC/SC.

It watches readers and cards, opens each card exclusively, checks that it is a valid key
(hardware-key.md, "What valid means"), keeps the connection open (nobody else can then
reset or talk to the card behind its back), re-verifies every ``verify_interval`` seconds,
and broadcasts ``key_connected`` / ``key_disconnected`` to :class:`HardwareKeyListener`\\ s.

No PC/SC call may block the actor: ``SCardConnect`` waits without limit while another
process holds a transaction, so connections are opened by short-lived worker threads, each
with its own PC/SC context (pcsc-lite serializes calls per context), and a connection that
takes longer than ``pcsc_timeout`` makes the key ``reader_busy``. Transmits on an open
connection fail at once thanks to ``PCSCLITE_NO_BLOCKING=1``, set here before any PC/SC
call. Removed or failed cards are disconnected with ``SCARD_LEAVE_CARD``, never reset
(pcsc-lite 1.9.9 then loses sight of a re-plugged card for seconds).

HTTP threads do not ask the actor one by one: :class:`KeyGate` batches them, so one live
APDU round answers every request that arrived before it started.
"""

from __future__ import annotations

import datetime
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pykka

from floatkey import listener, piv
from floatkey.config import HardwareKeySettings
from floatkey.errors import FloatkeyError, key_not_accessible

# Before libpcsclite is loaded: transmits in a transaction held by another process fail at once.
os.environ.setdefault("PCSCLITE_NO_BLOCKING", "1")

from smartcard import scard

logger = logging.getLogger(__name__)

BUSY_MESSAGE = (
    "Another process holds the smart card reader of the hardware key; "
    "run `floatkey doctor` to see which."
)
SCARD_E_SHARING_VIOLATION = 0x8010000B
SCARD_E_TIMEOUT = 0x8010000A
#: How often the watcher looks at readers (and ticks the actor), in seconds.
WATCH_PERIOD = 0.25
#: Wait before connecting again to a card another process holds, in seconds.
RETRY_DELAY = 0.5

STATE_VALID = "valid"
STATE_INVALID = "invalid"
STATE_BUSY = "reader_busy"


def reader_busy() -> FloatkeyError:
    """The error of an action whose key is held by another process."""
    return FloatkeyError("hardware_key_reader_busy", BUSY_MESSAGE)


class HardwareKeyListener(listener.Listener):
    """Events of the hardware-key actor. A key is connected while it is valid."""

    def key_connected(self, serial: str, reader: str) -> None:
        """A valid key with this serial is now present in ``reader``."""

    def key_disconnected(self, serial: str, reader: str) -> None:
        """The key with this serial in ``reader`` was pulled out or stopped being valid."""


class PcscError(Exception):
    """A PC/SC call failed; ``hresult`` is the pcsc-lite error code."""

    def __init__(self, hresult: int) -> None:
        self.hresult = hresult & 0xFFFFFFFF
        super().__init__(f"{scard.SCardGetErrorMessage(hresult)} (0x{self.hresult:08X})")


class CardLink:
    """An open exclusive connection to one card, with a PC/SC context of its own."""

    def __init__(self, context: int, card: int, protocol: int) -> None:
        self.context = context
        self.card = card
        self.protocol = protocol

    def transmit(self, command: bytes) -> tuple[bytes, int]:
        hresult, response = scard.SCardTransmit(self.card, self.protocol, list(command))
        if hresult != scard.SCARD_S_SUCCESS:
            raise PcscError(hresult)
        if len(response) < 2:
            raise PcscError(scard.SCARD_F_COMM_ERROR)
        return bytes(response[:-2]), (response[-2] << 8) | response[-1]

    def close(self) -> None:
        """Disconnect leaving the card as it is (never reset: see the module docstring)."""
        scard.SCardDisconnect(self.card, scard.SCARD_LEAVE_CARD)
        scard.SCardReleaseContext(self.context)


def open_link(reader: str) -> tuple[CardLink | None, int]:
    """Connect to ``reader`` exclusively. Blocks while another process holds a transaction."""
    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        return None, hresult
    hresult, card, protocol = scard.SCardConnect(
        context, reader, scard.SCARD_SHARE_EXCLUSIVE,
        scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
    )
    if hresult != scard.SCARD_S_SUCCESS:
        scard.SCardReleaseContext(context)
        return None, hresult
    return CardLink(context, card, protocol), hresult


# --- messages to the actor (from its own threads) --------------------------------------


@dataclass(frozen=True)
class _ReadersSeen:
    """The watcher's view: reader -> (card present, pcsc event counter); None: no pcscd."""

    readers: dict[str, tuple[bool, int]] | None


@dataclass(frozen=True)
class _Tick:
    pass


@dataclass(frozen=True)
class _LinkOpened:
    reader: str
    attempt: int
    link: CardLink | None
    hresult: int


@dataclass
class _Slot:
    """What the actor knows about one reader."""

    reader: str
    present: bool = False
    events: int = 0
    link: CardLink | None = None
    attempt: int = 0
    attempt_started: float = 0.0
    retry_at: float = 0.0
    verified_at: float = 0.0
    serial: str | None = None
    state: str | None = None
    reason: str | None = None
    since: datetime.datetime = field(default_factory=lambda: datetime.datetime.now(datetime.UTC))

    def as_dict(self) -> dict[str, Any]:
        return {"serial": self.serial, "reader": self.reader, "state": self.state,
                "reason": self.reason, "since": self.since}


class HardwareKeyActor(pykka.ThreadingActor):
    """Owns PC/SC: finds, verifies and watches hardware keys (see the module docstring)."""

    def __init__(self, settings: HardwareKeySettings, pin: str | None) -> None:
        super().__init__()
        self._settings = settings
        self._pin = pin
        self._ca_cert = None
        if settings.ca_certificate is not None:
            from floatkey.ca import load_certificate

            self._ca_cert = load_certificate(settings.ca_certificate)
        self._slots: dict[str, _Slot] = {}
        self._pcsc_running = False
        self._refused_pin: set[str] = set()
        self._attempts = 0
        self._watcher: _Watcher | None = None

    # --- lifecycle ---

    def on_start(self) -> None:
        if self._ca_cert is None:
            logger.warning("hardware keys: no vendor CA configured (hardwareKey.caCertificate); "
                           "any PIV key counts as valid")
        if self._pin is None:
            logger.info("hardware keys: no PIN configured; keys are asked to sign without one")
        self._watcher = _Watcher(self.actor_ref, self._settings.ignore_readers)
        self._watcher.start()

    def on_stop(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
        for slot in self._slots.values():
            self._drop_link(slot)

    # --- public API ---

    def status(self) -> dict[str, Any]:
        """``{"pcsc": "running"|"unavailable", "keys": [...]}`` as GET /hardware_key shows."""
        return {"pcsc": "running" if self._pcsc_running else "unavailable", "keys": self._keys()}

    def valid_serials(self) -> list[str]:
        """Serials of the keys valid at the last check (not a live check: see KeyGate)."""
        return [k["serial"] for k in self._keys() if k["state"] == STATE_VALID]

    def live_check(self) -> list[dict[str, Any]]:
        """Ask every key held open for its serial now, then report all keys (as status)."""
        for slot in self._slots.values():
            if slot.link is not None and slot.state in (STATE_VALID, STATE_BUSY):
                self._probe(slot)
        return self._keys()

    # --- messages from the watcher and the connect workers ---

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _ReadersSeen):
            self._on_readers(message.readers)
        elif isinstance(message, _Tick):
            self._on_tick()
        elif isinstance(message, _LinkOpened):
            self._on_link_opened(message)
        return None

    def _on_readers(self, readers: dict[str, tuple[bool, int]] | None) -> None:
        if readers is None:
            if self._pcsc_running:
                logger.warning("hardware keys: the PC/SC service (pcscd) is not available")
            self._pcsc_running = False
            readers = {}
        elif not self._pcsc_running:
            logger.info("hardware keys: PC/SC service available, readers: %s",
                        ", ".join(readers) or "none")
            self._pcsc_running = True
        for name in [n for n in self._slots if n not in readers]:
            self._card_gone(self._slots.pop(name), "reader gone")
        for name, (present, events) in readers.items():
            slot = self._slots.setdefault(name, _Slot(name))
            changed = events != slot.events and slot.present
            slot.events = events
            if slot.present and (not present or changed):
                self._card_gone(slot, "key pulled out" if not present else "card replaced")
            slot.present = present
        self._on_tick()

    def _on_tick(self) -> None:
        now = time.monotonic()
        for slot in self._slots.values():
            if not slot.present:
                continue
            if slot.attempt and now - slot.attempt_started > self._settings.pcsc_timeout:
                self._set_state(slot, STATE_BUSY, BUSY_MESSAGE)
            elif slot.link is None and not slot.attempt and now >= slot.retry_at:
                self._start_connect(slot)
            elif slot.link is not None and now - slot.verified_at >= self._verify_interval(slot):
                self._verify(slot)

    def _verify_interval(self, slot: _Slot) -> float:
        """Full re-verification period; a failed key is retried sooner, PIN aside."""
        if slot.state == STATE_INVALID and slot.serial not in self._refused_pin:
            return min(self._settings.verify_interval, 5.0)
        return self._settings.verify_interval

    def _start_connect(self, slot: _Slot) -> None:
        self._attempts += 1
        slot.attempt = self._attempts
        slot.attempt_started = time.monotonic()
        ref, reader, attempt = self.actor_ref, slot.reader, slot.attempt

        def work() -> None:
            link, hresult = open_link(reader)
            try:
                ref.tell(_LinkOpened(reader, attempt, link, hresult))
            except pykka.ActorDeadError:
                if link is not None:
                    link.close()

        threading.Thread(target=work, name=f"pcsc-connect-{reader}", daemon=True).start()

    def _on_link_opened(self, message: _LinkOpened) -> None:
        slot = self._slots.get(message.reader)
        if slot is None or slot.attempt != message.attempt or not slot.present:
            if message.link is not None:
                message.link.close()
            return
        slot.attempt = 0
        if message.link is None:
            slot.retry_at = time.monotonic() + RETRY_DELAY
            if message.hresult & 0xFFFFFFFF == SCARD_E_SHARING_VIOLATION:
                self._set_state(slot, STATE_BUSY, BUSY_MESSAGE)
            else:
                logger.debug("hardware keys: cannot connect to %s: %s",
                             slot.reader, PcscError(message.hresult))
            return
        slot.link = message.link
        self._verify(slot)

    # --- verification ---

    def _verify(self, slot: _Slot) -> None:
        assert slot.link is not None
        slot.verified_at = time.monotonic()
        try:
            verdict = piv.validate(slot.link.transmit, self._ca_cert, self._pin, self._refused_pin)
        except PcscError as exc:
            self._link_failed(slot, exc)
            return
        if verdict.wrong_pin_tries is not None and verdict.serial is not None:
            self._refused_pin.add(verdict.serial)
        if verdict.serial != slot.serial and slot.state == STATE_VALID:
            self._set_state(slot, STATE_INVALID, "card replaced")
        slot.serial = verdict.serial
        if verdict.valid:
            self._set_state(slot, STATE_VALID, None)
        else:
            self._set_state(slot, STATE_INVALID, verdict.reason)

    def _probe(self, slot: _Slot) -> None:
        """One live APDU: the card must still answer with the serial it was verified with."""
        assert slot.link is not None
        try:
            data, sw = slot.link.transmit(piv.serial_apdu())
            if sw != piv.SW_OK:
                piv.select(slot.link.transmit)
                data, sw = slot.link.transmit(piv.serial_apdu())
        except PcscError as exc:
            if exc.hresult == SCARD_E_SHARING_VIOLATION:
                self._set_state(slot, STATE_BUSY, BUSY_MESSAGE)
            else:
                self._link_failed(slot, exc)
            return
        except piv.PivError:
            sw, data = 0, b""
        if sw != piv.SW_OK or str(int.from_bytes(data, "big")) != slot.serial:
            self._set_state(slot, STATE_INVALID, "key no longer answers with its serial")
            slot.verified_at = 0.0
            return
        self._set_state(slot, STATE_VALID, None)

    def _link_failed(self, slot: _Slot, exc: PcscError) -> None:
        self._drop_link(slot)
        slot.retry_at = time.monotonic() + RETRY_DELAY
        self._set_state(slot, STATE_INVALID, f"card stopped answering: {exc}")

    def _drop_link(self, slot: _Slot) -> None:
        if slot.link is not None:
            slot.link.close()
            slot.link = None

    def _card_gone(self, slot: _Slot, why: str) -> None:
        self._drop_link(slot)
        slot.attempt = 0
        if slot.state == STATE_VALID and slot.serial is not None:
            logger.warning("hardware key %s lost from %s: %s", slot.serial, slot.reader, why)
            listener.send(HardwareKeyListener, "key_disconnected",
                          serial=slot.serial, reader=slot.reader)
        slot.serial, slot.state, slot.reason, slot.retry_at = None, None, None, 0.0

    def _set_state(self, slot: _Slot, state: str, reason: str | None) -> None:
        if (state, reason) == (slot.state, slot.reason):
            return
        was_valid = slot.state == STATE_VALID
        slot.state, slot.reason = state, reason
        slot.since = datetime.datetime.now(datetime.UTC)
        who = f"hardware key {slot.serial or '(serial unknown)'} in {slot.reader}"
        if state == STATE_VALID:
            logger.info("%s is valid", who)
            listener.send(HardwareKeyListener, "key_connected",
                          serial=slot.serial, reader=slot.reader)
            return
        logger.warning("%s is %s: %s", who, state.replace("_", " "), reason)
        if was_valid and slot.serial is not None:
            listener.send(HardwareKeyListener, "key_disconnected",
                          serial=slot.serial, reader=slot.reader)

    def _keys(self) -> list[dict[str, Any]]:
        return [s.as_dict() for _, s in sorted(self._slots.items())
                if s.present and s.state is not None]


class _Watcher:
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
                    self._tell(_ReadersSeen(seen))
                    last = seen
                self._tell(_Tick())
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
        seen = {name: (bool(ev & scard.SCARD_STATE_PRESENT), (ev >> 16) & 0xFFFF)
                for name, ev, _atr in states}
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


class KeyGate:
    """Answers "is the key valid NOW?" for many request threads at once.

    Freshness and coalescing (hardware-key.md §4): a check must start after the request
    arrived; requests that arrive while a check runs wait for the next check, which then
    answers them all with one live APDU round on the card. Thread-safe; not an actor.
    """

    def __init__(self, actor_ref: pykka.ActorRef[Any], timeout: float) -> None:
        self._proxy = actor_ref.proxy()
        self._timeout = timeout
        self._cond = threading.Condition()
        self._started = 0
        self._finished = 0
        self._running = False
        self._keys: list[dict[str, Any]] | None = None

    def check(self, serial: str | None, action: str) -> str:
        """The serial of the valid key (``serial``, or any when None) or FloatkeyError."""
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
            keys = self._proxy.live_check().get(timeout=self._timeout)
        except (pykka.Timeout, pykka.ActorDeadError):
            logger.warning("hardware keys: the key actor did not answer a check in time")
        finally:
            self._cond.acquire()
            self._running = False
            self._finished = number
            self._keys = keys
            self._cond.notify_all()


def _pick(keys: list[dict[str, Any]], serial: str | None, action: str) -> str:
    wanted: Callable[[dict[str, Any]], bool] = (
        (lambda k: True) if serial is None else (lambda k: k["serial"] in (serial, None))
    )
    candidates = [k for k in keys if wanted(k)]
    for key in candidates:
        if key["state"] == STATE_VALID:
            return str(key["serial"])
    if any(k["state"] == STATE_BUSY for k in candidates):
        raise reader_busy()
    raise key_not_accessible(action)
