"""SIGKILL right after a batch of acknowledged writes: after restart, all of them are there."""

from concurrent.futures import ThreadPoolExecutor

import requests

from tests.support.server import ServerProcess


def test_acknowledged_writes_survive_sigkill(tmp_path):
    server = ServerProcess(tmp_path / "data").start()
    try:
        server.add_license(product="dur", floating_users=500, max_borrow_time=24, max_consumptions=10**6)

        def register(i: int) -> tuple[str, int]:
            with requests.Session() as s:
                path = "borrow" if i % 5 == 0 else "register"
                r = s.post(
                    server.url + f"/api/v4/{path}", json={"product": "dur", "user": f"u{i}"}, timeout=30
                )
                c = s.post(
                    server.url + "/api/v4/add_consumption",
                    json={"product": "dur", "consumptions": 1},
                    timeout=30,
                )
                return (f"u{i}" if r.status_code == 200 else "", c.status_code)

        with ThreadPoolExecutor(32) as pool:
            results = list(pool.map(register, range(300)))
        server.kill()
        acknowledged = {user for user, _ in results if user}
        consumed = sum(1 for _, status in results if status == 200)
        assert len(acknowledged) == 300 and consumed == 300

        server.start()
        seats = server.get("/api/v4/registrations").json()["registrations"]
        assert {s["user"] for s in seats} == acknowledged
        borrowed = {s["user"] for s in seats if s["borrowed_until"] is not None}
        assert borrowed == {f"u{i}" for i in range(0, 300, 5)}
        [lic] = server.get("/api/v4/license?product=dur").json()
        assert lic["total_consumptions"] == consumed
    finally:
        server.stop()
