"""Reading the audit trail out of LMDB: the running server's, or a data directory's read-only.

LMDB lets readers work beside the one writer, so ``floatkey audit export`` and ``verify``
open the data directory read-only and work whether a server runs on it or not. One read
transaction is one consistent view: the chain, its head and its checkpoint agree.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import lmdb

from floatkey import inputs
from floatkey.audit.chain import Link, Verdict, in_window, verify
from floatkey.errors import FloatkeyError, StorageError
from floatkey.storage import records
from floatkey.storage.codec import unpack
from floatkey.timeutil import parse_time


def entries(txn: lmdb.Transaction, dbs: Mapping[str, Any]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Every audit record as ``(key seq, record)``, in key order."""
    if dbs.get(records.AUDIT) is None:
        return
    for key, raw in txn.cursor(db=dbs[records.AUDIT]):
        yield records.audit_seq_of(bytes(key)), unpack(bytes(raw))


def head(txn: lmdb.Transaction, dbs: Mapping[str, Any]) -> Link | None:
    raw = txn.get(records.AUDIT_HEAD, db=dbs[records.META])
    return None if raw is None else Link.from_dict(unpack(bytes(raw)))


def checkpoint(txn: lmdb.Transaction, dbs: Mapping[str, Any]) -> Link:
    raw = txn.get(records.AUDIT_CHECKPOINT, db=dbs[records.META])
    return Link.from_dict(None if raw is None else unpack(bytes(raw)))


def select(
    txn: lmdb.Transaction,
    dbs: Mapping[str, Any],
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """The records within ``[start, end]`` in order, at most ``limit``; and whether more matched."""
    found: list[dict[str, Any]] = []
    for _, record in entries(txn, dbs):
        if in_window(record, start, end):
            if limit is not None and len(found) >= limit:
                return found, True
            found.append(record)
    return found, False


def check(txn: lmdb.Transaction, dbs: Mapping[str, Any]) -> Verdict:
    """Walk the whole chain from its checkpoint to its head."""
    return verify(entries(txn, dbs), checkpoint(txn, dbs), head(txn, dbs))


@contextmanager
def read_only(data_dir: Path) -> Iterator[tuple[lmdb.Transaction, dict[str, Any]]]:
    """A read transaction on ``data_dir``'s LMDB environment, without taking the writer's lock."""
    if not (Path(data_dir) / "data.mdb").is_file():
        raise StorageError(f"{data_dir} holds no floatkey data (no data.mdb); name the data directory.")
    try:
        env = lmdb.open(
            str(data_dir), readonly=True, lock=True, max_dbs=len(records.DATABASES) + 1, subdir=True
        )
    except lmdb.Error as exc:
        raise StorageError(f"{data_dir}: cannot open the data directory to read: {exc}") from None
    try:
        with env.begin() as txn:
            dbs: dict[str, Any] = {}
            for name in (records.META, records.AUDIT):
                try:
                    dbs[name] = env.open_db(name.encode(), txn=txn, create=False)
                except lmdb.NotFoundError:
                    dbs[name] = None
            if dbs[records.META] is None:
                raise StorageError(f"{data_dir} is not a floatkey data directory (no meta database).")
            yield txn, dbs
    finally:
        env.close()


def window(query: dict[str, Any]) -> tuple[datetime | None, datetime | None]:
    """``from`` and ``to`` of a query: RFC 3339 times, both optional, ``from`` not after ``to``."""
    for name in query:
        if name not in ("from", "to"):
            raise FloatkeyError("validation_error", f"Unknown query parameter {name!r}: use from and to.")
    start = parse_time(inputs.text(query, "from", max_length=64), "from")
    end = parse_time(inputs.text(query, "to", max_length=64), "to")
    if start is not None and end is not None and start > end:
        raise FloatkeyError("validation_error", "from must not be later than to.")
    return start, end
