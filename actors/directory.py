"""DirectoryActor: which licenses exist, and the LicenseActor of each.

It restores every license from storage at start-up, adds and removes licenses, and
publishes an immutable ``LicenseIndex`` after each change. Request threads resolve
``product`` / ``license_id`` through the published index without a round trip to this
actor; only changes to the set of licenses pass through its mailbox.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import pykka
from pykka.typing import ActorMemberMixin, proxy_method

from floatkey.actors.license import LicenseActor
from floatkey.errors import FloatkeyError, StorageError, no_license_with_id
from floatkey.listener import Listener, send
from floatkey.rules.license import LicenseBook
from floatkey.rules.policy import Policy
from floatkey.storage import Storage, records
from floatkey.storage.records import license_record, load_book, load_books

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LicenseEntry:
    license_id: int
    product: str
    #: Serial of the hardware key the license is bound to, or None.
    key_serial: str | None
    requires_key: bool
    #: Reached only through the license protocol (``floatkey.actors.license.send``/``ask``):
    #: no proxy, whose making inspects the actor and would cost a restart 1,000 times over.
    ref: pykka.ActorRef[LicenseActor]


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

    def publish(self, index: LicenseIndex) -> None:
        # One reference assignment: readers see the old index or the new one, never a mix.
        self.current = index


class DirectoryListener(Listener):
    """Events of the directory."""

    def licenses_changed(self, key_serials: list[str]) -> None:
        """The set of licenses changed; ``key_serials`` of the key-bound ones, oldest first."""


class DirectoryActor(pykka.ThreadingActor):
    def __init__(self, storage: Storage, clock: Callable[[], datetime], holder: IndexHolder) -> None:
        super().__init__()
        self._storage = storage
        self._clock = clock
        self._holder = holder
        self._entries: dict[int, LicenseEntry] = {}

    def on_start(self) -> None:
        for book in load_books(self._storage):
            self._start_license(book)
        self._publish()
        logger.info("%d licenses loaded", len(self._entries))

    def on_stop(self) -> None:
        for entry in reversed(list(self._entries.values())):
            entry.ref.stop()
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
        entry.ref.stop()
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

    def _restart(self, license_id: int) -> None:
        book = load_book(self._storage, license_id)
        if book is None:
            self._holder.due.pop(license_id, None)
            return
        self._start_license(book)
        self._storage.resynced(license_id)
        self._publish()
        logger.warning("license %d was not removed: the change could not be stored", license_id)

    def _start_license(self, book: LicenseBook) -> None:
        ref = LicenseActor.start(book, self._storage, self._clock, self._holder.due)
        policy = book.policy
        self._entries[book.license_id] = LicenseEntry(
            license_id=book.license_id,
            product=policy.product,
            key_serial=policy.hardware_key_serial,
            requires_key=policy.is_hardware_key_auth,
            ref=ref,
        )

    def _publish(self) -> None:
        index = LicenseIndex(dict(self._entries))
        self._holder.publish(index)
        send(DirectoryListener, "licenses_changed", key_serials=index.key_serials())


class DirectoryProxy(ActorMemberMixin, pykka.ActorProxy[DirectoryActor]):
    """The typed way to talk to the DirectoryActor."""

    loaded = proxy_method(DirectoryActor.loaded)
    add = proxy_method(DirectoryActor.add)
    remove = proxy_method(DirectoryActor.remove)


def directory_proxy(ref: pykka.ActorRef[DirectoryActor]) -> DirectoryProxy:
    return cast(DirectoryProxy, ref.proxy())
