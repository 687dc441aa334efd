"""AuditActor: the one writer of the audit trail's hash chain.

Every record links to the one before it, so appends must happen one at a time in one
place: this actor's mailbox. ``append`` builds the next record from the head it holds,
queues it with the new head in one storage write, and returns once that write is synced,
so a caller that answers after recording never acknowledges an action whose record could
still be lost. If the write fails, the head is reloaded from disk (the record was not
stored) and the error goes back to the caller.

It also follows the hardware keys (a ``HardwareKeyListener``) and prunes records older than
``audit.retentionDays`` at start-up and at most once a day, leaving a checkpoint (seq and
hash of the last record pruned) that verification starts from, and an ``audit_pruned``
record in the chain that names the same checkpoint.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, cast

import pykka
from pykka.typing import ActorMemberMixin, proxy_method

from floatkey.audit import events
from floatkey.audit.chain import Link, make_record
from floatkey.audit.origin import SYSTEM
from floatkey.audit.trail import entries
from floatkey.errors import overloaded
from floatkey.hardware.listener import HardwareKeyListener
from floatkey.storage import Storage, records
from floatkey.timeutil import format_time, utcnow

logger = logging.getLogger(__name__)

PRUNE_EVERY = timedelta(days=1)
#: Records deleted per storage write while pruning, so one prune never makes a huge transaction.
PRUNE_BATCH = 10_000


class AuditActor(pykka.ThreadingActor, HardwareKeyListener):
    def __init__(
        self,
        storage: Storage,
        retention_days: int = 0,
        clock: Callable[[], datetime] = utcnow,
        timeout: float | None = None,
    ) -> None:
        super().__init__()
        self._storage = storage
        self._retention = timedelta(days=retention_days) if retention_days > 0 else None
        self._clock = clock
        self._timeout = timeout
        self._head = Link()
        self._pruned_at: datetime | None = None

    def on_start(self) -> None:
        self._head = self._stored_head()
        self._prune_if_due()

    def append(
        self, kind: str, actor: str, route: str, outcome: str, details: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Append one record; durable when this returns (StorageError if it cannot be)."""
        record = self._append(kind, actor, route, outcome, details)
        self._prune_if_due()
        return record

    def head(self) -> dict[str, Any]:
        return self._head.as_dict()

    # Hardware keys (events from the HardwareKeyActor)

    def key_connected(self, serial: str, reader: str) -> None:
        self._system(events.KEY_CONNECTED, serial=serial, reader=reader)

    def key_disconnected(self, serial: str, reader: str) -> None:
        self._system(events.KEY_LOST, serial=serial, reader=reader)

    def key_invalid(self, serial: str | None, reader: str, reason: str | None) -> None:
        self._system(events.KEY_INVALID, serial=serial, reader=reader, reason=reason)

    # Plumbing

    def _system(self, kind: str, **details: Any) -> None:
        self._append(kind, SYSTEM.actor, SYSTEM.route, events.OK, details)

    def _append(
        self, kind: str, actor: str, route: str, outcome: str, details: Mapping[str, Any]
    ) -> dict[str, Any]:
        record = make_record(self._head, self._clock(), kind, actor, route, outcome, details)
        head = Link(record["seq"], record["hash"])
        ops: list[Any] = [
            ("put", records.AUDIT, records.audit_key(head.seq), record),
            ("put", records.META, records.AUDIT_HEAD, head.as_dict()),
        ]
        try:
            self._storage.write_now(ops, self._timeout)
        except Exception:
            # The record may or may not have reached the disk (a timeout): believe the disk.
            self._head = self._stored_head()
            logger.error("audit record %s (%s) could not be stored", head.seq, kind)
            raise
        self._head = head
        return record

    def _stored_head(self) -> Link:
        raw = self._storage.get(records.META, records.AUDIT_HEAD)
        return Link.from_dict(raw)

    def _prune_if_due(self) -> None:
        if self._retention is None:
            return
        now = self._clock()
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = now
        try:
            self._prune(now - self._retention)
        except Exception:
            logger.exception("pruning the audit trail failed; it is retried in a day")

    def _prune(self, cutoff: datetime) -> None:
        """Delete the records older than ``cutoff`` from the start of the chain, oldest first."""
        cut_text = format_time(cutoff)
        assert cut_text is not None
        doomed: list[Link] = []
        with self._storage.snapshot() as (txn, dbs):
            for seq, record in entries(txn, dbs):
                # Records are in time order but for a clock set back: pruning stops at the
                # first record inside the retention window, so the chain stays one piece.
                if seq >= self._head.seq or not str(record.get("at", "")) < cut_text:
                    break
                doomed.append(Link(seq, record["hash"]))
        if not doomed:
            return
        for start in range(0, len(doomed), PRUNE_BATCH):
            batch = doomed[start : start + PRUNE_BATCH]
            # Each write moves the checkpoint with the records it deletes: the chain verifies
            # after every one of them, should the process stop half-way.
            ops: list[Any] = [("delete", records.AUDIT, records.audit_key(link.seq), None) for link in batch]
            ops.append(("put", records.META, records.AUDIT_CHECKPOINT, batch[-1].as_dict()))
            self._storage.write_now(ops, self._timeout)
        last = doomed[-1]
        logger.info("audit trail: %d records older than %s pruned", len(doomed), cut_text)
        self._system(events.AUDIT_PRUNED, through_seq=last.seq, through_hash=last.hash, before=cut_text)


class AuditProxy(ActorMemberMixin, pykka.ActorProxy[AuditActor]):
    append = proxy_method(AuditActor.append)
    head = proxy_method(AuditActor.head)


def audit_proxy(ref: pykka.ActorRef[AuditActor]) -> AuditProxy:
    return cast(AuditProxy, ref.proxy())


class ActorAppender:
    """``events.Appender`` over the actor: asks it, and waits as long as a commit may take."""

    def __init__(self, proxy: AuditProxy, timeout: float) -> None:
        self._proxy = proxy
        self._timeout = timeout

    def append(
        self, kind: str, actor: str, route: str, outcome: str, details: Mapping[str, Any]
    ) -> dict[str, Any]:
        try:
            return self._proxy.append(kind, actor, route, outcome, dict(details)).get(timeout=self._timeout)
        except pykka.Timeout:
            raise overloaded() from None
