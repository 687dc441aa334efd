"""LicenseActor: the one owner of a license's seats, borrows and consumptions.

Every change to one license passes through this actor's mailbox, so seat counting
needs no lock and cannot race. Every request is a typed message (``Register``,
``Release``, ``LicenseObject``, ...) sent with ``send`` / ``ask``: the actor queues each
change for storage and hands its answer to the storage writer, which releases it to the
waiting thread once the change is durable.

If a commit of its changes fails, memory is ahead of the disk; the storage refuses the
license's further writes, and the writer thread tells the actor, which reloads itself
from disk (``resync``): what it answers from then on is what is stored.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, NamedTuple, TypeVar

import pykka

from floatkey.app import bench_switches
from floatkey.errors import FloatkeyError, StorageError, license_removed, overloaded
from floatkey.rules.license import Changes, LicenseBook
from floatkey.rules.seats import ClientInfo
from floatkey.storage import Storage
from floatkey.storage.environment import Op
from floatkey.storage.records import license_ops, load_book, load_usage, load_usage_bucket, usage_ops
from floatkey.usage import buckets as ub
from floatkey.usage.query import History
from floatkey.usage.recorder import Recorder

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Ticket:
    """Where an answer arrives, once what it rests on is durable.

    The request thread tells the actor an ``Envelope`` carrying a ticket and waits on it;
    the actor fills in the answer and hands the ticket to storage, whose writer thread
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


# --- the protocol: one message class per request, typed by its answer ---------------------


class LicenseMessage(Generic[T]):
    """A request to a LicenseActor whose answer is a ``T`` (see ``ask``).

    ``durable``: the answer waits until the license's last write is synced, so that nothing
    a client is told can be lost. Views and the sweep have nothing to acknowledge.
    """

    __slots__ = ()
    durable: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class Register(LicenseMessage[dict[str, Any]]):
    """Take ``user``'s floating seat, or refresh the one they hold."""

    user: str
    client: ClientInfo


@dataclass(frozen=True, slots=True)
class Borrow(LicenseMessage[dict[str, Any]]):
    """Hold ``user``'s seat without check-ins until ``until`` (None: as long as allowed)."""

    user: str
    client: ClientInfo
    until: datetime | None


@dataclass(frozen=True, slots=True)
class Unregister(LicenseMessage[str]):
    """Free ``user``'s seat (the client's own release)."""

    user: str


@dataclass(frozen=True, slots=True)
class AddConsumption(LicenseMessage[dict[str, Any]]):
    """Meter ``consumptions`` uses of the license."""

    consumptions: int


@dataclass(frozen=True, slots=True)
class AddFeatureConsumption(LicenseMessage[dict[str, Any]]):
    """Meter ``consumptions`` uses of a consumption feature."""

    feature: str
    consumptions: int


@dataclass(frozen=True, slots=True)
class FeatureRegister(LicenseMessage[dict[str, Any]]):
    """Take ``user``'s seat of a floating feature, borrowed until ``borrow_until`` if given."""

    feature: str
    user: str
    client: ClientInfo
    borrow_until: datetime | None


@dataclass(frozen=True, slots=True)
class FeatureRelease(LicenseMessage[str]):
    """Free ``user``'s seat of a floating feature."""

    feature: str
    user: str


@dataclass(frozen=True, slots=True)
class Release(LicenseMessage[None]):
    """An administrator frees ``user``'s seat."""

    user: str


@dataclass(frozen=True, slots=True)
class ReleaseAll(LicenseMessage[None]):
    """Free every seat (V1 ``unregister/all``)."""


@dataclass(frozen=True, slots=True)
class ReleaseAllFeatures(LicenseMessage[None]):
    """Free every feature seat."""


@dataclass(frozen=True, slots=True)
class Sweep(LicenseMessage[None]):
    """Free the seats whose time has run out (sent by the sweeper when some may have)."""

    durable: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class LicenseObject(LicenseMessage[dict[str, Any]]):
    """The license object of docs/api.md."""

    durable: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class Registrations(LicenseMessage[list[dict[str, Any]]]):
    """Every seat of the license, as ``GET /registrations`` shows it."""

    durable: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class UsageHistory(LicenseMessage[History]):
    """The license's usage buckets, stored and open, by series and start (floatkey.usage)."""

    durable: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class UsageBuckets(LicenseMessage[dict[ub.Place, ub.Bucket]]):
    """Every usage bucket with its tier (usage reports need each bucket's span); the open
    minute's seat-seconds run until now."""

    durable: ClassVar[bool] = False


