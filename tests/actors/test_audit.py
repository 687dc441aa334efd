"""AuditActor on a real LMDB directory: one writer, durable appends, pruning with a checkpoint."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from floatkey.actors.audit import AuditActor, audit_proxy
from floatkey.audit import trail
from floatkey.audit.chain import Link
from floatkey.errors import StorageError
from floatkey.storage import Storage, records


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def append(proxy, n: int, clock: Clock, step: timedelta = timedelta(hours=12)) -> None:
    for i in range(n):
        proxy.append("license_added", "root", "cli", "ok", {"i": i}).get(timeout=10)
        clock.now += step


def test_appends_chain_across_restarts_and_verify(tmp_path: Path):
    clock = Clock()
    storage = Storage(tmp_path)
    try:
        for _ in range(2):
            ref = AuditActor.start(storage, 0, clock)
            append(audit_proxy(ref), 3, clock)
            ref.stop()
        with storage.snapshot() as (txn, dbs):
            verdict = trail.check(txn, dbs)
            assert verdict.ok and verdict.records == 6 and trail.head(txn, dbs) == verdict.head
    finally:
        storage.close()


def test_pruning_keeps_the_chain_verifiable_from_a_checkpoint(tmp_path: Path):
    clock = Clock()
    storage = Storage(tmp_path)
    try:
        ref = AuditActor.start(storage, 0, clock)
        append(audit_proxy(ref), 10, clock)  # five days, two records a day
        ref.stop()
        ref = AuditActor.start(storage, 2, clock)  # keep two days: prunes at start
        audit_proxy(ref).head().get(timeout=10)
        ref.stop()
        with storage.snapshot() as (txn, dbs):
            kept = [r for _, r in trail.entries(txn, dbs)]
            checkpoint = trail.checkpoint(txn, dbs)
            verdict = trail.check(txn, dbs)
        assert verdict.ok, verdict.describe()
        assert kept[0]["seq"] == checkpoint.seq + 1 == 7
        assert kept[-1]["kind"] == "audit_pruned" and kept[-1]["details"]["through_seq"] == 6
        assert kept[-1]["details"]["through_hash"] == checkpoint.hash == kept[0]["prev"]
    finally:
        storage.close()


def test_a_failed_write_reloads_the_head_and_the_chain_stays_whole(tmp_path: Path, monkeypatch):
    clock = Clock()
    storage = Storage(tmp_path)
    try:
        ref = AuditActor.start(storage, 0, clock)
        proxy = audit_proxy(ref)
        append(proxy, 2, clock)
        real = storage.write_now

        def refuse(ops, timeout=None):
            raise StorageError("the change could not be stored: disk full")

        monkeypatch.setattr(storage, "write_now", refuse)
        with pytest.raises(StorageError):
            proxy.append("user_added", "root", "cli", "ok", {}).get(timeout=10)
        monkeypatch.setattr(storage, "write_now", real)
        append(proxy, 1, clock)
        ref.stop()
        with storage.snapshot() as (txn, dbs):
            verdict = trail.check(txn, dbs)
        assert verdict.ok and verdict.head.seq == 3
        assert Link.from_dict(storage.get(records.META, records.AUDIT_HEAD)) == verdict.head
    finally:
        storage.close()
