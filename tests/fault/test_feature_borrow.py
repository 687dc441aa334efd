"""A borrowed feature seat holds until its time, through the timeout of the license seat.

A user who borrows a feature seat (featureRegister with borrow_until) and then goes
offline must keep it: nobody else may take it when the license seat's floating_timeout
passes. floating_timeout is in minutes, so this test takes a little over a minute.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.fault.support import registrations, start_server
from tests.support.server import wait_until

pytestmark = pytest.mark.timeout(150)


def test_a_borrowed_feature_seat_outlives_the_license_seat_timeout(tmp_path: Path) -> None:
    server = start_server(tmp_path, "expirySweepInterval: 0.2\n")
    try:
        lic = server.add_license(
            product="fb",
            floating_users=3,
            floating_timeout=1,
            max_borrow_time=24,
            features=[{"code": "render", "is_floating": True, "floating_users": 1}],
        )
        until = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
        for user in ("alice", "carol"):
            assert server.post("/api/v4/register", {"product": "fb", "user": user}).status_code == 200
        borrowed = server.post(
            "/api/v4/featureRegister",
            {"product": "fb", "user": "alice", "feature": "render", "borrow_until": until},
        )
        assert borrowed.status_code == 200, borrowed.text

        # carol registered after alice and never came back: once the sweeper has freed her
        # seat, alice's floating_timeout has passed too.
        wait_until(
            lambda: any("of license 1 expired:" in line and "'carol'" in line for line in server.lines),
            timeout=60 + 30,
            what="carol's seat to time out",
        )
        held = registrations(server, lic["id"])
        assert set(held) == {"alice"}
        assert [f["feature"] for f in held["alice"]["features"]] == ["render"]
        assert server.post("/api/v4/register", {"product": "fb", "user": "bob"}).status_code == 200
        taken = server.post("/api/v4/featureRegister", {"product": "fb", "user": "bob", "feature": "render"})
        assert taken.status_code == 400 and taken.json()["code"] == "floating_not_available", taken.text
    finally:
        server.stop()
