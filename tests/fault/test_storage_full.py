"""A full data directory (``mapSize`` reached) while clients keep registering.

A refused write answers 503 with the error shape, never a 500; the license reloads
itself from disk, so what the server shows from then on is what is stored, and a
restart shows the same. A license whose removal cannot be stored stays in service.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fault.support import Client, registrations, start_server
from tests.support.server import ServerProcess, wait_until

pytestmark = pytest.mark.timeout(120)

P = "full"
#: The smallest map floatkey accepts; seats with 4 KB of user_info fill it within a few hundred.
MAP_SIZE = 1 << 20


def writable(server: ServerProcess) -> bool:
    health = server.get("/api/v4/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    return health.json()["storage"]["writable"]


def test_a_full_data_directory_refuses_cleanly_and_stays_true(tmp_path: Path) -> None:
    server = start_server(tmp_path, f"mapSize: {MAP_SIZE}\n")
    client = Client(server.url)
    try:
        server.add_license(product=P, floating_users=100_000, max_consumptions=10**9)
        assert writable(server)
        acknowledged: set[str] = set()
        refusals = []
        for i in range(5_000):
            status, answer = client.post(
                "/api/v4/register", {"product": P, "user": f"u{i}", "user_info": "x" * 4000}
            )
            if status == 200:
                acknowledged.add(f"u{i}")
                continue
            refusals.append((status, answer))
            if len(refusals) == 5:
                break
        assert len(refusals) == 5 and len(acknowledged) > 10
        for status, answer in refusals:
            assert status == 503 and answer["code"] == "service_unavailable", answer
            assert "could not store the change" in answer["message"]
        server.wait_for_log("reloaded from disk")
        wait_until(lambda: set(registrations(server, 1)) == acknowledged, what="the stored seats")
        assert not writable(server)
        assert server.get("/api/v4/health").json()["storage"]["map_used"] > 0.9

        server.stop()
        server.start()
        assert set(registrations(server, 1)) == acknowledged

        # Deleting the license rewrites pages a full map has no room for: it fails, and
        # the license must keep serving exactly as before.
        removal = server.delete("/api/v4/licenses/1")
        assert removal.status_code == 503 and removal.json()["code"] == "service_unavailable"
        server.wait_for_log("license 1 was not removed")
        assert not writable(server)
        assert set(registrations(server, 1)) == acknowledged
        refresher = Client(server.url)
        try:
            status, answer = refresher.post("/api/v4/register", {"product": P, "user": min(acknowledged)})
        finally:
            refresher.close()
        assert status == 200 and answer["floating_in_use_devices"] == len(acknowledged)
        assert writable(server)
        server.wait_for_log("storage writes succeed again")
    finally:
        client.close()
        server.stop()
