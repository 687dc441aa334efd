"""Broadcasts reach every listener by tell, and a listener that raises is logged, not lost."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pykka
import pytest

from floatkey import listener


class BellListener(listener.Listener):
    def rang(self, times: int) -> None:
        """The bell rang ``times`` times."""


class Broken(pykka.ThreadingActor, BellListener):
    def rang(self, times: int) -> None:
        raise RuntimeError(f"cannot count to {times}")

    def ping(self) -> bool:
        return True


class Counter(pykka.ThreadingActor, BellListener):
    def __init__(self) -> None:
        super().__init__()
        self.heard: list[int] = []
        self.done = threading.Event()

    def rang(self, times: int) -> None:
        self.heard.append(times)
        self.done.set()

    def heard_so_far(self) -> list[int]:
        return list(self.heard)


@pytest.fixture
def actors() -> Iterator[tuple[pykka.ActorRef[Broken], pykka.ActorRef[Counter]]]:
    broken, counter = Broken.start(), Counter.start()
    yield broken, counter
    pykka.ActorRegistry.stop_all()


def test_a_listener_that_raises_is_logged_at_error_and_keeps_listening(actors, caplog) -> None:
    broken, counter = actors
    caplog.set_level(logging.INFO)
    listener.send(BellListener, "rang", times=3)
    listener.send(BellListener, "rang", times=4)
    assert counter.proxy().heard_so_far().get(timeout=5) == [3, 4]
    # The broken actor handled both events (its mailbox is ordered): ask it something after them.
    assert broken.proxy().ping().get(timeout=5)
    failures = [r for r in caplog.records if r.levelno == logging.ERROR and "rang" in r.getMessage()]
    assert len(failures) == 2
    assert all(r.exc_info and "cannot count" in str(r.exc_info[1]) for r in failures)
    assert broken.is_alive()


def test_send_does_not_wait_for_a_listener() -> None:
    gate = threading.Event()

    class Slow(pykka.ThreadingActor, BellListener):
        def rang(self, times: int) -> None:
            gate.wait(10)

    ref = Slow.start()
    try:
        listener.send(BellListener, "rang", times=1)  # returns while the listener is blocked
        assert not gate.is_set()
    finally:
        gate.set()
        ref.stop()


def test_an_unknown_event_is_refused_at_the_sender() -> None:
    with pytest.raises(ValueError, match="no event 'rung'"):
        listener.send(BellListener, "rung", times=1)
