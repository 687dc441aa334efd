"""Zombie seats come back: a seat nobody refreshes is free within floating_timeout plus one
sweep interval, with no request at all reaching the server in the meantime.

floating_timeout is in minutes, so this test takes a little over a minute.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.fault.support import registrations, start_server
from tests.support.server import ServerProcess

pytestmark = pytest.mark.timeout(150)

SWEEP = 0.2
TIMEOUT_S = 60.0
#: Slack for scheduling and for the log line to travel through the pipe; generous, since
#: a loaded virtual machine can stall a process for a second or more.
SLACK = 5.0
USERS = ["z0", "z1", "z2"]


def expiry_logged(server: ServerProcess, user: str) -> bool:
    """The sweeper logs one line per license and sweep, naming the users whose seats ended."""
    return any("of license 1 expired:" in line and repr(user) in line for line in server.lines)


def test_unrefreshed_seats_are_freed_without_traffic(tmp_path: Path) -> None:
    server = start_server(tmp_path, f"expirySweepInterval: {SWEEP}\n")
    try:
        server.add_license(product="zombie", floating_users=len(USERS), floating_timeout=1)
        sent = time.monotonic()
        for user in USERS:
            assert server.post("/api/v4/register", {"product": "zombie", "user": user}).status_code == 200
        acknowledged = time.monotonic()
        full = server.post("/api/v4/register", {"product": "zombie", "user": "late"})
        assert full.json()["code"] == "floating_not_available"

        deadline = acknowledged + TIMEOUT_S + SWEEP + SLACK + 5
        freed_at: dict[str, float] = {}
        while len(freed_at) < len(USERS) and time.monotonic() < deadline:
            for user in USERS:
                if user not in freed_at and expiry_logged(server, user):
                    freed_at[user] = time.monotonic()
            time.sleep(0.02)
        assert set(freed_at) == set(USERS), f"not freed in time: {set(USERS) - set(freed_at)}"
        for user, when in freed_at.items():
            assert when - sent >= TIMEOUT_S, f"{user} freed {when - sent:.1f} s after its register"
            assert when - acknowledged <= TIMEOUT_S + SWEEP + SLACK, (
                f"{user} freed {when - acknowledged:.1f} s after its register"
            )

        assert registrations(server) == {}
        for user in ["n0", "n1", "n2"]:
            assert server.post("/api/v4/register", {"product": "zombie", "user": user}).status_code == 200
    finally:
        server.stop()