class Envelope(NamedTuple):
    """A message and the ticket its answer goes to."""

    message: LicenseMessage[Any]
    ticket: Ticket


class Resync(NamedTuple):
    """A write of the license (sequence number ``seq``) failed: reload from disk.

    Sent by the storage writer's callback, never by a client.
    """

    seq: int


def send(ref: pykka.ActorRef[LicenseActor], message: LicenseMessage[T]) -> Ticket:
    """Hand ``message`` to the license's actor; its answer arrives on the returned ticket."""
    ticket = Ticket()
    try:
        ref.tell(Envelope(message, ticket))
    except pykka.ActorDeadError:
        raise license_removed() from None
    return ticket


def ask(ref: pykka.ActorRef[LicenseActor], message: LicenseMessage[T], timeout: float) -> T:
    """Send ``message`` and wait up to ``timeout`` seconds for its answer.

    Raises the FloatkeyError that refuses the request, ``overloaded()`` when the actor does
    not answer in time, or StorageError when the change could not be stored.
    """
    answer: T = send(ref, message).result(timeout)
    return answer


class LicenseActor(pykka.ThreadingActor):
    #: Handlers by message type, filled in below the class: one table for all 10,000
    #: actors rather than a dict of bound methods in each.
    _HANDLERS: ClassVar[dict[type[LicenseMessage[Any]], Callable[[LicenseActor, Any], Any]]] = {}

    @staticmethod
    def _create_actor_inbox() -> queue.SimpleQueue[Any]:
        """A SimpleQueue: pykka's default Queue carries three Conditions, 1.5 KB per actor."""
        return queue.SimpleQueue()

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
        self._usage = Recorder()
        #: False only in the benchmark that measures what usage history costs.
        self._noting = not bench_switches.without(bench_switches.USAGE)
        self._feature_codes = frozenset(f.code for f in book.policy.features)
        started = clock().timestamp()
        self._usage.seed("", len(book.seats), started)
        for code, seats in book.feature_seats.items():
            self._usage.seed(code, len(seats), started)

    def on_stop(self) -> None:
        """Write the open minute of usage, so that history survives a restart."""
        try:
            self._write_usage(self._clock(), force=True)
            self._storage.wait(self._last_seq, timeout=5.0)
        except StorageError as exc:
            logger.error(
                "license %d: the last minute of usage history was not stored: %s", self._book.license_id, exc
            )

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Resync):
            if message.seq > self._resynced_through:
                self.resync()
            return None
        if not isinstance(message, Envelope):
            logger.error("license %d got an unknown message %r", self._book.license_id, message)
            return None
        request = message.message
        try:
            answer = self._HANDLERS[type(request)](self, request)
        except FloatkeyError as refusal:
            # A refusal is an answer, not a failure: pykka would log a raised one.
            answer = refusal
            self._count_refusal(request, refusal.code)
        except Exception:
            logger.exception("license %d failed on %s", self._book.license_id, type(request).__name__)
            answer = FloatkeyError("internal_error", "The server failed on this request; it has been logged.")
        message.ticket.answer = answer
        if request.durable:
            self._storage.on_durable(self._last_seq, message.ticket.release)
        else:
            message.ticket.release(None)
        return None

    # Client actions: each persists its changes; on_receive answers once they are durable.

    def _register(self, m: Register) -> dict[str, Any]:
        answer, changes = self._book.register(m.user, self._held_client(m.user, m.client), self._clock())
        self._persist(changes)
        return answer

    def _borrow(self, m: Borrow) -> dict[str, Any]:
        client = self._held_client(m.user, m.client)
        answer, changes = self._book.borrow(m.user, client, m.until, self._clock())
        self._persist(changes)
        return answer

    def _held_client(self, user: str, client: ClientInfo) -> ClientInfo:
        """The ClientInfo ``user``'s seat holds when ``client`` says the same, else ``client``.

        Every check-in parses a new ClientInfo; kept, each of 1,000,000 seats would own one
        (with its three strings, about 230 MB) after one round of check-ins, undoing the
        sharing of the load (``storage.records.ClientCache``).
        """
        held = self._book.seats.get(user)
        if held is not None and held.client == client:
            return held.client
        return client

    def _unregister(self, m: Unregister) -> str:
        self._persist(self._book.unregister(m.user, self._clock()))
        return "user_unregistered"

    def _add_consumption(self, m: AddConsumption) -> dict[str, Any]:
        now = self._clock()
        answer, changes = self._book.add_consumption(m.consumptions, now)
        self._persist(changes)
        self._note("", now.timestamp(), len(self._book.seats)).consumptions += m.consumptions
        return answer

    def _add_feature_consumption(self, m: AddFeatureConsumption) -> dict[str, Any]:
        now = self._clock()
        answer, changes = self._book.add_feature_consumption(m.feature, m.consumptions, now)
        self._persist(changes)
        held = len(self._book.feature_seats.get(m.feature, ()))
        self._note(m.feature, now.timestamp(), held).consumptions += m.consumptions
        return answer

    def _feature_register(self, m: FeatureRegister) -> dict[str, Any]:
        answer, changes = self._book.feature_register(
            m.feature, m.user, m.client, m.borrow_until, self._clock()
        )
        self._persist(changes)
        return answer

    def _feature_release(self, m: FeatureRelease) -> str:
        self._persist(self._book.feature_release(m.feature, m.user, self._clock()))
        return "feature_released"

    # Administration

    def _release(self, m: Release) -> None:
        changes = self._book.release(m.user)
        logger.info("seat of %r on license %d released by an administrator", m.user, self._book.license_id)
        self._persist(changes)

    def _release_all(self, m: ReleaseAll) -> None:
        self._persist(self._book.release_all())

    def _release_all_features(self, m: ReleaseAllFeatures) -> None:
        self._persist(self._book.release_all_features())

    def _sweep(self, m: Sweep) -> None:
        now = self._clock()
        self._write_usage(now)
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
        self._post_due()
        self._last_seq = 0
        self._storage.resynced(lid)
        logger.warning(
            "license %d reloaded from disk after a failed write: %d seats held", lid, len(book.seats)
        )

    # Views

    def _license_object(self, m: LicenseObject) -> dict[str, Any]:
        return self._book.license_object(self._clock())

    def _registrations(self, m: Registrations) -> list[dict[str, Any]]:
        return self._book.registrations(self._clock())

    def _persist(self, changes: Changes) -> None:
        if changes.seats or changes.feature_seats:
            self._record_seats(changes)
            self._post_due()
        if changes:
            self._write(license_ops(self._book, changes))

    def _write(self, ops: list[Op]) -> None:
        seq = self._storage.write(ops, self._book.license_id)
        self._storage.on_durable(seq, functools.partial(self._committed, seq))
        self._last_seq = seq

    # Usage history (floatkey/usage): noted in memory, written a minute at a time

    def _post_due(self) -> None:
        """When the sweeper should wake the license: a seat runs out, or its open minute ends."""
        due = self._book.next_expiry()
        if self._usage.end:
            ends = datetime.fromtimestamp(self._usage.end, UTC)
            due = ends if due is None else min(due, ends)
        self._due[self._book.license_id] = due

    def _note(self, series: str, now: float, held: int) -> ub.Bucket:
        """The open bucket of ``series``, sampled with ``held`` seats; an event of a new
        minute writes the finished one and tells the sweeper when the new one ends."""
        if not self._noting:
            return ub.Bucket()  # noted nowhere
        opened = self._usage.end
        bucket = self._usage.bucket(series, now, held)
        if self._usage.end != opened:
            if self._usage.has_closed:
                self._write_usage(self._usage.start)
            self._post_due()
        return bucket

    def _record_seats(self, changes: Changes) -> None:
        if not self._noting:
            return
        now = self._clock().timestamp()
        if changes.seats:
            self._note("", now, len(self._book.seats))
        for code in {code for code, _ in changes.feature_seats}:
            self._note(code, now, len(self._book.feature_seats.get(code, ())))

    def _count_refusal(self, request: LicenseMessage[Any], code: str) -> None:
        """Count a refusal under its feature's series when it names a feature of the license."""
        feature = getattr(request, "feature", "")
        if feature in self._feature_codes:
            held = len(self._book.feature_seats.get(feature, ()))
        else:
            feature, held = "", len(self._book.seats)
        self._note(feature, self._clock().timestamp(), held).deny(code)

    def _write_usage(self, now: datetime | float, force: bool = False) -> None:
        """Write the finished minutes (with ``force``, the open one too), compacting the
        older tiers when a new hour began."""
        t = now.timestamp() if isinstance(now, datetime) else now
        if force:
            self._usage.close(t)
        closed = self._usage.take_closed(t)
        if not closed:
            return
        lid = self._book.license_id
        if not self._storage.writable[0]:
            # The data directory is full (or failing): what room is left is for seats.
            logger.warning(
                "license %d: %d minutes of usage history dropped: storage not writable", lid, len(closed)
            )
            return
        puts: dict[ub.Place, ub.Bucket] = {}
        for start, series in closed:
            for name, bucket in series.items():
                place = (0, name, start)
                # Stored already if the server stopped during this minute (on_stop).
                earlier = puts.get(place) or load_usage_bucket(self._storage, lid, place)
                puts[place] = ub.merge(earlier, bucket) if earlier is not None else bucket
        deletes: list[ub.Place] = []
        hour = ub.align(int(t), ub.HOUR)
        if closed[0][0] < hour or force:
            # A new hour: move what the finer tiers no longer keep into the coarser ones.
            # Read what this license wrote before, so no merge misses a write in flight.
            with contextlib.suppress(StorageError):
                self._storage.wait(self._last_seq)
            stored = {**load_usage(self._storage, lid), **puts}
            deletes, compacted = ub.compact(stored, int(t))
            puts = {**puts, **compacted}
            for place in deletes:
                puts.pop(place, None)
        self._write(usage_ops(lid, deletes, puts))
        self._post_due()

    def _usage_history(self, m: UsageHistory) -> History:
        """Stored buckets and the open minute, once this license's writes are on disk."""
        with contextlib.suppress(StorageError):
            self._storage.wait(self._last_seq)
        history: dict[str, dict[int, ub.Bucket]] = {}
        for (_, series, start), bucket in sorted(load_usage(self._storage, self._book.license_id).items()):
            history.setdefault(series, {})[start] = bucket
        for start, series_buckets in self._usage.pending():
            for name, bucket in series_buckets.items():
                mine = history.setdefault(name, {})
                mine[start] = ub.merge(mine[start], bucket) if start in mine else bucket.copy()
        return {name: dict(sorted(b.items())) for name, b in history.items()}

    def _usage_buckets(self, m: UsageBuckets) -> dict[ub.Place, ub.Bucket]:
        """Stored buckets by place, with the minutes not yet written (tier 0)."""
        with contextlib.suppress(StorageError):
            self._storage.wait(self._last_seq)
        places = load_usage(self._storage, self._book.license_id)
        for start, series_buckets in self._usage.pending(self._clock().timestamp()):
            for name, bucket in series_buckets.items():
                place = (0, name, start)
                places[place] = ub.merge(places[place], bucket) if place in places else bucket.copy()
        return places

    def _committed(self, seq: int, error: str | None) -> None:
        """Called by the storage writer thread once write ``seq`` is settled."""
        if error is None:
            return
        with contextlib.suppress(pykka.ActorDeadError):  # removed, or the server stops
            self.actor_ref.tell(Resync(seq))


LicenseActor._HANDLERS.update(
    {
        Register: LicenseActor._register,
        Borrow: LicenseActor._borrow,
        Unregister: LicenseActor._unregister,
        AddConsumption: LicenseActor._add_consumption,
        AddFeatureConsumption: LicenseActor._add_feature_consumption,
        FeatureRegister: LicenseActor._feature_register,
        FeatureRelease: LicenseActor._feature_release,
        Release: LicenseActor._release,
        ReleaseAll: LicenseActor._release_all,
        ReleaseAllFeatures: LicenseActor._release_all_features,
        Sweep: LicenseActor._sweep,
        LicenseObject: LicenseActor._license_object,
        Registrations: LicenseActor._registrations,
        UsageHistory: LicenseActor._usage_history,
        UsageBuckets: LicenseActor._usage_buckets,
    }
)
