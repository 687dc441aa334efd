import os
import queue
import stat
import subprocess
import sys
import threading
from datetime import UTC, datetime

import lmdb
import pytest

from floatkey.errors import StorageError
from floatkey.storage import SCHEMA_VERSION, Storage, environment
from floatkey.storage.codec import pack, unpack


def test_datetimes_round_trip_exactly():
    value = {"at": datetime(2026, 3, 2, 12, 0, 0, 123456, tzinfo=UTC), "n": 2**62, "s": "ü"}
    assert unpack(pack(value)) == value


def test_data_directory_is_owner_only(tmp_path):
    storage = Storage(tmp_path / "data")
    try:
        assert stat.S_IMODE(os.stat(tmp_path / "data").st_mode) == 0o700
    finally:
        storage.close()


def test_writes_survive_reopening(tmp_path):
    storage = Storage(tmp_path / "d")
    storage.write_now([("put", "seats", b"k1", {"a": 1}), ("put", "seats", b"k2", {"a": 2})])
    storage.write_now([("delete", "seats", b"k1", None)])
    storage.close()
    storage = Storage(tmp_path / "d")
    try:
        assert list(storage.items("seats")) == [(b"k2", {"a": 2})]
    finally:
        storage.close()


def test_delete_prefix_removes_only_that_range(tmp_path):
    storage = Storage(tmp_path / "d")
    try:
        storage.write_now([("put", "seats", k, 1) for k in (b"a1", b"a2", b"b1")])
        storage.write_now([("delete_prefix", "seats", b"a", None)])
        assert [k for k, _ in storage.items("seats")] == [b"b1"]
    finally:
        storage.close()


def test_concurrent_writers_are_all_committed_in_order(tmp_path):
    storage = Storage(tmp_path / "d")
    seqs = []

    def writer(i):
        seq = storage.write([("put", "seats", f"{i:04d}".encode(), i)])
        storage.wait(seq, 10)
        seqs.append(seq)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert len(list(storage.items("seats"))) == 100
        assert sorted(seqs) == list(range(1, 101))
    finally:
        storage.close()


def test_a_second_process_cannot_open_the_same_directory(tmp_path):
    storage = Storage(tmp_path / "d")
    try:
        with pytest.raises(StorageError, match="in use by another floatkey process"):
            Storage(tmp_path / "d")
    finally:
        storage.close()


def test_newer_schema_is_refused(tmp_path):
    Storage(tmp_path / "d").close()
    env = lmdb.open(str(tmp_path / "d"), max_dbs=8)
    with env.begin(write=True, db=env.open_db(b"meta")) as txn:
        txn.put(b"schema_version", pack(SCHEMA_VERSION + 1))
    env.close()
    with pytest.raises(StorageError, match="newer floatkey"):
        Storage(tmp_path / "d")
    # The refusal released the directory: the old schema can be restored and opened.
    env = lmdb.open(str(tmp_path / "d"), max_dbs=8)
    with env.begin(write=True, db=env.open_db(b"meta")) as txn:
        txn.put(b"schema_version", pack(SCHEMA_VERSION))
    env.close()
    Storage(tmp_path / "d").close()


def test_a_failed_write_is_reported_to_its_waiter(tmp_path):
    storage = Storage(tmp_path / "d", map_size=1 << 20)
    try:
        seq = storage.write([("put", "seats", b"big", b"x" * (4 << 20))])
        with pytest.raises(StorageError, match="could not be stored"):
            storage.wait(seq, 10)
        storage.write_now([("put", "seats", b"small", 1)])
        assert storage.get("seats", b"small") == 1
    finally:
        storage.close()


#: LMDB refuses keys over 511 bytes: a real failed commit.
TOO_LONG = b"k" * 600


