"""The running floatkey: storage, actors and sweeper, assembled; also the embedding API.

``Floatkey`` is what the HTTP server drives through a CherryPy plugin, and what a host
process uses directly to check out seats without HTTP. Each client action resolves the
license, verifies its hardware key when the license needs one, asks the license's actor
with a timeout, and returns only once the change it made is synced to disk.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

import pykka

from floatkey import __version__, inputs
from floatkey.actors.directory import DirectoryActor, IndexHolder, LicenseEntry, unknown_product
from floatkey.actors.hardware_id import IdentityActor, IdentityHolder
from floatkey.actors.hardware_key import HardwareKeyActor
from floatkey.actors.license import LicenseRequest, Ticket
from floatkey.app.config import Settings
from floatkey.errors import (
    ConfigError,
    FloatkeyError,
    StorageError,
    license_removed,
    overloaded,
)
from floatkey.hardware.gate import KeyChecker, KeyGate, NoKeys
from floatkey.hardware.machine_id import machine_hardware_id
from floatkey.hardware.pin import read_pin
from floatkey.hardware.refused_pins import FILE_NAME as REFUSED_PINS_FILE
from floatkey.hardware.refused_pins import RefusedPins
from floatkey.rules.policy import Policy, policy_from_fields
from floatkey.rules.seats import ClientInfo
from floatkey.storage import Storage
from floatkey.timeutil import format_time, utcnow

logger = logging.getLogger(__name__)

#: Exit status of a server that stops because a hardware key is missing and
#: ``crashIfNoHardwareKey`` is set (EX_TEMPFAIL: a supervisor should restart or fail over).
EXIT_NO_HARDWARE_KEY = 75


NO_CLIENT = ClientInfo()


class Floatkey:
    """floatkey's actor system. Use ``start()`` / ``stop()``, or ``with Floatkey(...) as fk``."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
        keys: KeyChecker | None = None,
        hardware_keys: bool = True,
        exit_process: Callable[[int], Any] = os._exit,
    ) -> None:
        """``keys`` replaces the hardware-key subsystem (which ``hardware_keys`` turns off)."""
        self.settings = settings or Settings()
        self._clock = clock
        self._given_keys = keys
        self._start_key_actor = keys is None and hardware_keys and self.settings.hardware_key.enabled
        self._keys: KeyChecker = keys or NoKeys()
        self._exit_process = exit_process
        self._timeout = self.settings.actor_timeout
        self._holder = IndexHolder()
        self.machine_id = machine_hardware_id()
        self._identity = IdentityHolder(self.machine_id)
        self.storage: Storage | None = None
        self._directory: Any = None
        self._refs: list[pykka.ActorRef[Any]] = []
        self._sweeper: _Sweeper | None = None

    # Lifecycle

    @property
    def running(self) -> bool:
        return self._directory is not None

    def start(self) -> Floatkey:
        self.storage = Storage(self.settings.data_dir, self.settings.map_size)
        ref = DirectoryActor.start(self.storage, self._clock, self._holder)
        try:
            ref.proxy().loaded().get(timeout=max(self._timeout, 60))
        except Exception:
            ref.stop()
            self.storage.close()
            raise
        self._directory = ref.proxy()
        self._refs = [ref]
        self._refs.append(
            IdentityActor.start(self.machine_id, self._identity, self._holder.current.key_serials())
        )
        if self._start_key_actor:
            self._keys = self._start_hardware_keys()
        self._sweeper = _Sweeper(
            self._holder, self.settings.expiry_sweep_interval, self._clock, self._timeout
        )
        self._sweeper.start()
        logger.info("floatkey %s started on %s", __version__, self.settings.data_dir)
        return self

    def _start_hardware_keys(self) -> KeyChecker:
        settings = self.settings.hardware_key
        try:
            pin = read_pin(settings)
            refused = RefusedPins(self.settings.data_dir / REFUSED_PINS_FILE)
        except ConfigError:
            self.stop()
            raise
        ref = HardwareKeyActor.start(settings, pin, refused)
        self._refs.append(ref)
        return KeyGate(ref.proxy().live_check, self._timeout)

    def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.stop()
            self._sweeper = None
        for ref in reversed(self._refs):
            ref.stop()
        self._refs = []
        if self._directory is not None:
            self._directory = None
            self._keys = self._given_keys or NoKeys()
        if self.storage is not None:
            self.storage.close()
            self.storage = None
        logger.info("floatkey stopped")

    def __enter__(self) -> Floatkey:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # Client actions (V1)

    def register(
        self, product: str, user: str, *, license_id: int | None = None, client: ClientInfo = NO_CLIENT
    ) -> dict[str, Any]:
        """Take or refresh ``user``'s floating seat; answers the register answer of api.md."""
        return self._act(product, license_id, "registering user", "register", user, client)

    def borrow(
        self,
        product: str,
        user: str,
        *,
        borrowed_until: datetime | None = None,
        license_id: int | None = None,
        client: ClientInfo = NO_CLIENT,
    ) -> dict[str, Any]:
        return self._act(product, license_id, "borrowing license", "borrow", user, client, borrowed_until)

    def unregister(self, product: str, user: str, *, license_id: int | None = None) -> str:
        return self._act(product, license_id, "unregistering user", "unregister", user)

    def add_consumption(
        self, product: str, consumptions: int, *, license_id: int | None = None
    ) -> dict[str, Any]:
        return self._act(product, license_id, "adding consumption", "add_consumption", consumptions)

    def add_feature_consumption(
        self, product: str, feature: str, consumptions: int, *, license_id: int | None = None
    ) -> dict[str, Any]:
        return self._act(
            product,
            license_id,
            "adding feature consumption",
            "add_feature_consumption",
            feature,
            consumptions,
        )

    def feature_register(
        self,
        product: str,
        feature: str,
        user: str,
        *,
        license_id: int | None = None,
        client: ClientInfo = NO_CLIENT,
        borrow_until: datetime | None = None,
    ) -> dict[str, Any]:
        return self._act(
            product,
            license_id,
            "registering feature",
            "feature_register",
            feature,
            user,
            client,
            borrow_until,
        )

    def feature_release(self, product: str, feature: str, user: str, *, license_id: int | None = None) -> str:
        return self._act(product, license_id, "releasing feature", "feature_release", feature, user)

    def unregister_all(self) -> None:
        """Free every seat of every license (the V1 ``unregister/all``)."""
        self._each_license(lambda p: p.release_all())

    def feature_release_all(self) -> None:
        self._each_license(lambda p: p.release_all_features())

    # Administration

    def add_license(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Add a license from an administrator's policy fields (api.md, ``POST /licenses``)."""
        policy = policy_from_fields(fields)
        serial = inputs.text(fields, "hardware_key_serial", max_length=20)
        if serial is not None and not serial.isdigit():
            raise inputs.invalid("hardware_key_serial", "a key serial (decimal digits)", serial)
        return self.add_policy(policy, serial)

    def add_policy(self, policy: Policy, key_serial: str | None = None) -> dict[str, Any]:
        if policy.is_hardware_key_auth:
            serial = self._checked_key(key_serial, "adding license")
            policy = replace(policy, hardware_key_serial=serial)
        answer, seq = self._ask(self._directory.add(policy))
        self._wait(seq)
        return answer

    def remove_license(self, product: str | None = None, license_id: int | None = None) -> None:
        if product is not None:
            license_id = self._index().resolve(product, license_id).license_id
        if license_id is None:
            raise FloatkeyError("missing_parameters", "Name the license: product or license_id.")
        self._wait(self._ask(self._directory.remove(license_id)))

    def licenses(self, product: str | None = None) -> list[dict[str, Any]]:
        entries = list(self._index().entries(product))
        if product is not None and not entries:
            raise unknown_product(product)
        futures = [e.proxy.license_object() for e in entries]
        return [self._ask(f) for f in futures]

    def registrations(self, license_id: int | None = None) -> list[dict[str, Any]]:
        entries = [e for e in self._index().entries() if license_id in (None, e.license_id)]
        if license_id is not None and not entries:
            raise FloatkeyError("license_not_found", f"There is no license with id {license_id}.")
        futures = [e.proxy.registrations() for e in entries]
        return [seat for f in futures for seat in self._ask(f)]

    def force_release(self, license_id: int, user: str) -> None:
        entry = self._index().by_id.get(license_id)
        if entry is None:
            raise FloatkeyError("license_not_found", f"There is no license with id {license_id}.")
        self._reply(self._ask(entry.proxy.release(user)))

    def health(self) -> dict[str, Any]:
        """``status`` stays "ok" for V1 clients; ``storage`` says whether changes can be stored."""
        if self.storage is None:
            raise FloatkeyError("service_unavailable", "floatkey is not running.")
        writable, since = self.storage.writable
        return {
            "status": "ok",
            "version": __version__,
            "hardware_id": self.hardware_id,
            "hardware_key": self.hardware_key_status(),
            "storage": {
                "writable": writable,
                "since": format_time(since),
                "map_used": round(self.storage.map_used(), 4),
            },
        }

    def hardware_key_status(self) -> dict[str, Any]:
        """The key subsystem's state (hardware-key.md): identity, PC/SC, and every key seen."""
        status = {"pcsc": "unavailable", "keys": []}
        key_actor = self._key_actor()
        if key_actor is not None:
            status = self._ask(key_actor.proxy().status())
            for key in status["keys"]:
                key["since"] = format_time(key["since"])
        return {"hardware_id": self.hardware_id, **status}

    @property
    def hardware_id(self) -> str:
        """The key serial standing for this server, or the machine's own ID (hardware-key.md)."""
        return self._identity.current

    def _key_actor(self) -> pykka.ActorRef[Any] | None:
        for ref in self._refs:
            if issubclass(ref.actor_class, HardwareKeyActor):
                return ref
        return None

    # Plumbing

    def _index(self) -> Any:
        if self._directory is None:
            raise FloatkeyError("service_unavailable", "floatkey is not running.")
        return self._holder.current

    def _act(self, product: str, license_id: int | None, action: str, method: str, *args: Any) -> Any:
        """A client action: resolve the license, verify its key, and let its actor answer."""
        entry: LicenseEntry = self._index().resolve(product, license_id)
        if entry.requires_key:
            self._checked_key(entry.key_serial, action)
        ticket = Ticket()
        try:
            entry.ref.tell(LicenseRequest(method, args, ticket))
        except pykka.ActorDeadError:
            raise license_removed() from None
        return ticket.result(self._timeout)

    def _reply(self, reply: tuple[Any, int]) -> Any:
        """Wait until what the answer rests on is durable (a refusal too), then answer."""
        answer, seq = reply
        self._wait(seq)
        if isinstance(answer, FloatkeyError):
            raise answer
        return answer

    def _each_license(self, call: Callable) -> None:
        futures = [call(e.proxy) for e in self._index().entries()]
        for future in futures:
            self._reply(self._ask(future))

    def _checked_key(self, serial: str | None, action: str) -> str:
        try:
            return self._keys.check(serial, action)
        except FloatkeyError as exc:
            if exc.code == "hardware_key_not_accessible" and self.settings.crash_if_no_hardware_key:
                self._crash(action)
            raise

    def _crash(self, action: str) -> None:
        logger.critical(
            "no valid hardware key for %s and crashIfNoHardwareKey is set: exiting with status %d",
            action,
            EXIT_NO_HARDWARE_KEY,
        )
        if self.storage is not None:
            try:
                self.storage.wait(self.storage.queued_seq, self._timeout)
            except StorageError as exc:
                logger.error("exiting with changes not stored: %s", exc)
        logging.shutdown()
        self._exit_process(EXIT_NO_HARDWARE_KEY)

    def _ask(self, future: Any) -> Any:
        try:
            return future.get(timeout=self._timeout)
        except pykka.Timeout:
            raise overloaded() from None
        except pykka.ActorDeadError:
            raise license_removed() from None

    def _wait(self, seq: int) -> None:
        assert self.storage is not None
        self.storage.wait(seq, self._timeout)


#: Licenses swept at once (see _Sweeper).
SWEEP_GROUP = 4
#: Share of the time a long sweep may take: between groups it rests three times as long
#: as the last group took.
SWEEP_SHARE = 0.25


class _Sweeper:
    """Every ``interval`` seconds, has the license actors with a seat due free it.

    Licenses are swept ``SWEEP_GROUP`` at a time, each group finished before the next
    starts, and a long sweep rests between groups so that it takes at most ``SWEEP_SHARE``
    of the time. All at once, a wave of timeouts over 1,000 licenses woke 1,000 actor
    threads together and queued 100,000 deletions in front of every client's write; a
    client's request waited behind all of it (p99 at half load 59 -> 148 ms through the
    wave). Now few actors run at once, and the wave's second of work is spread over a few
    (docs/benchmarks.md). A rest never exceeds the sweep interval, and a sweep of one
    group (up to four licenses with seats due at once, the usual case) never rests.
    """

    def __init__(
        self, holder: IndexHolder, interval: float, clock: Callable[[], datetime], timeout: float
    ) -> None:
        self._holder = holder
        self._interval = interval
        self._clock = clock
        self._timeout = timeout
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="seat-sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self.sweep_due()
            except Exception:
                logger.exception("a sweep failed; the next one runs in %g s", self._interval)

    def sweep_due(self) -> int:
        """Sweep every license with a seat due now; returns how many were swept."""
        now = self._clock()
        entries = self._holder.current.by_id
        due = [
            entries[license_id]
            for license_id, at in list(self._holder.due.items())
            if at is not None and now >= at and license_id in entries
        ]
        began = 0.0  # when the current group was told; read from the second group on
        for start in range(0, len(due), SWEEP_GROUP):
            if start:
                rest = min((time.monotonic() - began) * (1 / SWEEP_SHARE - 1), self._interval)
                if self._stopped.wait(rest):
                    break
            began = time.monotonic()
            group = []
            for entry in due[start : start + SWEEP_GROUP]:
                try:
                    group.append((entry.license_id, entry.proxy.sweep()))
                except pykka.ActorDeadError:
                    logger.debug("license %d removed during a sweep", entry.license_id)
            for license_id, swept in group:
                if self._stopped.is_set():
                    break
                try:
                    swept.get(timeout=self._timeout)
                except pykka.ActorDeadError:
                    logger.debug("license %d removed during a sweep", license_id)
                except pykka.Timeout:
                    logger.warning(
                        "license %d did not finish its sweep within %g s", license_id, self._timeout
                    )
                except Exception:
                    logger.exception("license %d failed to sweep its seats", license_id)
        return len(due)
