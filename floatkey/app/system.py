"""The running floatkey: storage, actors and sweeper, assembled; also the embedding API.

``Floatkey`` is the one place that builds floatkey's parts (storage, licenses, hardware
ID, hardware keys, authentication, sweeper) in one order and stops them in the reverse
order. The HTTP server drives it through a CherryPy plugin; a host process uses it
directly to check out seats without HTTP. Each client action resolves the
license, verifies its hardware key when the license needs one, asks the license's actor
with a timeout, and returns only once the change it made is synced to disk.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pykka

from floatkey import __version__, inputs
from floatkey.actors import license as lic
from floatkey.actors.audit import ActorAppender, AuditActor, audit_proxy
from floatkey.actors.auth import AuthActor, auth_proxy
from floatkey.actors.directory import (
    DirectoryActor,
    DirectoryProxy,
    IndexHolder,
    LicenseIndex,
    directory_proxy,
    unknown_product,
)
from floatkey.actors.hardware_id import HardwareIdActor, HardwareIdHolder
from floatkey.actors.hardware_key import HardwareKeyActor, HardwareKeyProxy, hardware_key_proxy
from floatkey.app.config import Settings
from floatkey.app.sweeper import Sweeper
from floatkey.audit import events
from floatkey.audit.events import Audit, NoAudit
from floatkey.audit.origin import SYSTEM
from floatkey.auth.accounts import Accounts
from floatkey.auth.hashing import PasswordHashing
from floatkey.auth.throttle import Throttle
from floatkey.auth.tokens import TokenSigner, load_or_create_secret
from floatkey.auth.users import UserHolder
from floatkey.errors import FloatkeyError, StorageError, no_license_with_id, overloaded
from floatkey.hardware.gate import KeyChecker, KeyGate, NoKeys, Wanted
from floatkey.hardware.machine_id import machine_hardware_id
from floatkey.hardware.pin import read_pin
from floatkey.hardware.refused_pins import FILE_NAME as REFUSED_PINS_FILE
from floatkey.hardware.refused_pins import RefusedPins
from floatkey.licensing import activation, installation, reporting
from floatkey.licensing.clock import ClockGuard
from floatkey.licensing.errors import vendor_only
from floatkey.licensing.signer import trusted_keys
from floatkey.metrics import Metrics, StateCollector
from floatkey.rules.policy import Policy, check_policy, checked_dates, policy_from_fields
from floatkey.rules.seats import ClientInfo
from floatkey.storage import Storage, records
from floatkey.storage.environment import Preload
from floatkey.timeutil import format_time, utcnow
from floatkey.usage import query as usage_query

logger = logging.getLogger(__name__)

T = TypeVar("T")

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
        hashing: PasswordHashing | None = None,
        exit_process: Callable[[int], Any] = os._exit,
    ) -> None:
        """``keys`` replaces the hardware-key subsystem (which ``hardware_keys`` turns off);
        ``hashing`` the password hashing of authentication (tests make it cheap)."""
        self.settings = settings or Settings()
        self._clock = clock
        self._given_keys = keys
        self._start_key_actor = keys is None and hardware_keys and self.settings.hardware_key.enabled
        self._keys: KeyChecker = keys or NoKeys()
        self._hashing = hashing or PasswordHashing()
        self._exit_process = exit_process
        self._timeout = self.settings.actor_timeout
        self._trusted = trusted_keys(Path(p).expanduser() for p in self.settings.vendor.public_keys)
        self._holder = IndexHolder()
        self.machine_id = machine_hardware_id()
        self._identity = HardwareIdHolder(self.machine_id)
        self.users = UserHolder()
        self.storage: Storage | None = None
        self._directory: DirectoryProxy | None = None
        self._key_actor: HardwareKeyProxy | None = None
        self._accounts: Accounts | None = None
        self._audit: Audit = NoAudit()
        self._clock_guard: ClockGuard | None = None
        #: What start() brought up, in order; stop() takes it down in reverse.
        self._stops: list[Callable[[], None]] = []
        #: This instance's own registry: events counted as they happen, and the state
        #: collector that reads the actors and the storage at scrape time.
        self.metrics = Metrics()
        self.metrics.registry.register(StateCollector(self))

    # Lifecycle: one start order, the reverse stop order

    @property
    def running(self) -> bool:
        return self._directory is not None

    def start(self) -> Floatkey:
        """Storage, audit, licenses, hardware ID, hardware keys, authentication, then the sweeper.

        If a part fails to start, the parts already started are stopped and the error
        propagates: a half-started server never serves.
        """
        try:
            self._start_storage()
            self._start_audit()
            assert self._clock_guard is not None
            self._clock_guard.observe(self._clock())  # after the audit: a rollback is recorded
            self._start_licenses()
            self._start_identity()
            if self._start_key_actor:
                self._start_hardware_keys()
            self._start_authentication()
            self._start_sweeper()
        except BaseException:
            self.stop()
            raise
        logger.info("floatkey %s started on %s", __version__, self.settings.data_dir)
        return self

    def stop(self) -> None:
        while self._stops:
            stop = self._stops.pop()
            try:
                stop()
            except Exception:
                logger.exception("floatkey: a part failed to stop; stopping the others")
        logger.info("floatkey stopped")

    def __enter__(self) -> Floatkey:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _start_storage(self) -> None:
        # The licenses and seats are loaded as the directory opens: that load is their
        # integrity check (one decoding of each record), before anything is written.
        books = Preload(records.BOOK_DATABASES, records.load_books)
        storage = Storage(self.settings.data_dir, self.settings.map_size, preload=books)
        if self.settings.metrics.enabled:
            storage.on_commit = self.metrics.commit
        self.storage = storage

        def close() -> None:
            self.storage = None
            storage.close()

        self._stops.append(close)
        self._clock_guard = ClockGuard(
            storage.get(records.META, records.LATEST_SEEN),
            timedelta(seconds=self.settings.clock_rollback_tolerance),
            lambda now: storage.write([("put", records.META, records.LATEST_SEEN, now)]),
            self._record_clock_rollback,
        )

    def _record_clock_rollback(self, latest: datetime, now: datetime) -> None:
        try:
            self._audit.clock_rolled_back(format_time(latest) or "", format_time(now) or "")
        except Exception as exc:  # the refusals it causes go out all the same
            logger.error("audit: the clock_rolled_back record could not be stored: %s", exc)

    def _start_audit(self) -> None:
        """The appender, before anything that records; it stops after all of them."""
        assert self.storage is not None
        retention = self.settings.audit.retention_days
        ref = AuditActor.start(self.storage, retention, self._clock, self._timeout)
        self._stops.append(_stopper(ref))
        self._audit = Audit(ActorAppender(audit_proxy(ref), 2 * self._timeout + 5))

        def forget() -> None:
            self._audit = NoAudit()

        self._stops.append(forget)
        config = self.settings.config_file
        self._audit.record(
            events.CONFIG_LOADED,
            origin=SYSTEM,
            file=None if config is None else str(config),
            sha256=self.settings.config_sha256,
            data_dir=str(self.settings.data_dir),
            version=__version__,
        )

    @property
    def audit(self) -> Audit:
        """The audit trail: ``record`` an event, durable on return (a no-op while stopped)."""
        return self._audit

    def _start_licenses(self) -> None:
        assert self.storage is not None
        books, self.storage.preloaded = self.storage.preloaded, None  # the directory's from now on
        ref = DirectoryActor.start(self.storage, self._clock, self._holder, books)
        self._stops.append(_stopper(ref))
        directory = directory_proxy(ref)
        # on_start restores every license in the actor's thread: wait for it, so the server
        # never listens before its licenses are there (and a failure fails the start).
        directory.loaded().get(timeout=max(self._timeout, 60))
        self._directory = directory

        def forget() -> None:
            self._directory = None

        self._stops.append(forget)

    def _start_identity(self) -> None:
        ref = HardwareIdActor.start(self.machine_id, self._identity, self._holder.current.key_serials())
        self._stops.append(_stopper(ref))

    def _start_hardware_keys(self) -> None:
        settings = self.settings.hardware_key
        # A PIN a key refused is remembered across restarts, so it is never sent to it again.
        refused = RefusedPins(self.settings.data_dir / REFUSED_PINS_FILE)
        ref = HardwareKeyActor.start(settings, read_pin(settings), refused)
        self._key_actor = hardware_key_proxy(ref)
        self._keys = KeyGate(self._key_actor.live_check, self._timeout)

        def stop() -> None:
            self._key_actor = None
            self._keys = self._given_keys or NoKeys()
            ref.stop()

        self._stops.append(stop)

    def _start_authentication(self) -> None:
        assert self.storage is not None
        auth = self.settings.auth
        signer = TokenSigner(load_or_create_secret(self.settings.data_dir), auth.token_lifetime)
        ref = AuthActor.start(
            self.storage,
            self.users,
            Throttle(auth.max_failed_logins, auth.throttle_window),
            hashing=self._hashing,
            initial_admin_password=auth.initial_admin_password,
        )
        self._stops.append(_stopper(ref))
        accounts = Accounts(
            auth_proxy(ref), self.users, signer, self._hashing, self._timeout, audit=self._audit
        )
        accounts.users()  # waits for on_start: the users are loaded before anyone logs in
        self._accounts = accounts

        def forget() -> None:
            self._accounts = None

        self._stops.append(forget)
        if self.settings.user_authentication and not self.users.current.users:
            logger.warning(
                "authentication mode without any user: nobody can log in; add the first admin "
                "with `floatkey users add NAME --role admin` (server stopped) or set "
                "auth.initialAdminPassword"
            )

    def _start_sweeper(self) -> None:
        sweeper = Sweeper(self._holder, self.settings.expiry_sweep_interval, self._clock, self._timeout)
        sweeper.start()
        self._stops.append(sweeper.stop)

    @property
    def accounts(self) -> Accounts:
        """Users, logins and tokens of authentication mode (``service_unavailable`` when stopped)."""
        if self._accounts is None:
            raise FloatkeyError("service_unavailable", "floatkey is not running.")
        return self._accounts

    # Client actions (V1)

    def register(
        self, product: str, user: str, *, license_id: int | None = None, client: ClientInfo = NO_CLIENT
    ) -> dict[str, Any]:
        """Take or refresh ``user``'s floating seat; answers the register answer of docs/api.md."""
        return self._act(product, license_id, "registering user", lic.Register(user, client))

    def borrow(
        self,
        product: str,
        user: str,
        *,
        borrowed_until: datetime | None = None,
        license_id: int | None = None,
        client: ClientInfo = NO_CLIENT,
    ) -> dict[str, Any]:
        return self._act(product, license_id, "borrowing license", lic.Borrow(user, client, borrowed_until))

    def unregister(self, product: str, user: str, *, license_id: int | None = None) -> str:
        return self._act(product, license_id, "unregistering user", lic.Unregister(user))

    def add_consumption(
        self, product: str, consumptions: int, *, license_id: int | None = None
    ) -> dict[str, Any]:
        return self._act(product, license_id, "adding consumption", lic.AddConsumption(consumptions))

    def add_feature_consumption(
        self, product: str, feature: str, consumptions: int, *, license_id: int | None = None
    ) -> dict[str, Any]:
        return self._act(
            product,
            license_id,
            "adding feature consumption",
            lic.AddFeatureConsumption(feature, consumptions),
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
            lic.FeatureRegister(feature, user, client, borrow_until),
        )

    def feature_release(self, product: str, feature: str, user: str, *, license_id: int | None = None) -> str:
        return self._act(product, license_id, "releasing feature", lic.FeatureRelease(feature, user))

    def unregister_all(self) -> None:
        """Free every seat of every license (the V1 ``unregister/all``)."""
        self._audit.audited(events.UNREGISTER_ALL, lambda: self._each_license(lic.ReleaseAll()))

    def feature_release_all(self) -> None:
        self._audit.audited(events.FEATURE_RELEASE_ALL, lambda: self._each_license(lic.ReleaseAllFeatures()))

    # Administration

    def add_license(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Add a license from an administrator's policy fields (docs/api.md, ``POST /licenses``)."""

        def add() -> dict[str, Any]:
            policy = policy_from_fields(fields)
            serial = inputs.text(fields, "hardware_key_serial", max_length=20)
            if serial is not None and not serial.isdigit():
                raise inputs.invalid("hardware_key_serial", "a key serial (decimal digits)", serial)
            return self._add_policy(policy, serial)

        return self._audited_add(add, fields.get("product"))

    def add_policy(self, policy: Policy, key_serial: str | None = None) -> dict[str, Any]:
        return self._audited_add(lambda: self._add_policy(policy, key_serial), policy.product)

    def _audited_add(self, add: Callable[[], dict[str, Any]], product: object) -> dict[str, Any]:
        details: dict[str, Any] = {"product": product if isinstance(product, str) else None}
        try:
            answer = add()
        except Exception as exc:
            self._audit.refused(events.LICENSE_ADDED, events.outcome_of(exc), license_id=None, **details)
            raise
        self._audit.record(events.LICENSE_ADDED, license_id=answer.get("id"), **details)
        return answer

    def _add_policy(self, policy: Policy, key_serial: str | None = None) -> dict[str, Any]:
        if self.settings.vendor_licenses_only:
            raise vendor_only()
        policy = checked_dates(policy)
        check_policy(policy)  # a host-built Policy: what storage cannot keep is refused here
        if policy.is_hardware_key_auth:
            serial = self._checked_key(key_serial, "adding license")
            policy = replace(policy, hardware_key_serial=serial)
        answer: dict[str, Any] = self._get(self._running_directory().add(policy))
        return answer

    # License files (docs/licensing.md)

    def activation_request(self, product: str) -> dict[str, Any]:
        """A new activation request for ``product``, signed by every valid key present."""
        return activation.make_request(
            product,
            self.machine_id,
            self._key_actor,
            self.hardware_key_status()["keys"],
            self._running_directory(),
            self._timeout,
            installation.public_pem(self.settings.data_dir),
        )

    def import_license(self, data: bytes | str) -> dict[str, Any]:
        """Install a license file or a refresh file; answers the license object."""
        hardware_ids = frozenset({self.machine_id, self.hardware_id})
        known = set(self._index().by_id)
        try:
            answer = activation.install(
                data, self._trusted, self._running_directory(), hardware_ids, self._keys, self._timeout
            )
        except Exception as exc:
            self._audit.refused(events.LICENSE_IMPORTED, events.outcome_of(exc), license_id=None)
            raise
        kind = events.LICENSE_REFRESHED if answer.get("id") in known else events.LICENSE_IMPORTED
        product = answer.get("product_details", {}).get("short_code")
        self._audit.license_event(kind, answer.get("id"), product)
        return answer

    def remove_license(self, product: str | None = None, license_id: int | None = None) -> None:
        self._audit.audited(
            events.LICENSE_REMOVED,
            lambda: self._remove_license(product, license_id),
            product=product,
            license_id=license_id,
        )

    def _remove_license(self, product: str | None, license_id: int | None) -> None:
        if product is not None:
            license_id = self._index().resolve(product, license_id).license_id
        if license_id is None:
            raise FloatkeyError("missing_parameters", "Name the license: product or license_id.")
        self._get(self._running_directory().remove(license_id))

    def licenses(self, product: str | None = None) -> list[dict[str, Any]]:
        entries = list(self._index().entries(product))
        if product is not None and not entries:
            raise unknown_product(product)
        tickets = [lic.send(e.ref, lic.LicenseObject()) for e in entries]
        return [t.result(self._timeout) for t in tickets]

    def registrations(self, license_id: int | None = None) -> list[dict[str, Any]]:
        entries = [e for e in self._index().entries() if license_id in (None, e.license_id)]
        if license_id is not None and not entries:
            raise no_license_with_id(license_id)
        tickets = [lic.send(e.ref, lic.Registrations()) for e in entries]
        return [seat for t in tickets for seat in t.result(self._timeout)]

    def force_release(self, license_id: int, user: str) -> None:
        def release() -> None:
            entry = self._index().by_id.get(license_id)
            if entry is None:
                raise no_license_with_id(license_id)
            lic.ask(entry.ref, lic.Release(user), self._timeout)

        self._audit.audited(events.SEAT_FORCE_RELEASED, release, license_id=license_id, user=user)

    def usage(
        self, license_id: int, since: Any = None, until: Any = None, step: int | str | None = None
    ) -> dict[str, Any]:
        """The usage history of a license (floatkey/usage/query.py): ``since`` and ``until``
        are datetimes or RFC 3339 text (default: the day up to now), ``step`` minute, hour,
        day or seconds (default: the finest that fits one answer)."""
        win = usage_query.window({"from": since, "to": until, "step": step}, self._clock())
        entry = self._index().by_id.get(license_id)
        if entry is None:
            raise no_license_with_id(license_id)
        history = lic.ask(entry.ref, lic.UsageHistory(), self._timeout)
        return {
            "license_id": license_id,
            "from": format_time(datetime.fromtimestamp(win.start, UTC)),
            "to": format_time(datetime.fromtimestamp(win.end, UTC)),
            "step": win.step,
            "buckets": usage_query.points(history, win),
        }

    def usage_report(self, license_id: int, since: Any = None, until: Any = None) -> dict[str, Any]:
        """The license's next signed usage report (floatkey/licensing/report.py) over
        ``[since, until)``: by default from where its previous report ended, up to now."""
        entry = self._index().by_id.get(license_id)
        if entry is None:
            raise no_license_with_id(license_id)
        assert self.storage is not None
        signing = reporting.Signing(self._keys, self._key_actor, self.settings.data_dir, self._timeout)
        return reporting.make_report(
            self.storage,
            entry,
            signing,
            since=since,
            until=until,
            clock=self._clock,
            hardware_id=self.machine_id,
        )

    def health(self) -> dict[str, Any]:
        """``status`` stays "ok" for V1 clients; ``storage`` says whether changes can be stored."""
        if self.storage is None:
            raise FloatkeyError("service_unavailable", "floatkey is not running.")
        writable, since = self.storage.writable
        return {
            "status": "ok",
            "version": __version__,
            "hardware_id": self.hardware_id,
            # Which way licenses are added (docs/licensing.md): the console offers that one.
            "license_source": "vendor" if self.settings.vendor_licenses_only else "local",
            "hardware_key": self.hardware_key_status(),
            "clock": self._clock_guard.status(self._clock()) if self._clock_guard else None,
            "storage": {
                "writable": writable,
                "since": format_time(since),
                "map_used": round(self.storage.map_used(), 4),
            },
        }

    def readiness(self) -> list[str]:
        """Why this server should not get traffic yet, one sentence each; empty when ready.

        Ready: storage writable, licenses loaded (the directory actor answers), and every
        hardware key a license is bound to present and valid now (a live check).
        """
        if self.storage is None or self._directory is None:
            return ["floatkey is not running"]
        reasons = []
        writable, since = self.storage.writable
        if not writable:
            reasons.append(f"the data directory refuses writes since {format_time(since)} (see the log)")
        if not self.responsive():
            reasons.append("the licenses do not answer within actorTimeout (loading, or overloaded)")
        serials = {e.key_serial: e for e in self._index().entries() if e.requires_key}
        for serial, entry in serials.items():
            try:
                self._keys.check(serial, "readiness check")
            except FloatkeyError:
                key = f"hardware key {serial}" if serial else "hardware key"
                reasons.append(f"no valid {key} for license {entry.license_id} ({entry.product})")
        return reasons

    def responsive(self) -> bool:
        """Whether the directory actor answers within ``actorTimeout`` (the watchdog's check)."""
        directory = self._directory
        if directory is None:
            return False
        try:
            directory.loaded().get(timeout=self._timeout)
        except pykka.Timeout:
            return False
        except Exception:
            logger.exception("the directory actor failed a liveness check")
            return False
        return True

    def hardware_key_status(self) -> dict[str, Any]:
        """The key subsystem's state (docs/hardware-keys.md): identity, PC/SC, and every key seen."""
        status: dict[str, Any] = {"pcsc": "unavailable", "keys": []}
        if self._key_actor is not None:
            status = self._get(self._key_actor.status())
            for key in status["keys"]:
                key["since"] = format_time(key["since"])
        return {"hardware_id": self.hardware_id, **status}

    def hardware_key_verification_ages(self) -> dict[str, float]:
        """Seconds since each key's last full verification, by serial (metrics)."""
        if self._key_actor is None:
            return {}
        return self._get(self._key_actor.verification_ages())

    @property
    def actors_started(self) -> int:
        """License actors started by this instance so far (each on its license's first message)."""
        return self._holder.actors_started

    @property
    def hardware_id(self) -> str:
        """The key serial standing for this server, or the machine's own ID (docs/hardware-keys.md)."""
        return self._identity.current

    # Plumbing

    def _index(self) -> LicenseIndex:
        if self._directory is None:
            raise FloatkeyError("service_unavailable", "floatkey is not running.")
        return self._holder.current

    def _running_directory(self) -> DirectoryProxy:
        if self._directory is None:
            raise FloatkeyError("service_unavailable", "floatkey is not running.")
        return self._directory

    def _act(self, product: str, license_id: int | None, action: str, message: lic.LicenseMessage[T]) -> T:
        """A client action: resolve the license, verify its key, and let its actor answer."""
        entry = self._index().resolve(product, license_id)
        if entry.has_end_date and self._clock_guard is not None:
            self._clock_guard.check(self._clock())
        if entry.requires_key:
            self._checked_key(entry.wanted_keys, action)
        return lic.ask(entry.ref, message, self._timeout)

    def _each_license(self, message: lic.LicenseMessage[None]) -> None:
        tickets = [lic.send(e.ref, message) for e in self._index().entries()]
        for ticket in tickets:
            ticket.result(self._timeout)

    def _checked_key(self, serial: Wanted, action: str) -> str:
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
        try:
            self._audit.record(events.CRASH_NO_KEY, "hardware_key_not_accessible", action=action)
        except Exception as exc:  # exit all the same: the supervisor must fail over
            logger.error("exiting without the audit record of this crash: %s", exc)
        if self.storage is not None:
            try:
                self.storage.wait(self.storage.queued_seq, self._timeout)
            except StorageError as exc:
                logger.error("exiting with changes not stored: %s", exc)
        logging.shutdown()
        self._exit_process(EXIT_NO_HARDWARE_KEY)

    def _get(self, future: pykka.Future[T]) -> T:
        """The result of an actor's future, or the error a client understands."""
        try:
            return future.get(timeout=self._timeout)
        except pykka.Timeout:
            raise overloaded() from None


def _stopper(ref: pykka.ActorRef[Any]) -> Callable[[], None]:
    def stop() -> None:
        ref.stop()

    return stop
