"""LicenseActor: the one owner of a license's seats, borrows and consumptions.

Every change to one license passes through this actor's mailbox, so seat counting
needs no lock and cannot race. The actor queues each change for storage before it
answers and returns the storage sequence number with the answer: the caller acknowledges
the client only once that number is durable.

If a commit of its changes fails, memory is ahead of the disk; the storage refuses the
license's further writes, and the writer thread tells the actor, which reloads itself
from disk (``resync``): what it answers from then on is what is stored.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple

import pykka

from floatkey.errors import FloatkeyError, StorageError, overloaded
from floatkey.rules.consumption import Counter
from floatkey.rules.license import Changes, LicenseBook
from floatkey.rules.policy import policy_from_record, policy_to_record
from floatkey.rules.seats import ClientInfo, Seat
from floatkey.storage import Storage, keys
from floatkey.storage.environment import Op

logger = logging.getLogger(__name__)

#: An answer for the client (or the FloatkeyError that refuses the action) and the
#: storage sequence number to wait for before answering.
Reply = tuple[Any, int]


def _replies(method: Callable[..., Reply]) -> Callable[..., Reply]:
    """Return a refusal as a value: pykka would log every raised one with its traceback."""

    @functools.wraps(method)
    def wrapper(self: LicenseActor, *args: Any) -> Reply:
        try:
            return method(self, *args)
        except FloatkeyError as exc:
            return exc, self._last_seq

    return wrapper


class Ticket:
    """Where a client action's answer arrives, once what it rests on is durable.

    The request thread tells the actor a ``LicenseRequest`` carrying a ticket and waits on
    it; the actor fills in the answer and hands the ticket to storage, whose writer thread
    releases it after the commit. One wake-up per request instead of two round trips.
    """

    __slots__ = ("_latch", "answer", "error")

    def __init__(self) -> None:
        self.answer: Any = None
        self.error: str | None = None
        # A held lock is the cheapest one-shot latch: release() opens it for the one waiter.
        self._latch = threading.Lock()
        self._latch.acquire()

    def release(self, error: str | None) -> None:
        self.error = error
        self._latch.release()

    def result(self, timeout: float) -> Any:
        if not self._latch.acquire(timeout=timeout):
            raise overloaded()
        if self.error is not None:
            raise StorageError(f"the change could not be stored: {self.error}")
        if isinstance(self.answer, FloatkeyError):
            raise self.answer
        return self.answer


class LicenseRequest(NamedTuple):
    """A client action for a LicenseActor: ``method(*args)``, answered through ``ticket``."""

    method: str
    args: tuple[Any, ...]
    ticket: Ticket


class Resync(NamedTuple):
    """A write of the license (sequence number ``seq``) failed: reload from disk."""

    seq: int


class LicenseActor(pykka.ThreadingActor):
    def __init__(
        self,
        book: LicenseBook,
        storage: Storage,
        clock: Callable[[], datetime],
        due: dict[int, datetime | None],
    ) -> None:
        """``due`` is the board where the actor posts when its next seat may expire."""
        super().__init__()
        self._book = book
        self._storage = storage
        self._clock = clock
        self._due = due
        due[book.license_id] = book.next_expiry()
        #: The license's latest write: a refusal rests on it, so it waits for it too.
        self._last_seq = 0
        #: Every write up to this one had settled when the license last reloaded.
        self._resynced_through = 0

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Resync):
            if message.seq > self._resynced_through:
                self.resync()
            return None
        if not isinstance(message, LicenseRequest):
            return super().on_receive(message)
        try:
            answer, seq = getattr(self, message.method)(*message.args)
        except Exception:
            logger.exception("license %d failed on %s", self._book.license_id, message.method)
            answer = FloatkeyError("internal_error", "The server failed on this request; it has been logged.")
            seq = self._last_seq
        message.ticket.answer = answer
        self._storage.on_durable(seq, message.ticket.release)
        return None

    # Client actions

    @_replies
    def register(self, user: str, client: ClientInfo) -> Reply:
        answer, changes = self._book.register(user, client, self._clock())
        return answer, self._persist(changes)

    @_replies
    def borrow(self, user: str, client: ClientInfo, until: datetime | None) -> Reply:
        answer, changes = self._book.borrow(user, client, until, self._clock())
        return answer, self._persist(changes)

    @_replies
    def unregister(self, user: str) -> Reply:
        return "user_unregistered", self._persist(self._book.unregister(user, self._clock()))

    @_replies
    def add_consumption(self, n: int) -> Reply:
        answer, changes = self._book.add_consumption(n, self._clock())
        return answer, self._persist(changes)

    @_replies
    def add_feature_consumption(self, feature: str, n: int) -> Reply:
        answer, changes = self._book.add_feature_consumption(feature, n, self._clock())
        return answer, self._persist(changes)

    @_replies
    def feature_register(
        self, feature: str, user: str, client: ClientInfo, borrow_until: datetime | None
    ) -> Reply:
        answer, changes = self._book.feature_register(feature, user, client, borrow_until, self._clock())
        return answer, self._persist(changes)

    @_replies
    def feature_release(self, feature: str, user: str) -> Reply:
        changes = self._book.feature_release(feature, user, self._clock())
        return "feature_released", self._persist(changes)

    # Administration

    @_replies
    def release(self, user: str) -> Reply:
        changes = self._book.release(user)
        logger.info("seat of %r on license %d released by an administrator", user, self._book.license_id)
        return None, self._persist(changes)

    @_replies
    def release_all(self) -> Reply:
        return None, self._persist(self._book.release_all())

    @_replies
    def release_all_features(self) -> Reply:
        return None, self._persist(self._book.release_all_features())

    def sweep(self) -> None:
        """Free the seats whose time has run out (told by the sweeper when some may have)."""
        now = self._clock()
        due = self._book.next_expiry()
        if due is None or now < due:
            return
        ended, changes = self._book.expire(now)
        if ended:
            shown = ", ".join(repr(u) for u in ended[:10]) + (", ..." if len(ended) > 10 else "")
            logger.info("%d seats of license %d expired: %s", len(ended), self._book.license_id, shown)
        self._persist(changes)

    def resync(self) -> None:
        """Reload the license from disk, after a commit of its changes failed.

        It first waits for its own last write to settle: then the disk holds exactly what
        was committed of this license, since the storage refuses its writes after a
        failure until ``resynced``.
        """
        lid = self._book.license_id
        with contextlib.suppress(StorageError):  # refused or failed: settled, and not on disk
            self._storage.wait(self._last_seq)
        self._resynced_through = self._last_seq
        book = load_book(self._storage, lid)
        if book is None:
            return
        self._book = book
        self._due[lid] = book.next_expiry()
        self._last_seq = 0
        self._storage.resynced(lid)
        logger.warning(
            "license %d reloaded from disk after a failed write: %d seats held", lid, len(book.seats)
        )

    # Views

    def license_object(self) -> dict[str, Any]:
        return self._book.license_object(self._clock())

    def registrations(self) -> list[dict[str, Any]]:
        return self._book.registrations(self._clock())

    def _persist(self, changes: Changes) -> int:
        if changes.seats or changes.feature_seats:
            self._due[self._book.license_id] = self._book.next_expiry()
        if changes:
            seq = self._storage.write(license_ops(self._book, changes), self._book.license_id)
            self._storage.on_durable(seq, functools.partial(self._committed, seq))
            self._last_seq = seq
        return self._last_seq

    def _committed(self, seq: int, error: str | None) -> None:
        """Called by the storage writer thread once write ``seq`` is settled."""
        if error is None:
            return
        with contextlib.suppress(pykka.ActorDeadError):  # removed, or the server stops
            self.actor_ref.tell(Resync(seq))


def license_ops(book: LicenseBook, changes: Changes) -> list[Op]:
    """The storage writes that make ``changes`` durable."""
    ops: list[Op] = []
    lid = book.license_id
    for user, seat in changes.seats.items():
        key = keys.seat_key(lid, user)
        if seat is None:
            ops.append(("delete", "seats", key, None))
        else:
            ops.append(("put", "seats", key, seat.to_record()))
    for (code, user), seat in changes.feature_seats.items():
        key = keys.feature_seat_key(lid, code, user)
        if seat is None:
            ops.append(("delete", "feature_seats", key, None))
        else:
            ops.append(("put", "feature_seats", key, {"feature": code, **seat.to_record()}))
    if changes.counters:
        ops.append(("put", "licenses", keys.license_key(lid), license_record(book)))
    return ops


def license_record(book: LicenseBook) -> dict[str, Any]:
    return {
        "policy": policy_to_record(book.policy),
        "added_at": book.added_at,
        "consumption": book.consumption.to_record(),
        "feature_consumption": {c: v.to_record() for c, v in book.feature_consumption.items()},
    }


def load_books(storage: Storage) -> list[LicenseBook]:
    """Every license with its seats and counters, as stored."""
    seats: dict[int, dict[str, Seat]] = {}
    for key, record in storage.items("seats"):
        seats.setdefault(keys.license_id_of(key), {})[record["user"]] = Seat.from_record(record)
    feature_seats: dict[int, dict[str, dict[str, Seat]]] = {}
    for key, record in storage.items("feature_seats"):
        holders = feature_seats.setdefault(keys.license_id_of(key), {})
        holders.setdefault(record["feature"], {})[record["user"]] = Seat.from_record(record)
    books = []
    for key, record in storage.items("licenses"):
        lid = keys.license_id_of(key)
        books.append(_book(lid, record, seats.get(lid, {}), feature_seats.get(lid, {})))
    return books


def load_book(storage: Storage, license_id: int) -> LicenseBook | None:
    """One license as stored, or None if it is not."""
    prefix = keys.license_key(license_id)
    record = storage.get("licenses", prefix)
    if record is None:
        return None
    seats = {r["user"]: Seat.from_record(r) for _, r in storage.items("seats", prefix)}
    feature_seats: dict[str, dict[str, Seat]] = {}
    for _, r in storage.items("feature_seats", prefix):
        feature_seats.setdefault(r["feature"], {})[r["user"]] = Seat.from_record(r)
    return _book(license_id, record, seats, feature_seats)


def _book(
    license_id: int, record: dict[str, Any], seats: dict[str, Seat], feature_seats: dict[str, dict[str, Seat]]
) -> LicenseBook:
    return LicenseBook(
        license_id=license_id,
        policy=policy_from_record(record["policy"]),
        added_at=record["added_at"],
        seats=seats,
        feature_seats=feature_seats,
        consumption=Counter.from_record(record["consumption"]),
        feature_consumption={
            code: Counter.from_record(c) for code, c in record["feature_consumption"].items()
        },
    )
