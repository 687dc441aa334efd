"""Refusing a damaged data file before LMDB maps it, and reading it through once open.

LMDB trusts its file. Opened on a ``data.mdb`` of zero bytes it writes a new, empty
environment over it (every license gone, silently); on a truncated file it maps pages
that are not there and the process dies of SIGBUS at the first read; garbage in its pages
surfaces as errors deep in whatever reads them first. So before the environment is
opened, :func:`check_data_file` reads LMDB's two meta pages itself (the layout of
``MDB_page`` and ``MDB_meta`` in lmdb's mdb.c, 64-bit) and compares the file's size with
the last page they say is in use; once it is open, every record of every named database
is read and decoded once, which catches damaged pages and undecodable values: the
databases the server loads whole at start (licenses and seats) by that load itself
(:func:`reading`), the others by :func:`read_through`. Decoding 1,000,000 seats twice,
once to check and once to load, was a fifth of a restart (docs/benchmarks.md).

Neither writes anything: a damaged file is left exactly as it was found, for the
operator to restore over (docs/operations.md, "Restore").
"""

from __future__ import annotations

import os
import struct
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

import lmdb

from floatkey.errors import StorageError
from floatkey.storage.codec import unpack

DATA_FILE = "data.mdb"

#: MDB_page header: page number (8), pad (2), flags (2), lower/upper (4); PAGEHDRSZ = 16.
_PAGE_HEADER = struct.Struct("<QHH4x")
#: MDB_meta after the page header: magic, version, address, mapsize, then two MDB_db of
#: 48 bytes (the first one's md_pad is the page size), mm_last_pg, mm_txnid.
_META = struct.Struct("<IIQQ" + "I2H5Q" + "48x" + "QQ")
_P_META = 0x08
_MAGIC = 0xBEEFC0DE
_DATA_VERSION = 1
_MIN_PAGE = 512
_MAX_PAGE = 65536

RESTORE_HINT = (
    "floatkey left it untouched and will not start on it. Restore the latest backup "
    "(docs/operations.md, section Restore: stop, move this directory aside, copy the "
    "backup folder into place, start)."
)


class DamagedDataError(StorageError):
    """The data file holds data that cannot be read back whole: restore a backup."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(f"{path} is damaged: {why}. {RESTORE_HINT}")
        self.path = path


def check_data_file(directory: Path) -> None:
    """Refuse a ``data.mdb`` that LMDB would overwrite or read past its end.

    A directory without ``data.mdb`` is a new one and passes. A ``data.mdb`` of zero
    bytes is damaged: LMDB writes its first pages the moment it creates the file, so an
    empty one lost what it held (a first start cut short in that instant looks the same,
    and the message says how to start afresh).
    """
    path = Path(directory) / DATA_FILE
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            first = handle.read(_PAGE_HEADER.size + _META.size)
            if size == 0:
                raise DamagedDataError(
                    path,
                    "it is empty (0 bytes), so whatever it held is lost (if this directory never "
                    "held data, a first start was cut short: delete data.mdb to start afresh)",
                )
            meta0 = _meta(path, first, 0, size)
            psize = meta0["psize"]
            handle.seek(psize)
            meta1 = _meta(path, handle.read(psize), 1, size)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StorageError(f"{path}: cannot read the data file: {exc.strerror}") from None
    current = max((meta0, meta1), key=lambda m: m["txnid"])
    needed = (current["last_pg"] + 1) * psize
    if size < needed:
        raise DamagedDataError(
            path,
            f"it is {size} bytes long, but its header says its data runs to {needed} bytes "
            f"(page {current['last_pg']} of {psize} bytes): it was truncated",
        )


def _meta(path: Path, page: bytes, index: int, size: int) -> dict[str, int]:
    """One meta page (page ``index``), checked the way LMDB checks it before trusting it."""
    if len(page) < _PAGE_HEADER.size + _META.size:
        raise DamagedDataError(
            path, f"it is {size} bytes long, too short to hold LMDB's two header pages: it was truncated"
        )
    _, _, flags = _PAGE_HEADER.unpack_from(page)
    magic, version, _, _, psize, *_, last_pg, txnid = _META.unpack_from(page, _PAGE_HEADER.size)
    if not flags & _P_META or magic != _MAGIC:
        raise DamagedDataError(path, f"its header page {index} is not an LMDB meta page")
    if version != _DATA_VERSION:
        raise DamagedDataError(path, f"its header page {index} has LMDB data version {version}, not 1")
    if index == 0 and not (_MIN_PAGE <= psize <= _MAX_PAGE and psize & (psize - 1) == 0):
        raise DamagedDataError(path, f"its header gives an impossible page size ({psize} bytes)")
    return {"psize": psize, "last_pg": last_pg, "txnid": txnid}


def read_through(env: lmdb.Environment, directory: Path, skip: Collection[str] = ()) -> int:
    """Read and decode every record of every named database but ``skip``; answers how many.

    Runs in a read transaction: it changes nothing, and is the check that the file reads
    back whole before anything is written to it. ``skip`` names the databases a load reads
    whole under :func:`reading` before the first write, which checks them as it goes.
    """
    records = 0
    skipped = {name.encode() for name in skip}
    with reading(directory), env.begin() as txn:
        names = [bytes(name) for name, _ in txn.cursor()]
        for name in names:
            if name in skipped:
                continue
            db = env.open_db(name, txn=txn, create=False)
            for _, raw in txn.cursor(db=db):
                try:
                    unpack(raw)
                except Exception as exc:  # msgpack raises ValueError, TypeError, ExtraData, ...
                    raise UndecodableValue() from exc
                records += 1
    return records


class UndecodableValue(Exception):
    """A stored value msgpack cannot decode (its cause says why); :func:`reading` turns it
    into a DamagedDataError."""


@contextmanager
def reading(directory: Path) -> Iterator[None]:
    """Reads of the data file in this block that fail on its contents are its damage.

    LMDB's errors (damaged pages) and :class:`UndecodableValue` become a
    :class:`DamagedDataError` that says how to restore; any other error passes as it is.
    """
    path = Path(directory) / DATA_FILE
    try:
        yield
    except lmdb.Error as exc:
        raise DamagedDataError(path, f"LMDB cannot read it through ({exc})") from None
    except UndecodableValue as exc:
        raise DamagedDataError(path, f"a stored value cannot be decoded ({exc.__cause__})") from None
