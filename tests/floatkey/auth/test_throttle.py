"""The login throttle's sliding window, on an injected clock."""

from __future__ import annotations

import pytest

from floatkey.auth.throttle import Throttle

USER = ("user", "alice")
ADDR = ("address", "10.0.0.1")


def test_free_until_the_limit_then_throttled() -> None:
    t = Throttle(max_failures=3, window=60)
    assert t.retry_after([USER], 0) is None
    assert t.fail([USER], 0) == []
    assert t.fail([USER], 1) == []
    assert t.retry_after([USER], 2) is None
    assert t.fail([USER], 2) == [USER]
    assert t.retry_after([USER], 2) == 58


def test_the_window_slides_with_the_oldest_failure() -> None:
    t = Throttle(max_failures=2, window=10)
    t.fail([USER], 0)
    t.fail([USER], 5)
    assert t.retry_after([USER], 9.5) == 1
    assert t.retry_after([USER], 10) is None
    t.fail([USER], 10)
    assert t.retry_after([USER], 12) == 3
    assert t.retry_after([USER], 15) is None


def test_keys_are_independent_and_any_throttled_key_blocks() -> None:
    t = Throttle(max_failures=2, window=60)
    t.fail([USER, ADDR], 0)
    t.fail([("user", "bob"), ADDR], 1)
    assert t.retry_after([("user", "carol"), ADDR], 2) == 58
    assert t.retry_after([USER, ("address", "10.0.0.2")], 2) is None


def test_forget_clears_one_key_only() -> None:
    t = Throttle(max_failures=2, window=60)
    t.fail([USER, ADDR], 0)
    t.fail([USER, ADDR], 1)
    t.forget(USER)
    assert t.retry_after([USER], 2) is None
    assert t.retry_after([ADDR], 2) == 58


def test_throttled_is_reported_once_per_crossing() -> None:
    t = Throttle(max_failures=2, window=60)
    t.fail([USER], 0)
    assert t.fail([USER], 1) == [USER]
    assert t.fail([USER], 2) == []


def test_memory_stays_bounded_under_a_spray_of_names() -> None:
    t = Throttle(max_failures=3, window=10, max_keys=100)
    for i in range(100):
        t.fail([("user", f"u{i}")], 0)
    assert len(t) == 100
    t.fail([("user", "late")], 11)
    assert len(t) == 1
    for _ in range(50):
        t.fail([USER], 20)
    assert t.retry_after([USER], 20) == 10


def test_expired_keys_are_pruned() -> None:
    t = Throttle(max_failures=3, window=10)
    t.fail([USER, ADDR], 0)
    t.prune(10)
    assert len(t) == 0


@pytest.mark.parametrize(("max_failures", "window"), [(0, 10), (3, 0)])
def test_nonsense_settings_are_refused(max_failures: int, window: float) -> None:
    with pytest.raises(ValueError):
        Throttle(max_failures, window)
