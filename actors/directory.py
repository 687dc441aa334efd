"""DirectoryActor: which licenses exist, and the LicenseActor of each.

It restores every license from storage at start-up, adds and removes licenses, and
publishes an immutable ``LicenseIndex`` after each change. A license's actor starts on
the first message sent to it (``LicenseCell``), not at start-up. Request threads resolve
``product`` / ``license_id`` through the published index without a round trip to this
actor; only changes to the set of licenses pass through its mailbox.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import pykka
from pykka.typing import ActorMemberMixin, proxy_method

from floatkey.actors.license import LicenseActor
from floatkey.errors import FloatkeyError, StorageError, license_removed, no_license_with_id
from floatkey.licensing import validation
from floatkey.licensing.claims import LicenseClaims
from floatkey.listener import Listener, send
from floatkey.rules.license import LicenseBook
from floatkey.rules.policy import Policy
from floatkey.storage import Storage, records
from floatkey.storage.environment import Op
from floatkey.storage.records import license_record, load_book, load_books

logger = logging.getLogger(__name__)


class LicenseCell:
    """The LicenseActor of one license, started by the first message sent to it.

    Started one by one at start-up, 10,000 actors took 2.4 s of a restart (a thread
    each). Until its actor starts, the cell holds the license's book, which nobody else
    reads; from then on the actor owns the book, as it always did. Still one actor per
    license: the cell's lock only makes sure one is started, once.
    """

    __slots__ = ("_book", "_closed", "_lock", "_ref", "_start")

    def __init__(
        self,
        book: LicenseBook | None,
        start: Callable[[LicenseBook], pykka.ActorRef[LicenseActor]] | None,
        ref: pykka.ActorRef[LicenseActor] | None = None,
    ) -> None:
        self._book = book
        self._start = start
        self._lock = threading.Lock()
        self._ref = ref
        self._closed = False

    @classmethod
    def running(cls, ref: pykka.ActorRef[Any]) -> LicenseCell:
        """A cell around an actor already started."""
        return cls(None, None, ref)

    @property
    def ref(self) -> pykka.ActorRef[LicenseActor]:
        """The license's actor, started now if this is the first message to it."""
        ref = self._ref
        if ref is not None:
            return ref
        with self._lock:
            if self._ref is None:
                if self._closed or self._book is None or self._start is None:
                    raise license_removed()
                self._ref = self._start(self._book)
                self._book = None
                self._start = None
            return self._ref

    @property
    def started(self) -> bool:
        return self._ref is not None

    def close(self) -> None:
        """Start no actor from now on, and stop the one that runs."""
        with self._lock:
            self._closed = True
            self._book = None
            ref = self._ref
        if ref is not None:
            ref.stop()


@dataclass(frozen=True)
class LicenseEntry:
    license_id: int
    product: str
    #: Serial of the hardware key the license is bound to, or None.
    key_serial: str | None
    requires_key: bool
    #: The actor, reached only through the license protocol (``floatkey.actors.license``
    #: ``send``/``ask`` on ``ref``): no proxy, whose making inspects the actor and would cost
    #: a restart 1,000 times over.
    cell: LicenseCell
    #: A vendor license file may name several keys: any one of them satisfies the check.
    key_set: tuple[str, ...] = ()
    #: The license has an end date: the clock guard applies to it.
    has_end_date: bool = False

    @property
    def ref(self) -> pykka.ActorRef[LicenseActor]:
        """The license's actor, started by this first use if it has not been yet."""
        return self.cell.ref

    @property
    def wanted_keys(self) -> tuple[str, ...] | str | None:
        """What the key check must find: one of ``key_set``, else ``key_serial``."""
        return self.key_set or self.key_serial


@dataclass(frozen=True)
class LicenseIndex:
    """An immutable snapshot of the licenses, in the order they were added."""

    by_id: dict[int, LicenseEntry]
    by_product: dict[str, list[LicenseEntry]] = field(init=False)

    def __post_init__(self) -> None:
        by_product: dict[str, list[LicenseEntry]] = {}
        for entry in self.by_id.values():
            by_product.setdefault(entry.product, []).append(entry)
        object.__setattr__(self, "by_product", by_product)

    def resolve(self, product: str, license_id: int | None) -> LicenseEntry:
        """The license meant by a request: the given id, or the product's newest license."""
        entries = self.by_product.get(product)
        if not entries:
            raise unknown_product(product)
        if license_id is None:
            return entries[-1]
        entry = self.by_id.get(license_id)
        if entry is None or entry.product != product:
            raise FloatkeyError(
                "license_not_found", f"The product {product!r} has no license with id {license_id}."
            )
        return entry

    def key_serials(self) -> list[str]:
        """Serials of the keys that licenses are bound to, in the order licenses were added."""
        return [e.key_serial for e in self.by_id.values() if e.key_serial is not None]

    def entries(self, product: str | None = None) -> Iterator[LicenseEntry]:
        if product is None:
            yield from self.by_id.values()
        else:
            yield from self.by_product.get(product, [])


