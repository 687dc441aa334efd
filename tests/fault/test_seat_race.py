"""No over-allocation, ever: 200 clients racing for 10 seats, before and after a restart."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.fault.support import Client, registrations, start_server
from tests.support.server import ServerProcess

pytestmark = pytest.mark.timeout(120)

CLIENTS = 200
SEATS = 10


def race(server: ServerProcess, users: list[str]) -> dict[str, tuple[int, Any]]:
    """Every user registers at once, each on its own connection; returns user -> (status, answer)."""
    clients = [Client(server.url, timeout=60) for _ in users]
    for client in clients:
        client.conn.connect()
    gate = threading.Barrier(len(users))
    results: dict[str, tuple[int, Any]] = {}

    def one(client: Client, user: str) -> None:
        gate.wait(30)
        results[user] = client.post("/api/v4/register", {"product": "race", "user": user})

    threads = [threading.Thread(target=one, args=(c, u)) for c, u in zip(clients, users, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for client in clients:
        client.close()
    assert len(results) == len(users), "some racers got no answer"
    return results


def winners(results: dict[str, tuple[int, Any]]) -> set[str]:
    outcomes = Counter(
        "ok" if status == 200 else answer.get("code") if isinstance(answer, dict) else status
        for status, answer in results.values()
    )
    assert set(outcomes) <= {"ok", "floating_not_available"}, outcomes
    return {user for user, (status, _) in results.items() if status == 200}


def test_exactly_the_free_seats_are_taken_before_and_after_restart(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        license_id = server.add_license(product="race", floating_users=SEATS, floating_timeout=600)["id"]
        first = winners(race(server, [f"a{i}" for i in range(CLIENTS)]))
        assert len(first) == SEATS
        assert set(registrations(server, license_id)) == first

        server.kill()
        server.start()
        assert set(registrations(server, license_id)) == first
        assert winners(race(server, [f"b{i}" for i in range(CLIENTS)])) == set()

        freed = sorted(first)[:3]
        for user in freed:
            assert server.post("/api/v4/unregister", {"product": "race", "user": user}).status_code == 200
        third = winners(race(server, [f"c{i}" for i in range(CLIENTS)]))
        assert len(third) == len(freed)
        assert set(registrations(server, license_id)) == (first - set(freed)) | third
    finally:
        server.stop()
