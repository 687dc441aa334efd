"""License actors, started on their license's first message, end up frozen out of the
garbage collector's walks; the start-up makes its objects without a collection."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from floatkey import Floatkey, Settings
from floatkey.app.collector import (
    FREEZE_AFTER,
    ActorFreezer,
    freeze_start_up_objects,
    pause_collector_for_start_up,
)
from tests.support.server import ServerProcess


def tracked(obj: object) -> bool:
    """Whether a full collection walks ``obj`` (frozen objects are in no generation)."""
    return any(o is obj for o in gc.get_objects())


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Give back what a test froze, so that other tests' collections see it again."""
    yield
    gc.unfreeze()
    gc.enable()


@pytest.fixture
def fk(tmp_path: Path) -> Iterator[Floatkey]:
    with Floatkey(Settings(data_dir=tmp_path / "data"), hardware_keys=False) as fk:
        for i in range(12):
            fk.add_license({"product": f"p{i}", "floating_users": 1})
        yield fk


def actors(fk: Floatkey, count: int) -> list[object]:
    """Start the actors of the first ``count`` licenses (a message each); one object of each actor."""
    entries = list(fk._index().entries())[:count]
    for entry in entries:
        fk.licenses(entry.product)
    return [entry.cell.ref.actor_stopped for entry in entries]  # an Event of each actor


def test_a_burst_of_actor_starts_is_frozen_once_it_is_over(fk: Floatkey, unfrozen: None) -> None:
    freezer = ActorFreezer(lambda: fk.actors_started, freeze_after=5)
    started = actors(fk, 6)
    assert all(tracked(a) for a in started)
    assert not freezer.check()  # six started since the last look: the burst may go on
    assert all(tracked(a) for a in started)
    assert freezer.check()  # none since: frozen, with everything alive
    assert not any(tracked(a) for a in started)
    more = actors(fk, 9)[6:]  # three more: under the count, never frozen
    assert not freezer.check() and not freezer.check()
    assert all(tracked(a) for a in more)


def test_a_steady_trickle_of_starts_is_frozen_at_twice_the_count(fk: Floatkey, unfrozen: None) -> None:
    freezer = ActorFreezer(lambda: fk.actors_started, freeze_after=5)
    started = actors(fk, 9)
    assert not freezer.check()  # nine since the last look, still starting
    started += actors(fk, 10)[9:]
    assert freezer.check()  # ten: frozen though starts go on
    assert not any(tracked(a) for a in started)


def test_the_start_up_makes_its_objects_without_a_collection_and_freezes_them(unfrozen: None) -> None:
    collections: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    pause_collector_for_start_up()
    gc.callbacks.append(count)
    try:
        assert not gc.isenabled()
        made = [[i] for i in range(100_000)]  # far past every generation's threshold
        frozen = freeze_start_up_objects()
    finally:
        gc.callbacks.remove(count)
    assert collections == [] and gc.isenabled()
    assert frozen >= len(made) and not tracked(made[-1])


def test_a_server_freezes_its_license_actors_once_they_have_started(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Floatkey(Settings(data_dir=data), hardware_keys=False) as fk:
        for i in range(FREEZE_AFTER):
            fk.add_license({"product": f"p{i:04d}", "floating_users": 1})
    server = ServerProcess(data).start(timeout=60)
    try:
        assert len(server.get("/api/v4/license").json()) == FREEZE_AFTER  # starts every actor
        server.wait_for_log(f"{FREEZE_AFTER} license actors started since the last freeze", timeout=30)
    finally:
        server.stop()
