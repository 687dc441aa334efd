"""Online backup: a consistent copy of a data directory, even while a server writes it."""

from __future__ import annotations

import os
from pathlib import Path

import lmdb

from floatkey.auth.tokens import SECRET_FILE
from floatkey.errors import StorageError
from floatkey.hardware.refused_pins import FILE_NAME as REFUSED_PINS_FILE
from floatkey.licensing.installation import FILE_NAME as INSTALLATION_KEY_FILE
from floatkey.storage import integrity


def backup(data_dir: Path, destination: Path) -> None:
    """Copy the LMDB environment of ``data_dir`` (compacted) into the new folder ``destination``."""
    if not (Path(data_dir) / "data.mdb").exists():
        raise StorageError(f"{data_dir} holds no floatkey data (no data.mdb)")
    integrity.check_data_file(Path(data_dir))  # a truncated file would kill the copy with SIGBUS
    destination = Path(destination)
    if destination.exists() and any(destination.iterdir()):
        raise StorageError(f"{destination} is not empty; back up into a new folder")
    destination.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(destination, 0o700)
    env = lmdb.open(str(data_dir), readonly=True, max_dbs=16, lock=True)
    try:
        env.copy(str(destination), compact=True)
    finally:
        env.close()
    # The token secret, the PINs keys refused (so a restore never tries one again), and the
    # installation key (a restored server signs its usage reports with the key the vendor knows).
    for name in (SECRET_FILE, REFUSED_PINS_FILE, INSTALLATION_KEY_FILE):
        kept = Path(data_dir) / name
        if kept.exists():
            target = destination / name
            target.write_bytes(kept.read_bytes())
            os.chmod(target, 0o600)