def test_a_failed_license_write_fences_the_license_until_it_resyncs(tmp_path):
    storage = Storage(tmp_path / "d")
    try:
        failed = storage.write([("put", "seats", TOO_LONG, 1)], license_id=7)
        why: queue.Queue = queue.Queue()
        storage.on_durable(failed, why.put)
        with pytest.raises(StorageError, match="could not be stored"):
            storage.wait(failed, 10)
        assert "MDB_BAD_VALSIZE" in why.get(timeout=10)
        answers: queue.Queue = queue.Queue()
        fenced = storage.write([("put", "seats", b"7a", 1)], license_id=7)
        storage.on_durable(fenced, answers.put)
        other = storage.write([("put", "seats", b"8a", 1)], license_id=8)
        storage.on_durable(other, answers.put)
        with pytest.raises(StorageError, match="reloaded from disk"):
            storage.wait(fenced, 10)
        storage.wait(other, 10)
        assert "reloaded from disk" in answers.get(timeout=10)
        assert answers.get(timeout=10) is None
        storage.resynced(7)
        storage.write_now([("put", "seats", b"7b", 2)], 10)
        assert (storage.get("seats", b"7a"), storage.get("seats", b"7b"), storage.get("seats", b"8a")) == (
            None,
            2,
            1,
        )
    finally:
        storage.close()


def test_the_writer_outlives_a_write_that_is_a_bug(tmp_path):
    storage = Storage(tmp_path / "d")
    try:
        for ops in ([("put", "seats", b"k", object())], [("explode", "seats", b"k", None)]):
            with pytest.raises(StorageError, match="could not be stored"):
                storage.wait(storage.write(ops), 10)
        storage.write_now([("put", "seats", b"k", 1)], 10)
        assert storage.get("seats", b"k") == 1
    finally:
        storage.close()


def test_failed_writes_are_remembered_within_a_bound(tmp_path, monkeypatch):
    monkeypatch.setattr(environment, "FAILED_KEPT", 10)
    storage = Storage(tmp_path / "d")
    try:
        for i in range(25):
            with pytest.raises(StorageError):
                storage.wait(storage.write([("put", "users", TOO_LONG, i)]), 10)
        assert len(storage._failed) <= 10
    finally:
        storage.close()


def test_writes_of_no_license_are_never_fenced(tmp_path):
    storage = Storage(tmp_path / "d")
    try:
        with pytest.raises(StorageError):
            storage.wait(storage.write([("put", "users", TOO_LONG, 1)]), 10)
        storage.write_now([("put", "users", b"u", 1)], 10)
        assert storage.get("users", b"u") == 1
    finally:
        storage.close()


