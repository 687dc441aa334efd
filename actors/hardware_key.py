"""The hardware-key actor: the only code in floatkey that talks to PC/SC.

It watches readers and cards, opens each card exclusively, checks that it is a valid key
(what docs/hardware-keys.md calls valid), keeps the connection open (nobody else can then
reset or talk to the card behind its back), re-verifies every ``verify_interval`` seconds,
and broadcasts ``key_connected`` / ``key_disconnected`` to :class:`HardwareKeyListener`\\ s.

A card that is not a key of this server (not PIV, serial not in ``pinSerials``, certificate
not from the CA) or that nothing can make valid before it is plugged in again (PIN refused
or blocked) is let go at once, so other programs can use it; it is looked at again only
when it is re-inserted. Sharing our own keys instead (``SCARD_SHARE_SHARED`` with a
transaction per check) was measured and rejected: pcsc-lite 1.9.9's
``SCardBeginTransaction`` waits without limit while another process holds a transaction,
even with ``PCSCLITE_NO_BLOCKING=1``, and a verified PIN would be usable by any process
sharing the card.

A PIN a key refused is remembered across restarts (floatkey/hardware/refused_pins.py) and
not sent to that key again until the configured PIN changes.

No PC/SC call may block the actor: ``SCardConnect`` waits without limit while another
process holds a transaction, so connections are opened by short-lived worker threads, each
with its own PC/SC context (pcsc-lite serializes calls per context), and a connection that
takes longer than ``pcsc_timeout`` makes the key ``reader_busy``. Transmits on an open
connection fail at once thanks to ``PCSCLITE_NO_BLOCKING=1``, which floatkey/hardware/pcsc.py
sets before any PC/SC call.

HTTP threads do not ask the actor one by one: the key gate (floatkey/hardware/gate.py)
batches them, so one live
APDU round answers every request that arrived before it started.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, cast

import pykka
from cryptography.hazmat.primitives.serialization import Encoding
from pykka.typing import ActorMemberMixin, proxy_method

from floatkey import listener
from floatkey.app.config import HardwareKeySettings
from floatkey.errors import key_not_accessible
from floatkey.hardware import piv
from floatkey.hardware.listener import HardwareKeyListener
from floatkey.hardware.pcsc import (
    BUSY_MESSAGE,
    SCARD_E_SHARING_VIOLATION,
    CardLink,
    PcscError,
    open_link,
)
from floatkey.hardware.refused_pins import RefusedPins
from floatkey.hardware.states import STATE_BUSY, STATE_INVALID, STATE_VALID
from floatkey.hardware.watcher import ReadersSeen, Tick, Watcher

logger = logging.getLogger(__name__)

#: The action named when a key cannot take part in an activation request.
REQUEST_ACTION = "making an activation request"

#: Wait before connecting again to a card another process holds, in seconds.
RETRY_DELAY = 0.5


# --- messages to the actor (from its own threads) --------------------------------------


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
    #: Not a key of this server: let go of, and left alone until it is re-inserted.
    released: bool = False
    state: str | None = None
    reason: str | None = None
    since: datetime.datetime = field(default_factory=lambda: datetime.datetime.now(datetime.UTC))

    def as_dict(self) -> dict[str, Any]:
        return {
            "serial": self.serial,
            "reader": self.reader,
            "state": self.state,
            "reason": self.reason,
            "since": self.since,
        }


class HardwareKeyActor(pykka.ThreadingActor):
    """Owns PC/SC: finds, verifies and watches hardware keys (see the module docstring)."""

    def __init__(
        self, settings: HardwareKeySettings, pin: str | None, refused_pins: RefusedPins | None = None
    ) -> None:
        """``refused_pins`` None remembers refused PINs only while this actor lives."""
        super().__init__()
        self._settings = settings
        self._pin = pin
        self._refused = refused_pins if refused_pins is not None else RefusedPins(None)
        self._pin_serials = frozenset(settings.pin_serials) or None
        #: Serials already named in the log as getting the PIN without a CA.
        self._pin_told: set[str] = set()
        self._ca_cert = None
        if settings.ca_certificate is not None:
            from floatkey.hardware.ca import load_certificate

            self._ca_cert = load_certificate(settings.ca_certificate)
        self._slots: dict[str, _Slot] = {}
        self._pcsc_running = False
        self._attempts = 0
        self._watcher: Watcher | None = None

    # --- lifecycle ---

    def on_start(self) -> None:
        if self._ca_cert is None:
            logger.warning(
                "hardware keys: no vendor CA configured (hardwareKey.caCertificate); "
                "any PIV key counts as valid"
            )
        if self._pin is None:
            logger.info("hardware keys: no PIN configured; keys are asked to sign without one")
        elif self._pin_serials is not None:
            logger.info(
                "hardware keys: the PIN is sent only to keys %s (hardwareKey.pinSerials)",
                ", ".join(sorted(self._pin_serials)),
            )
        elif self._ca_cert is None:
            logger.warning(
                "hardware keys: the PIN is sent to every PIV key plugged into this machine; "
                "name your keys in hardwareKey.pinSerials or configure hardwareKey.caCertificate"
            )
        self._watcher = Watcher(self.actor_ref, self._settings.ignore_readers)
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

    def live_check(self) -> list[dict[str, Any]]:
        """Ask every key held open for its serial now, then report all keys (as status)."""
        for slot in self._slots.values():
            if slot.link is not None and slot.state in (STATE_VALID, STATE_BUSY):
                self._probe(slot)
        return self._keys()

    def verification_ages(self) -> dict[str, float]:
        """Seconds since each key's last full verification (certificate and signature)."""
        now = time.monotonic()
        return {
            s.serial: now - s.verified_at
            for s in self._slots.values()
            if s.present and s.serial is not None and s.verified_at > 0
        }

    def key_certificate(self, serial: str, action: str = REQUEST_ACTION) -> bytes:
        """The DER slot-9A certificate of the valid key ``serial`` (activation requests,
        usage reports: ``action`` names which in a refusal)."""
        slot = self._valid_slot(serial, action)
        assert slot.link is not None
        try:
            cert = piv.read_certificate(slot.link.transmit)
        except PcscError as exc:
            self._link_failed(slot, exc)
            raise key_not_accessible(action) from None
        except piv.PivError as exc:
            logger.warning("hardware key %s: cannot read its certificate: %s", serial, exc)
            raise key_not_accessible(action) from None
        return cert.public_bytes(Encoding.DER)

    def sign_with_key(self, serial: str, digest: bytes, action: str = REQUEST_ACTION) -> bytes:
        """Slot 9A of the valid key ``serial`` signs the SHA-256 ``digest`` (an activation
        request, a usage report); the signature is checked with the key's certificate
        before it leaves."""
        slot = self._valid_slot(serial, action)
        assert slot.link is not None
        transmit = slot.link.transmit
        try:
            cert = piv.read_certificate(transmit)
            try:
                signature = piv.sign_digest(transmit, digest, cert.public_key())
            except piv.PinRequired:
                if self._pin is None:
                    raise
                piv.verify_pin(transmit, self._pin)  # the PIN this key accepted when verified
                signature = piv.sign_digest(transmit, digest, cert.public_key())
        except PcscError as exc:
            self._link_failed(slot, exc)
            raise key_not_accessible(action) from None
        except piv.PivError as exc:
            logger.warning("hardware key %s: cannot sign (%s): %s", serial, action, exc)
            raise key_not_accessible(action) from None
        if not piv.verify_signature(cert.public_key(), digest, signature):
            logger.warning("hardware key %s: its signature does not verify with its certificate", serial)
            raise key_not_accessible(action)
        return signature

    def _valid_slot(self, serial: str, action: str = REQUEST_ACTION) -> _Slot:
        for slot in self._slots.values():
            if slot.serial == serial and slot.state == STATE_VALID and slot.link is not None:
                return slot
        raise key_not_accessible(action)

    # --- messages from the watcher and the connect workers ---

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, ReadersSeen):
            self._on_readers(message.readers)
        elif isinstance(message, Tick):
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
            logger.info("hardware keys: PC/SC service available, readers: %s", ", ".join(readers) or "none")
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
            if not slot.present or slot.released:
                continue
            if slot.attempt and now - slot.attempt_started > self._settings.pcsc_timeout:
                self._set_state(slot, STATE_BUSY, BUSY_MESSAGE)
            elif slot.link is None and not slot.attempt and now >= slot.retry_at:
                self._start_connect(slot)
            elif slot.link is not None and now - slot.verified_at >= self._verify_interval(slot):
                self._verify(slot)

    def _verify_interval(self, slot: _Slot) -> float:
        """Full re-verification period; a failed key is retried sooner, PIN aside."""
        if slot.state == STATE_INVALID:
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
                logger.debug(
                    "hardware keys: cannot connect to %s: %s", slot.reader, PcscError(message.hresult)
                )
            return
        slot.link = message.link
        self._verify(slot)

    # --- verification ---

    def _verify(self, slot: _Slot) -> None:
        assert slot.link is not None
        slot.verified_at = time.monotonic()
        try:
            verdict = piv.validate(
                slot.link.transmit, self._ca_cert, self._pin, self._pin_refused, self._pin_serials
            )
        except PcscError as exc:
            self._link_failed(slot, exc)
            return
        if verdict.serial is not None and self._pin is not None:
            if verdict.pin_refused:
                self._refused.remember(verdict.serial, self._pin)
            elif verdict.valid:
                self._refused.forget(verdict.serial)
        if verdict.release:
            self._drop_link(slot)
            slot.released = True
        if verdict.serial != slot.serial and slot.state == STATE_VALID:
            self._set_state(slot, STATE_INVALID, "card replaced")
        slot.serial = verdict.serial
        if verdict.valid:
            self._set_state(slot, STATE_VALID, None)
        else:
            self._set_state(slot, STATE_INVALID, verdict.reason)
        if verdict.release:
            logger.info(
                "hardware keys: let go of the card in %s for other programs; it is looked at "
                "again when it is plugged in again",
                slot.reader,
            )

    def _pin_refused(self, serial: str) -> bool:
        """Asked by piv.validate just before VERIFY: True keeps the PIN from the key."""
        if self._pin is None:
            return False
        if self._refused.refused(serial, self._pin):
            return True
        if self._ca_cert is None and serial not in self._pin_told:
            self._pin_told.add(serial)
            logger.warning("hardware keys: sending the PIN to key %s (no CA configured)", serial)
        return False

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
            listener.send(HardwareKeyListener, "key_disconnected", serial=slot.serial, reader=slot.reader)
        slot.serial, slot.state, slot.reason, slot.retry_at = None, None, None, 0.0
        slot.released = False

    def _set_state(self, slot: _Slot, state: str, reason: str | None) -> None:
        if (state, reason) == (slot.state, slot.reason):
            return
        was_valid = slot.state == STATE_VALID
        slot.state, slot.reason = state, reason
        slot.since = datetime.datetime.now(datetime.UTC)
        who = f"hardware key {slot.serial or '(serial unknown)'} in {slot.reader}"
        if state == STATE_VALID:
            logger.info("%s is valid", who)
            listener.send(HardwareKeyListener, "key_connected", serial=slot.serial, reader=slot.reader)
            return
        logger.warning("%s is %s: %s", who, state.replace("_", " "), reason)
        if state == STATE_INVALID:
            listener.send(
                HardwareKeyListener, "key_invalid", serial=slot.serial, reader=slot.reader, reason=reason
            )
        if was_valid and slot.serial is not None:
            listener.send(HardwareKeyListener, "key_disconnected", serial=slot.serial, reader=slot.reader)

    def _keys(self) -> list[dict[str, Any]]:
        return [s.as_dict() for _, s in sorted(self._slots.items()) if s.present and s.state is not None]


class HardwareKeyProxy(ActorMemberMixin, pykka.ActorProxy[HardwareKeyActor]):
    """The typed way to talk to the HardwareKeyActor."""

    status = proxy_method(HardwareKeyActor.status)
    live_check = proxy_method(HardwareKeyActor.live_check)
    verification_ages = proxy_method(HardwareKeyActor.verification_ages)
    key_certificate = proxy_method(HardwareKeyActor.key_certificate)
    sign_with_key = proxy_method(HardwareKeyActor.sign_with_key)


def hardware_key_proxy(ref: pykka.ActorRef[HardwareKeyActor]) -> HardwareKeyProxy:
    return cast(HardwareKeyProxy, ref.proxy())