def unknown_product(product: str) -> FloatkeyError:
    return FloatkeyError(
        "unknown_product", f"There is no license for the product {product!r} on this server."
    )


class IndexHolder:
    """Where the directory publishes its current index for every thread to read."""

    def __init__(self) -> None:
        self.current = LicenseIndex({})
        #: license id -> no seat of that license expires before this (posted by its actor).
        self.due: dict[int, datetime | None] = {}
        #: License actors started so far (floatkey/app/collector.py freezes them).
        self.actors_started = 0
        self._started_lock = threading.Lock()

    def actor_started(self) -> None:
        with self._started_lock:
            self.actors_started += 1

    def publish(self, index: LicenseIndex) -> None:
        # One reference assignment: readers see the old index or the new one, never a mix.
        self.current = index


class DirectoryListener(Listener):
    """Events of the directory."""

    def licenses_changed(self, key_serials: list[str]) -> None:
        """The set of licenses changed; ``key_serials`` of the key-bound ones, oldest first."""


class DirectoryActor(pykka.ThreadingActor):
    def __init__(
        self,
        storage: Storage,
        clock: Callable[[], datetime],
        holder: IndexHolder,
        books: list[LicenseBook] | None = None,
    ) -> None:
        """``books``: every license as loaded with the storage (records.load_books), if it was."""
        super().__init__()
        self._storage = storage
        self._clock = clock
        self._holder = holder
        self._books = books
        self._entries: dict[int, LicenseEntry] = {}

    def on_start(self) -> None:
        key_sets = {
            r["license_id"]: tuple(r["key_serials"]) for _, r in self._storage.items(records.VENDOR_LICENSES)
        }
        books, self._books = self._books, None
        for book in load_books(self._storage) if books is None else books:
            self._start_license(book, key_sets.get(book.license_id, ()))
        self._publish()
        logger.info("%d licenses loaded", len(self._entries))

    def on_stop(self) -> None:
        for entry in reversed(list(self._entries.values())):
            entry.cell.close()
        self._entries.clear()
        self._publish()

    def loaded(self) -> int:
        """How many licenses are running; answers once ``on_start`` has restored them all."""
        return len(self._entries)

    def add(self, policy: Policy) -> dict[str, Any]:
        """Create a license from ``policy``; answers its license object once it is stored."""
        license_id = self._storage.get(records.META, records.NEXT_LICENSE_ID) or 1
        book = LicenseBook(license_id=license_id, policy=policy, added_at=self._clock())
        seq = self._storage.write(
            [
                ("put", records.META, records.NEXT_LICENSE_ID, license_id + 1),
                ("put", records.LICENSES, records.license_key(license_id), license_record(book)),
            ]
        )
        self._storage.wait(seq)
        self._start_license(book)
        self._publish()
        key_note = ""
        if policy.is_hardware_key_auth:
            key_note = f", bound to hardware key {policy.hardware_key_serial}"
        logger.info("license %d added for product %r%s", license_id, policy.product, key_note)
        return book.license_object(self._clock())

    def remove(self, license_id: int) -> None:
        """Withdraw the license, stop its actor, then delete it with its seats.

        The actor stops first, so none of its writes can follow the deletion. If the
        deletion fails, the license is started again from what is stored.
        """
        entry = self._entries.pop(license_id, None)
        if entry is None:
            raise no_license_with_id(license_id)
        self._publish()
        entry.cell.close()
        prefix = records.license_key(license_id)
        seq = self._storage.write(
            [
                ("delete", records.LICENSES, prefix, None),
                ("delete_prefix", records.SEATS, prefix, None),
                ("delete_prefix", records.FEATURE_SEATS, prefix, None),
                ("delete_prefix", records.USAGE, prefix, None),  # its history goes with it
            ]
        )
        try:
            self._storage.wait(seq)
        except StorageError:
            self._restart(license_id)
            raise
        self._holder.due.pop(license_id, None)
        logger.info("license %d of product %r removed", license_id, entry.product)

    def open_request(self, nonce: str, product: str) -> None:
        """Remember an activation request's nonce (stored before the request leaves)."""
        record = records.nonce_record(product, self._clock())
        self._storage.wait(
            self._storage.write([("put", records.ACTIVATION_NONCES, records.nonce_key(nonce), record)])
        )

    def install(
        self,
        claims: LicenseClaims,
        policy: Policy,
        text: str,
        hardware_ids: frozenset[str],
        valid_keys: frozenset[str],
    ) -> dict[str, Any]:
        """Install a verified license file: a new license, or a refresh of the one it names.

        The checks that need stored state (sequence, nonce) run here, in the one actor
        that installs, so two uploads of one file cannot both pass. A refresh keeps the
        license's id, seats and counters. Nothing is changed when a check fails.
        """
        now = self._clock()
        uid_key = records.vendor_license_key(claims.license_uid)
        installed = self._storage.get(records.VENDOR_LICENSES, uid_key)
        open_nonces = set()
        if claims.nonce is not None and claims.nonce.isascii():
            asked = self._storage.get(records.ACTIVATION_NONCES, records.nonce_key(claims.nonce))
            if asked is not None and asked["answered_by"] is None and asked["product"] == claims.product:
                open_nonces.add(claims.nonce)
        here = validation.Installation(
            now=now,
            hardware_ids=hardware_ids,
            valid_keys=valid_keys,
            installed_sequence=None if installed is None else installed["sequence"],
            open_nonces=open_nonces,
        )
        validation.check(claims, here)
        running = installed is not None and installed["license_id"] in self._entries
        if running:
            assert installed is not None
            license_id = installed["license_id"]
            self._entries.pop(license_id).cell.close()
            self._publish()
            book = load_book(self._storage, license_id)
            assert book is not None
            book.policy = policy
            ops: list[Op] = []
        else:
            license_id = self._storage.get(records.META, records.NEXT_LICENSE_ID) or 1
            book = LicenseBook(license_id=license_id, policy=policy, added_at=now)
            ops = [("put", records.META, records.NEXT_LICENSE_ID, license_id + 1)]
        ops.append(("put", records.LICENSES, records.license_key(license_id), license_record(book)))
        vendor_record = records.vendor_license_record(
            license_id, claims.sequence, claims.key_serials, text, now
        )
        ops.append(("put", records.VENDOR_LICENSES, uid_key, vendor_record))
        if claims.nonce is not None and claims.nonce in open_nonces:
            answered = records.nonce_record(claims.product, now, claims.license_uid)
            ops.append(("put", records.ACTIVATION_NONCES, records.nonce_key(claims.nonce), answered))
        try:
            self._storage.wait(self._storage.write(ops))
        except StorageError:
            if running:
                self._restart(license_id)
            raise
        self._start_license(book, claims.key_serials)
        self._publish()
        logger.info(
            "license file %s (sequence %d) installed as license %d for product %r",
            claims.license_uid,
            claims.sequence,
            license_id,
            claims.product,
        )
        return {**book.license_object(now), "license_uid": claims.license_uid, "sequence": claims.sequence}

    def _restart(self, license_id: int) -> None:
        book = load_book(self._storage, license_id)
        if book is None:
            self._holder.due.pop(license_id, None)
            return
        vendor_keys = [
            tuple(r["key_serials"])
            for _, r in self._storage.items(records.VENDOR_LICENSES)
            if r["license_id"] == license_id
        ]
        self._start_license(book, vendor_keys[0] if vendor_keys else ())
        self._storage.resynced(license_id)
        self._publish()
        logger.warning("license %d was not removed: the change could not be stored", license_id)

    def _start_license(self, book: LicenseBook, key_set: tuple[str, ...] = ()) -> None:
        # Posted here, not only by the actor: until a request starts the actor, this is
        # how the sweeper learns when to start it to free the seats that run out.
        self._holder.due[book.license_id] = book.next_expiry()
        policy = book.policy
        self._entries[book.license_id] = LicenseEntry(
            license_id=book.license_id,
            product=policy.product,
            key_serial=policy.hardware_key_serial,
            requires_key=policy.is_hardware_key_auth,
            cell=LicenseCell(book, self._start_actor),
            key_set=key_set,
            has_end_date=policy.validity_period is not None,
        )

    def _start_actor(self, book: LicenseBook) -> pykka.ActorRef[LicenseActor]:
        """Called by the first thread that has a message for the license."""
        ref = LicenseActor.start(book, self._storage, self._clock, self._holder.due)
        self._holder.actor_started()
        return ref

    def _publish(self) -> None:
        index = LicenseIndex(dict(self._entries))
        self._holder.publish(index)
        send(DirectoryListener, "licenses_changed", key_serials=index.key_serials())


class DirectoryProxy(ActorMemberMixin, pykka.ActorProxy[DirectoryActor]):
    """The typed way to talk to the DirectoryActor."""

    loaded = proxy_method(DirectoryActor.loaded)
    add = proxy_method(DirectoryActor.add)
    remove = proxy_method(DirectoryActor.remove)
    open_request = proxy_method(DirectoryActor.open_request)
    install = proxy_method(DirectoryActor.install)


def directory_proxy(ref: pykka.ActorRef[DirectoryActor]) -> DirectoryProxy:
    return cast(DirectoryProxy, ref.proxy())
