"""A damaged data directory stops the start with a message and is left as it was found."""

import random
import struct
import subprocess
import sys
from pathlib import Path

import lmdb
import pytest

from floatkey import Floatkey, Settings
from floatkey.storage import Storage, records
from floatkey.storage.environment import Preload
from floatkey.storage.integrity import DamagedDataError, read_through


def filled(directory: Path) -> Path:
    """A data directory that holds licenses and seats, over several pages; its data.mdb."""
    with Floatkey(Settings(data_dir=directory), hardware_keys=False) as fk:
        for i in range(20):
            fk.add_license({"product": f"p{i}", "floating_users": 50, "metadata": {"note": "x" * 200}})
            for u in range(30):
                fk.register(f"p{i}", f"user{u}")
    return directory / "data.mdb"


def empty(path: Path) -> None:
    path.write_bytes(b"")


def cut_in_half(path: Path) -> None:
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size // 2)


def garbage_after_the_header(path: Path) -> None:
    """Random bytes over every page but LMDB's two meta pages."""
    data = bytearray(path.read_bytes())
    rng = random.Random(7)
    data[2 * 4096 :] = bytes(rng.randrange(256) for _ in range(len(data) - 2 * 4096))
    path.write_bytes(bytes(data))


def garbled_header(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[:4096] = random.Random(3).randbytes(4096)
    path.write_bytes(bytes(data))


DAMAGES = {
    "empty": (empty, "empty (0 bytes)"),
    "garbled header": (garbled_header, "is not an LMDB meta page"),
    "truncated": (cut_in_half, "it was truncated"),
    "garbage": (garbage_after_the_header, "LMDB cannot read it through"),
}


@pytest.fixture(scope="module")
def intact(tmp_path_factory) -> Path:
    return filled(tmp_path_factory.mktemp("intact") / "data")


def damaged_copy(intact: Path, tmp_path: Path, damage: str, damages: dict = DAMAGES) -> Path:
    directory = tmp_path / "data"
    directory.mkdir(mode=0o700)
    path = directory / "data.mdb"
    path.write_bytes(intact.read_bytes())
    damages[damage][0](path)
    return path


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_data_file_is_refused_and_left_untouched(intact, tmp_path, damage):
    path = damaged_copy(intact, tmp_path, damage)
    before = path.read_bytes()
    with pytest.raises(DamagedDataError) as refused:
        Storage(path.parent)
    message = str(refused.value)
    assert str(path) in message and DAMAGES[damage][1] in message
    assert "Restore" in message and "docs/operations.md" in message
    assert path.read_bytes() == before
    # The refusal let go of the directory: the restored file opens in the same process.
    path.write_bytes(intact.read_bytes())
    Storage(path.parent).close()


def test_an_undecodable_value_is_damage(tmp_path):
    Storage(tmp_path / "d").close()
    env = lmdb.open(str(tmp_path / "d"), max_dbs=8)
    with env.begin(write=True, db=env.open_db(b"seats")) as txn:
        txn.put(b"k", b"\xc1")  # a byte msgpack never uses
    env.close()
    before = (tmp_path / "d" / "data.mdb").read_bytes()
    with pytest.raises(DamagedDataError, match="a stored value cannot be decoded"):
        Storage(tmp_path / "d")
    assert (tmp_path / "d" / "data.mdb").read_bytes() == before


def put_raw(directory: Path, db: bytes, key: bytes, raw: bytes) -> None:
    """Write ``raw`` as it is, past floatkey's encoding (what a damaged disk could hold)."""
    env = lmdb.open(str(directory), max_dbs=16)
    with env.begin(write=True, db=env.open_db(db)) as txn:
        txn.put(key, raw)
    env.close()


def undecodable_seat(path: Path) -> None:
    put_raw(path.parent, b"seats", records.seat_key(1, "user3"), b"\xc1")  # a byte msgpack never uses


def undecodable_license(path: Path) -> None:
    put_raw(path.parent, b"licenses", records.license_key(2), b"\xc1")


def damaged_seat_pages(path: Path) -> None:
    """Every leaf page of seats (the current ones and their old copies) gets a page type
    LMDB does not know: the seats database is damaged, every other is intact."""
    data = bytearray(path.read_bytes())
    size = 4096
    for start in range(2 * size, len(data), size):
        # MDB_page: pgno, pad, flags, lower, upper; then the nodes' offsets. A node: lo, hi,
        # flags, key size, key. Seat keys are a license id (8 bytes) and the user's name.
        _, _, flags, lower, _ = struct.unpack_from("<QHHHH", data, start)
        if flags != 0x02 or lower <= 16:  # P_LEAF with at least one node
            continue
        (node,) = struct.unpack_from("<H", data, start + 16)
        (key_size,) = struct.unpack_from("<H", data, start + node + 6)
        key = bytes(data[start + node + 8 : start + node + 8 + key_size])
        if len(key) > 12 and key[8:12] == b"user":
            struct.pack_into("<H", data, start + 10, 0)
    path.write_bytes(bytes(data))


#: Damage only inside the databases the server loads whole at start, which that load checks.
LOADED_DAMAGES = {
    "undecodable seat": (undecodable_seat, "a stored value cannot be decoded"),
    "undecodable license": (undecodable_license, "a stored value cannot be decoded"),
    "damaged seat pages": (damaged_seat_pages, "LMDB cannot read it through"),
}


@pytest.mark.parametrize("damage", sorted(LOADED_DAMAGES))
def test_the_load_of_licenses_and_seats_is_their_check(intact, tmp_path, damage):
    path = damaged_copy(intact, tmp_path, damage, LOADED_DAMAGES)
    before = path.read_bytes()
    # The read-through leaves the loaded databases to the load: it passes this file...
    storage = Storage(path.parent, preload=Preload(records.BOOK_DATABASES, lambda storage: None))
    try:
        assert read_through(storage._env, path.parent, skip=records.BOOK_DATABASES) > 0
    finally:
        storage.close()
    assert path.read_bytes() == before
    # ...and the load refuses it, before anything is written, with the check's message.
    with pytest.raises(DamagedDataError) as refused:
        Storage(path.parent, preload=Preload(records.BOOK_DATABASES, records.load_books))
    message = str(refused.value)
    assert str(path) in message and LOADED_DAMAGES[damage][1] in message and "Restore" in message
    assert path.read_bytes() == before
    path.write_bytes(intact.read_bytes())  # the refusal let go of the directory
    storage = Storage(path.parent, preload=Preload(records.BOOK_DATABASES, records.load_books))
    try:
        assert len(storage.preloaded) == 20
    finally:
        storage.close()


@pytest.mark.parametrize("damage", sorted(LOADED_DAMAGES))
def test_serve_on_damaged_licenses_or_seats_exits_2_with_the_restore_procedure(intact, tmp_path, damage):
    path = damaged_copy(intact, tmp_path, damage, LOADED_DAMAGES)
    before = path.read_bytes()
    done = serve_once(path.parent, tmp_path)
    assert done.returncode == 2, done.stderr
    assert f"{path} is damaged" in done.stderr and LOADED_DAMAGES[damage][1] in done.stderr
    assert "docs/operations.md, section Restore" in done.stderr and "Traceback" not in done.stderr
    assert path.read_bytes() == before


def test_a_new_directory_and_an_intact_one_open(intact, tmp_path):
    Storage(tmp_path / "new").close()
    storage = Storage(intact.parent)
    try:
        assert read_through(storage._env, intact.parent) > 20 * 30
    finally:
        storage.close()


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_serve_on_a_damaged_data_directory_exits_2_with_the_restore_procedure(intact, tmp_path, damage):
    path = damaged_copy(intact, tmp_path, damage)
    before = path.read_bytes()
    done = serve_once(path.parent, tmp_path)
    assert done.returncode == 2, done.stderr
    assert f"{path} is damaged" in done.stderr and "docs/operations.md, section Restore" in done.stderr
    assert "Traceback" not in done.stderr
    assert path.read_bytes() == before


def serve_once(data_dir: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``floatkey serve`` on ``data_dir``; a damaged directory ends it at once."""
    config = tmp_path / "no-keys.yaml"
    config.write_text("hardwareKey:\n  enabled: false\n")
    command = [sys.executable, "-m", "floatkey", "serve", "--host", "127.0.0.1", "--port", "0"]
    return subprocess.run(
        [*command, "--data-dir", str(data_dir), "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_backup_of_a_truncated_data_file_is_refused_with_the_same_message(intact, tmp_path):
    path = damaged_copy(intact, tmp_path, "truncated")
    done = subprocess.run(
        [sys.executable, "-m", "floatkey", "backup", "--data-dir", str(path.parent), str(tmp_path / "copy")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert f"{path} is damaged" in done.stderr and "Traceback" not in done.stderr
