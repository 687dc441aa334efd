"""200 clients race for 10 seats over HTTP: exactly 10 win, before and after a restart."""

import threading

import requests

from tests.support.server import ServerProcess


def race(url: str, users: list[str]) -> dict[str, list[str]]:
    outcome: dict[str, list[str]] = {"won": [], "lost": [], "other": []}
    lock = threading.Lock()
    start = threading.Barrier(len(users))

    def client(user: str) -> None:
        with requests.Session() as session:
            start.wait()
            answer = session.post(
                url + "/api/v4/register", json={"product": "race", "user": user}, timeout=60
            )
        if answer.status_code == 200:
            kind = "won"
        elif answer.status_code == 400 and answer.json()["code"] == "floating_not_available":
            kind = "lost"
        else:
            kind = "other"
        with lock:
            outcome[kind].append(user)

    threads = [threading.Thread(target=client, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return outcome


def test_exactly_ten_of_two_hundred_win_before_and_after_restart(tmp_path):
    server = ServerProcess(tmp_path / "data").start()
    try:
        server.add_license(product="race", floating_users=10)
        first = race(server.url, [f"a{i}" for i in range(200)])
        assert len(first["won"]) == 10 and len(first["lost"]) == 190, first["other"]
        server.stop()
        server.start()
        held = server.get("/api/v4/registrations").json()["registrations"]
        assert sorted(s["user"] for s in held) == sorted(first["won"])
        blocked = race(server.url, [f"b{i}" for i in range(200)])
        assert blocked["won"] == [] and len(blocked["lost"]) == 200
        assert server.get("/api/v4/unregister/all").status_code == 200
        second = race(server.url, [f"c{i}" for i in range(200)])
        assert len(second["won"]) == 10 and len(second["lost"]) == 190, second["other"]
    finally:
        server.stop()
