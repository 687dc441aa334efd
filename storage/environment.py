"""The LMDB environment and its group-committing writer.

Many license actors write at once. Each write is queued and gets a sequence number;
one writer thread applies everything queued in a single transaction and commits it
with a sync, then wakes the waiters. A caller answers its client only after
``wait(seq)`` returns, so every acknowledged change is on disk, while one fsync is
shared by all the writes that arrived during the previous one. Writes are applied in
the order they were queued, so a change that is durable implies every change queued
before it is durable too.

A license actor changes its state in memory before its write commits. When a commit
fails, the licenses it carried are *stale*: memory is ahead of the disk. Their later
writes were computed on that memory, so the writer refuses them until the license has
reloaded itself from disk and said so with ``resynced`` (a marker in the same queue, so
it takes effect exactly between the writes before and after the reload).
"""

from __future__ import annotations

import fcntl
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import lmdb

from floatkey.errors import StorageError
from floatkey.storage import integrity
from floatkey.storage.codec import pack, unpack
from floatkey.storage.records import DATABASES, META, MIGRATIONS, SCHEMA_KEY, SCHEMA_VERSION

logger = logging.getLogger(__name__)


#: One write operation: ("put", db, key, value), ("delete", db, key, None)
#: or ("delete_prefix", db, prefix, None).
Op = tuple[str, str, bytes, Any]

#: A queued write: its sequence number, its operations (None for a ``resynced`` marker)
#: and the license it belongs to, if any.
_Queued = tuple[int, "list[Op] | None", "int | None"]

#: An operation ready for the transaction: its kind, database handle, key and packed value.
_Ready = tuple[str, Any, bytes, "bytes | None"]
#: A write encoded for the transaction: its sequence number, operations and license.
_Encoded = tuple[int, "list[_Ready]", "int | None"]

STALE = "an earlier change of this license could not be stored, and it is being reloaded from disk"

#: Failed writes remembered for late waiters; a full disk under load must not grow this forever.
FAILED_KEPT = 100_000


@dataclass(frozen=True)
class Preload:
    """What to load while the data directory opens, before anything is written to it.

    ``load`` must read each of ``databases`` whole: it is their integrity check, and the
    read-through of the others leaves them out, so that nothing is decoded twice.
    """

    databases: frozenset[str]
    load: Callable[[Storage], Any]