def backup_command(source, destination):
    return subprocess.run(
        [sys.executable, "-m", "floatkey", "backup", "--data-dir", str(source), str(destination)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_backup_copies_an_environment_another_process_has_open(tmp_path):
    storage = Storage(tmp_path / "d")
    try:
        storage.write_now([("put", "seats", b"k", "v")])
        (tmp_path / "d" / "refused-pins.json").write_text('{"1001": "x"}')
        done = backup_command(tmp_path / "d", tmp_path / "copy")
        assert done.returncode == 0, done.stderr
    finally:
        storage.close()
    copy = Storage(tmp_path / "copy")
    try:
        assert copy.get("seats", b"k") == "v"
    finally:
        copy.close()
    assert (tmp_path / "copy" / "refused-pins.json").read_text() == '{"1001": "x"}'
    assert (tmp_path / "copy" / "refused-pins.json").stat().st_mode & 0o777 == 0o600
    refused = backup_command(tmp_path / "d", tmp_path / "copy")
    assert refused.returncode == 2 and "not empty" in refused.stderr


def hold_the_writer(storage):
    """Keep the writer thread busy until the returned event is set, so that every write
    queued meanwhile lands in one batch (one transaction)."""
    entered, release = threading.Event(), threading.Event()

    def block(_error):
        entered.set()
        release.wait(10)

    storage.on_durable(storage.write([("put", "meta", b"hold", 1)]), block)
    assert entered.wait(10)
    return release


def test_a_write_that_cannot_be_stored_fails_alone_in_its_batch(tmp_path):
    storage = Storage(tmp_path / "d")
    try:
        release = hold_the_writer(storage)
        good = storage.write([("put", "seats", b"a", 1)], license_id=1)
        huge = storage.write([("put", "seats", b"b", {"n": 10**100})], license_id=2)
        after_huge = storage.write([("put", "seats", b"b2", 1)], license_id=2)
        long_key = storage.write([("put", "seats", TOO_LONG, 1)], license_id=3)
        unencodable = storage.write([("put", "seats", b"c", "\ud800")])
        also_good = storage.write([("put", "seats", b"d", 2)], license_id=4)
        release.set()
        storage.wait(good, 10)
        storage.wait(also_good, 10)
        for seq, why in (
            (huge, "OverflowError"),
            (after_huge, "reloaded from disk"),
            (long_key, "MDB_BAD_VALSIZE"),
            (unencodable, "UnicodeEncodeError"),
        ):
            with pytest.raises(StorageError, match=why):
                storage.wait(seq, 10)
        assert [k for k, _ in storage.items("seats")] == [b"a", b"d"]
        assert storage.writable[0] is True
        # Only the license whose write was refused is fenced until it resyncs.
        storage.write_now([("put", "seats", b"e", 3)], 10)
        with pytest.raises(StorageError, match="reloaded from disk"):
            storage.wait(storage.write([("put", "seats", b"f", 3)], license_id=2), 10)
    finally:
        storage.close()


def test_a_write_that_fails_inside_the_transaction_is_dropped_and_the_rest_commit(tmp_path, monkeypatch):
    apply = Storage._apply

    def poisoned(txn, kind, db, key, value):
        if key == b"poison":
            raise lmdb.BadValsizeError("mdb_put: MDB_BAD_VALSIZE: injected")
        apply(txn, kind, db, key, value)

    monkeypatch.setattr(Storage, "_apply", staticmethod(poisoned))
    storage = Storage(tmp_path / "d")
    try:
        release = hold_the_writer(storage)
        before = storage.write([("put", "seats", b"a", 1)], license_id=1)
        bad = storage.write([("put", "seats", b"b", 1), ("put", "seats", b"poison", 1)], license_id=2)
        after = storage.write([("put", "seats", b"c", 1)], license_id=3)
        release.set()
        storage.wait(before, 10)
        storage.wait(after, 10)
        with pytest.raises(StorageError, match="injected"):
            storage.wait(bad, 10)
        # The refused write left nothing behind, not even its first operation.
        assert [k for k, _ in storage.items("seats")] == [b"a", b"c"]
        assert storage.writable[0] is True
    finally:
        storage.close()


def test_each_commit_is_reported_with_its_size_and_time(tmp_path, caplog):
    """What metrics count (batch size, commit time), reported off the waiters' path."""
    storage = Storage(tmp_path / "d")
    commits: queue.Queue[tuple[int, float]] = queue.Queue()
    storage.on_commit = lambda writes, seconds: commits.put((writes, seconds))
    try:
        seqs = [storage.write([("put", "seats", b"k%d" % i, i)]) for i in range(3)]
        storage.wait(seqs[-1], 10)
        reported = []
        while sum(w for w, _ in reported) < 3:
            reported.append(commits.get(timeout=10))
        assert all(w >= 1 and s > 0 for w, s in reported)
        assert sum(w for w, _ in reported) == 3

        def broken(writes, seconds):
            raise RuntimeError("observer bug")

        storage.on_commit = broken
        storage.write_now([("put", "seats", b"after", 1)], 10)
        storage.write_now([("put", "seats", b"again", 2)], 10)  # the writer lives on
        assert storage.get("seats", b"again") == 2
        assert "recording a commit failed" in caplog.text
    finally:
        storage.close()
