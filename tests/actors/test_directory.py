"""The directory starts a license's actor on the first message to it, not at start-up."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pykka
import pytest

from floatkey import Floatkey, FloatkeyError, Settings
from floatkey.actors.directory import LicenseCell
from floatkey.actors.license import LicenseActor
from floatkey.rules.license import LicenseBook
from floatkey.rules.policy import policy_from_fields
from floatkey.storage import records
from tests.support.server import wait_until

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def license_actors() -> int:
    return len(pykka.ActorRegistry.get_by_class(LicenseActor))


def running(settings: Settings, clock) -> Floatkey:
    return Floatkey(settings, clock=clock, hardware_keys=False)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", expiry_sweep_interval=0.02)


def test_a_restart_starts_no_actor_until_a_license_is_asked(settings):
    with running(settings, lambda: NOW) as fk:
        for n in range(3):
            fk.add_license({"product": f"p{n}", "floating_users": 2})
            fk.register(f"p{n}", "alice")
    assert license_actors() == 0
    with running(settings, lambda: NOW) as fk:
        assert license_actors() == 0
        answer = fk.register("p1", "bob")
        assert answer["floating_in_use_devices"] == 2  # alice's seat was loaded
        assert license_actors() == 1
        fk.register("p1", "bob")
        assert license_actors() == 1
    assert license_actors() == 0


def test_the_seats_of_a_license_nobody_asks_about_still_expire(settings):
    now = [NOW]
    with running(settings, lambda: now[0]) as fk:
        fk.add_license({"product": "cad", "floating_users": 2, "floating_timeout": 1})
        fk.register("cad", "alice")
    with running(settings, lambda: now[0]) as fk:
        assert fk.storage is not None
        storage = fk.storage
        now[0] = NOW + timedelta(minutes=2)
        wait_until(
            lambda: not list(storage.items(records.SEATS)), timeout=10, what="the sweeper to free the seat"
        )


def test_a_license_removed_before_its_actor_started_starts_none(settings):
    with running(settings, lambda: NOW) as fk:
        fk.add_license({"product": "cad", "floating_users": 2})
        fk.register("cad", "alice")
    with running(settings, lambda: NOW) as fk:
        fk.remove_license("cad")
        assert license_actors() == 0
        with pytest.raises(FloatkeyError) as err:
            fk.register("cad", "alice")
        assert err.value.code == "unknown_product"


class FakeRef:
    stopped = 0

    def stop(self) -> None:
        self.stopped += 1


def test_a_cell_starts_one_actor_however_many_threads_ask_at_once():
    book = LicenseBook(1, policy_from_fields({"product": "cad"}), NOW)
    started: list[LicenseBook] = []
    gate = threading.Barrier(8)

    def start(b: LicenseBook):
        started.append(b)
        return FakeRef()

    cell = LicenseCell(book, start)
    refs: list[object] = []

    def ask() -> None:
        gate.wait()
        refs.append(cell.ref)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert started == [book] and len({id(r) for r in refs}) == 1
    cell.close()
    assert refs[0].stopped == 1


def test_a_closed_cell_starts_nothing():
    cell = LicenseCell(LicenseBook(1, policy_from_fields({"product": "cad"}), NOW), lambda b: FakeRef())
    cell.close()
    with pytest.raises(FloatkeyError) as err:
        cell.ref  # noqa: B018 (the property starts the actor)
    assert err.value.code == "license_not_found"