class Storage:
    """The data directory: opened once per process, closed at shut-down."""

    def __init__(self, path: Path, map_size: int = 1 << 30, preload: Preload | None = None) -> None:
        """``preload`` runs once the directory is checked and open; its answer is kept as
        ``preloaded`` (a damaged record it meets refuses the directory like the check)."""
        self.path = Path(path)
        _make_private_dir(self.path)
        self._lock_file = _take_lock(self.path)
        try:
            integrity.check_data_file(self.path)
        except StorageError:
            self._lock_file.close()
            raise
        try:
            self._env = lmdb.open(
                str(self.path),
                map_size=map_size,
                max_dbs=len(DATABASES) + 1,
                sync=True,
                metasync=True,
                subdir=True,
                max_readers=512,
            )
        except lmdb.Error as exc:
            self._lock_file.close()
            raise StorageError(f"{self.path}: cannot open the data directory: {exc}") from None
        skip = preload.databases if preload is not None else frozenset()
        try:
            integrity.read_through(self._env, self.path, skip)  # before open_db, which may write
        except StorageError:
            self._env.close()
            self._lock_file.close()
            raise
        self._dbs = {name: self._env.open_db(name.encode()) for name in DATABASES}
        self._check_schema()  # writes only to a new or an older directory
        self.preloaded: Any = None
        if preload is not None:
            try:
                with integrity.reading(self.path):
                    self.preloaded = preload.load(self)
            except BaseException:
                self._env.close()
                self._lock_file.close()
                raise
        self._queue: list[_Queued] = []
        self._queued_seq = 0
        self._committed_seq = 0
        self._failed: dict[int, str] = {}
        #: Licenses whose writes are refused until they resync; the writer thread's own.
        self._stale: set[int] = set()
        #: Whether the latest commit succeeded, and since when that holds.
        self._writable: tuple[bool, datetime] = (True, datetime.now(UTC))
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        # One event per batch, so a commit wakes only the writers it made durable.
        self._pending_done = threading.Event()
        self._inflight_done = threading.Event()
        self._pending_callbacks: list[tuple[int, Callable[[str | None], Any]]] = []
        self._inflight_callbacks: list[tuple[int, Callable[[str | None], Any]]] = []
        self._taken_seq = 0
        self._closing = False
        #: ``on_commit(writes, seconds)`` after each commit (metrics); on the writer thread.
        self.on_commit: Callable[[int, float], Any] | None = None
        self._writer = threading.Thread(target=self._write_loop, name="storage-writer", daemon=True)
        self._writer.start()

    def _check_schema(self) -> None:
        """Record the schema of a new directory; upgrade an older one in place (records.py)."""
        with self._env.begin(write=True, db=self._dbs[META]) as txn:
            raw = txn.get(SCHEMA_KEY)
            if raw is None:
                txn.put(SCHEMA_KEY, pack(SCHEMA_VERSION))
                return
            version = unpack(raw)
            if version == SCHEMA_VERSION:
                return  # nothing to write: the preload still reads a file as it was found
            if version > SCHEMA_VERSION:
                txn.abort()
                self._env.close()
                self._lock_file.close()
                raise StorageError(
                    f"{self.path} was written by a newer floatkey (schema {version}; this one "
                    f"reads up to {SCHEMA_VERSION}). Upgrade floatkey or use another data directory."
                )
            while version < SCHEMA_VERSION:
                MIGRATIONS[version](txn, self._dbs)
                version += 1
                logger.warning("data directory %s upgraded to schema %d", self.path, version)
            txn.put(SCHEMA_KEY, pack(version))

    # Reading

    def get(self, db: str, key: bytes) -> Any:
        with self._env.begin(db=self._dbs[db]) as txn:
            raw = txn.get(key)
        return None if raw is None else unpack(raw)

    def items(self, db: str, prefix: bytes = b"") -> Iterator[tuple[bytes, Any]]:
        """Every record of ``db`` whose key starts with ``prefix``, in key order."""
        with self._env.begin(db=self._dbs[db]) as txn:
            cursor = txn.cursor()
            if not cursor.set_range(prefix):
                return
            # A start-up reads 1,000,000 seats through here: no test of the prefix when there
            # is none, and keys stay the bytes the cursor made (buffers=False).
            records = (
                cursor if not prefix else itertools.takewhile(lambda kv: kv[0].startswith(prefix), cursor)
            )
            for key, raw in records:
                try:
                    value = unpack(raw)
                except Exception as exc:  # msgpack raises ValueError, TypeError, ExtraData, ...
                    raise integrity.UndecodableValue() from exc
                yield key, value

    @contextmanager
    def snapshot(self) -> Iterator[tuple[lmdb.Transaction, Mapping[str, Any]]]:
        """A read transaction (one consistent view of every database) and the database handles."""
        with self._env.begin() as txn:
            yield txn, self._dbs

    # Writing

    def write(self, ops: list[Op], license_id: int | None = None) -> int:
        """Queue ``ops`` as one atomic change; returns the sequence number to wait for.

        ``license_id`` names the license whose memory the change comes from; its writes
        are refused while it is stale.
        """
        return self._queue_item(ops, license_id)

    def resynced(self, license_id: int) -> None:
        """The license has reloaded itself from disk: accept its writes queued from now on."""
        self._queue_item(None, license_id)

    def _queue_item(self, ops: list[Op] | None, license_id: int | None) -> int:
        with self._lock:
            if self._closing:
                raise StorageError("the storage is closed")
            self._queued_seq += 1
            self._queue.append((self._queued_seq, ops, license_id))
            if len(self._queue) == 1:
                self._work.notify()  # the writer waits only on an empty queue
            return self._queued_seq

    def map_used(self) -> float:
        """The share of ``mapSize`` the data file has grown to: a commit that needs more fails.

        A high-water mark: pages freed by deletions are reused, but do not lower it.
        """
        info = self._env.info()
        return (info["last_pgno"] + 1) * self._env.stat()["psize"] / info["map_size"]

    @property
    def writable(self) -> tuple[bool, datetime]:
        """Whether the latest commit succeeded (health), and since when that holds."""
        return self._writable

    @property
    def queued_seq(self) -> int:
        """Sequence number of the latest queued write."""
        return self._queued_seq

    def wait(self, seq: int, timeout: float | None = None) -> None:
        """Block until write ``seq`` (and all before it) is committed and synced."""
        with self._lock:
            if seq <= self._committed_seq:
                done = None
            elif seq <= self._taken_seq:
                done = self._inflight_done
            else:
                done = self._pending_done
        if done is not None and not done.wait(timeout):
            raise StorageError("the data directory did not commit in time")
        if seq in self._failed:
            raise StorageError(f"the change could not be stored: {self._failed[seq]}")

    def on_durable(self, seq: int, callback: Callable[[str | None], Any]) -> None:
        """Call ``callback(error)`` once write ``seq`` is committed (at once if it is).

        ``error`` is None, or why the write failed. The writer thread makes the call, so a
        callback must be quick and must not block.
        """
        with self._lock:
            if seq > self._taken_seq:
                self._pending_callbacks.append((seq, callback))
                return
            if seq > self._committed_seq:
                self._inflight_callbacks.append((seq, callback))
                return
        callback(self._failed.get(seq))

    def write_now(self, ops: list[Op], timeout: float | None = None) -> None:
        self.wait(self.write(ops), timeout)

    def _write_loop(self) -> None:
        while True:
            with self._lock:
                self._work.wait_for(lambda: self._queue or self._closing)
                batch, self._queue = self._queue, []
                if not batch and self._closing:
                    return
                done, self._pending_done = self._pending_done, threading.Event()
                callbacks, self._pending_callbacks = self._pending_callbacks, []
                self._inflight_done = done
                self._inflight_callbacks = callbacks
                self._taken_seq = batch[-1][0]
            started = time.perf_counter()
            failed = self._commit(batch)
            seconds = time.perf_counter() - started
            with self._lock:
                if failed:
                    self._remember(failed)
                self._committed_seq = self._taken_seq
                callbacks = self._inflight_callbacks
                self._inflight_callbacks = []
            done.set()
            for seq, callback in callbacks:
                try:
                    callback(failed.get(seq) if failed else None)
                except Exception:
                    logger.exception("a commit callback failed")
            if self.on_commit is not None:  # after the waiters are woken: off their path
                self._report_commit(len(batch), seconds)

    def _report_commit(self, writes: int, seconds: float) -> None:
        assert self.on_commit is not None
        try:
            self.on_commit(writes, seconds)
        except Exception:
            logger.exception("recording a commit failed")  # the writer must live on

    def _remember(self, failed: dict[int, str]) -> None:
        """Keep why writes failed. Past FAILED_KEPT the oldest are forgotten, down to half,
        but never those of this batch: its waiters have yet to look."""
        if len(self._failed) + len(failed) > FAILED_KEPT:
            for seq in list(itertools.islice(self._failed, max(0, len(self._failed) - FAILED_KEPT // 2))):
                del self._failed[seq]
        self._failed.update(failed)

    def _commit(self, batch: list[_Queued]) -> dict[int, str]:
        """Commit ``batch`` in one transaction, but for the writes of stale licenses and
        the writes that cannot be stored.

        Each write is encoded (msgpack, key sizes) before the transaction, so that a value
        that cannot be stored fails only its own write. If applying a write still fails on
        its own values, the transaction is dropped and the others are committed without it.
        Answers why each refused write failed, by sequence number.
        """
        failed: dict[int, str] = {}
        accepted: list[_Encoded] = []
        for seq, ops, license_id in batch:
            if ops is None:
                if license_id is not None:  # a ``resynced`` marker always names its license
                    self._stale.discard(license_id)
            elif license_id in self._stale:
                failed[seq] = STALE
            else:
                try:
                    accepted.append((seq, [self._encode(op) for op in ops], license_id))
                except Exception as exc:
                    self._refuse(seq, license_id, exc, failed)
        while accepted:
            applying: int | None = None
            try:
                with self._env.begin(write=True) as txn:
                    for index, (_, ready, _) in enumerate(accepted):
                        applying = index
                        for kind, db, key, value in ready:
                            self._apply(txn, kind, db, key, value)
                    applying = None
            except Exception as exc:
                if applying is not None and _values_at_fault(exc):
                    seq, _, license_id = accepted.pop(applying)
                    self._refuse(seq, license_id, exc, failed)
                    accepted = self._fence_later(accepted, applying, license_id, failed)
                    continue
                # Failing the commit itself is the disk's doing (an lmdb.Error) or a bug;
                # the writer must live on either way, or every waiter would hang.
                log = logger.error if isinstance(exc, lmdb.Error) else logger.exception
                log("storage write failed, %d changes refused: %s", len(accepted), exc)
                failed.update((seq, str(exc)) for seq, _, _ in accepted)
                self._stale.update(lid for _, _, lid in accepted if lid is not None)
                if self._writable[0]:
                    self._writable = (False, datetime.now(UTC))
                return failed
            break
        if accepted and not self._writable[0]:
            self._writable = (True, datetime.now(UTC))
            logger.info("storage writes succeed again")
        return failed

    def _encode(self, op: Op) -> _Ready:
        """``op`` with its database handle and its value packed, or why it cannot be stored."""
        kind, db, key, value = op
        if kind not in ("put", "delete", "delete_prefix"):
            raise ValueError(f"unknown storage operation {kind!r}")
        if not isinstance(key, bytes):
            raise TypeError(f"a storage key must be bytes, not {type(key).__name__}")
        limit = self._env.max_key_size()
        if len(key) > limit or (not key and kind != "delete_prefix"):
            raise ValueError(
                f"a key of {len(key)} bytes is outside LMDB's limits of 1 to {limit} bytes (MDB_BAD_VALSIZE)"
            )
        return kind, self._dbs[db], key, pack(value) if kind == "put" else None

    def _refuse(self, seq: int, license_id: int | None, exc: Exception, failed: dict[int, str]) -> None:
        """Fail one write that cannot be stored; its license's memory is now ahead of the disk."""
        known = isinstance(exc, (ValueError, TypeError, OverflowError, lmdb.Error))
        logger.error(
            "storage write refused, 1 change that cannot be stored: %s: %s",
            type(exc).__name__,
            exc,
            exc_info=not known,  # anything else is a bug: keep its traceback
        )
        failed[seq] = f"{type(exc).__name__}: {exc}"
        if license_id is not None:
            self._stale.add(license_id)

    @staticmethod
    def _fence_later(
        accepted: list[_Encoded], after: int, license_id: int | None, failed: dict[int, str]
    ) -> list[_Encoded]:
        """Refuse the writes of a license queued after its refused one: they were computed
        on the memory that write left ahead of the disk."""
        if license_id is None:
            return accepted
        kept = accepted[:after]
        for item in accepted[after:]:
            if item[2] == license_id:
                failed[item[0]] = STALE
            else:
                kept.append(item)
        return kept

    @staticmethod
    def _apply(txn: lmdb.Transaction, kind: str, db: Any, key: bytes, value: Any) -> None:
        if kind == "put":
            txn.put(key, value, db=db)
        elif kind == "delete":
            txn.delete(key, db=db)
        elif kind == "delete_prefix":
            cursor = txn.cursor(db=db)
            if cursor.set_range(key):
                while bytes(cursor.key()).startswith(key):
                    if not cursor.delete():
                        break
        else:
            raise ValueError(f"unknown storage operation {kind!r}")

    # Shutting down

    def close(self) -> None:
        """Commit what is queued, stop the writer and close the environment."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
            self._work.notify()
        self._writer.join()
        self._env.sync(True)
        self._env.close()
        self._lock_file.close()


def _values_at_fault(exc: Exception) -> bool:
    """Whether a failure applying one write is that write's own doing, not the disk's."""
    return isinstance(exc, lmdb.BadValsizeError) or not isinstance(exc, lmdb.Error)


def _take_lock(path: Path) -> IO[str]:
    """Hold ``floatkey.lock`` so that no second process writes the same data directory."""
    handle = open(path / "floatkey.lock", "a+")  # noqa: SIM115 - held until close()
    os.chmod(handle.name, 0o600)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise StorageError(
            f"{path} is in use by another floatkey process; stop it, or talk to it over HTTP."
        ) from None
    return handle


def _make_private_dir(path: Path) -> None:
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path, 0o700)
    except OSError as exc:
        raise StorageError(f"{path}: cannot create the data directory: {exc.strerror}") from None
