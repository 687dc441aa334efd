"""The scale scenario: many live registrations across many licenses, written straight into
a fresh data directory with floatkey's own rules and storage code, so that seeding takes
seconds instead of a long HTTP run. Every seeded seat expires at one chosen instant, so
the benchmark can put a full timeout wave inside a measured load.
"""

from __future__ import annotations

import copy
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from floatkey.app.config import Settings
from floatkey.app.system import Floatkey
from floatkey.rules.seats import ClientInfo
from floatkey.storage import Storage
from floatkey.storage.records import license_ops, load_books

TIMEOUT_MINUTES = 1
CLIENT = ClientInfo(os_hostname="scale-host", ip_local="10.1.0.1", user_info="seeded by bench/scale.py")


def add_licenses(data_dir: Path, licenses: int, seats: int) -> None:
    """``licenses`` licenses of ``seats`` seats each, through the embedding API."""
    with Floatkey(Settings(data_dir=data_dir), hardware_keys=False) as fk:
        for i in range(licenses):
            fk.add_license(
                {"product": f"scale{i:05d}", "floating_users": seats, "floating_timeout": TIMEOUT_MINUTES}
            )


def seconds_per_seat(data_dir: Path, sample: int = 50) -> float:
    """How long seeding one seat takes here (on a copy; nothing is written)."""
    storage = Storage(data_dir)
    try:
        book = copy.deepcopy(load_books(storage)[0])
    finally:
        storage.close()
    now = datetime.now(UTC)
    started = time.perf_counter()
    for j in range(sample):
        _, changes = book.register(f"probe{j}", CLIENT, now)
        license_ops(book, changes)
    return (time.perf_counter() - started) / sample


def seed_seats(data_dir: Path, seats: int, expires_at: datetime) -> None:
    """Register ``seats`` users on every license, each seat ending at ``expires_at``."""
    registered_at = expires_at - timedelta(minutes=TIMEOUT_MINUTES)
    storage = Storage(data_dir)
    try:
        seq = 0
        for book in load_books(storage):
            ops = []
            for j in range(seats):
                _, changes = book.register(f"user{j:04d}", CLIENT, registered_at)
                ops += license_ops(book, changes)
            seq = storage.write(ops)
        storage.wait(seq)
    finally:
        storage.close()
