"""The key under load, through pcscd and a virtual key.

(a) Keep-alive client threads load a key-bound and a plain license; the key is pulled
mid-load. Once pcscd sees the reader empty (``KeyRack.pull`` returns), no key-bound action
that started after that succeeds; plain-license requests never fail; after the key is
plugged back, key-bound actions succeed again.

(b) The same with ``--crash-if-no-hardware-key``: the process exits with
``EXIT_NO_HARDWARE_KEY`` after the pull, every acknowledged register, borrow and
consumption (on both licenses) is there after a restart with the key plugged, nothing is
half-applied, and the restarted server serves again.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from floatkey.app.system import EXIT_NO_HARDWARE_KEY
from tests.fault.support import Client, Transport
from tests.fault.test_kill_during_load import Worker, audit
from tests.support.server import ServerProcess, wait_until

pytestmark = pytest.mark.timeout(120)

SERIAL = 55501234
PORT = 35963
THREADS_PER_LICENSE = 4
USERS_PER_THREAD = 8
#: Acknowledged requests per license before the key is pulled.
ACKS_BEFORE_PULL = 150
#: Key-bound refusals and plain successes, of requests started after the pull, to see.
AFTER_PULL = 40
REFUSED = {"status": 400, "code": "hardware_key_not_accessible"}
REFUSED_MESSAGE = "No available valid hardware key to perform the action: "


def wait_key_valid(server: ServerProcess, timeout: float = 15) -> None:
    def valid() -> bool:
        keys = server.get("/api/v4/hardware_key").json()["keys"]
        return any(k["serial"] == str(SERIAL) and k["state"] == "valid" for k in keys)

    wait_until(valid, timeout, what=f"key {SERIAL} to be valid")


@dataclass
class Outcome:
    path: str
    started: float
    finished: float
    status: int
    answer: Any


@dataclass
class Loader:
    """One keep-alive client registering and unregistering its own users on one license."""

    index: int
    url: str
    product: str
    outcomes: list[Outcome] = field(default_factory=list)
    error: BaseException | None = None

    def run(self, stop: threading.Event) -> None:
        client = Client(self.url, timeout=20)
        registered: set[str] = set()
        n = 0
        try:
            while not stop.is_set():
                user = f"t{self.index}-u{n % USERS_PER_THREAD}"
                path = "/api/v4/unregister" if user in registered and n % 3 == 2 else "/api/v4/register"
                n += 1
                started = time.monotonic()
                status, answer = client.post(path, {"product": self.product, "user": user})
                self.outcomes.append(Outcome(path, started, time.monotonic(), status, answer))
                if status == 200:
                    if path.endswith("/unregister"):
                        registered.discard(user)
                    else:
                        registered.add(user)
        except BaseException as exc:  # reported by the test thread
            self.error = exc
        finally:
            client.close()

    def count(self, ok: bool, after: float = 0.0) -> int:
        return sum(1 for o in list(self.outcomes) if (o.status == 200) == ok and o.started > after)


def _total(loaders: list[Loader], ok: bool, after: float = 0.0) -> int:
    for loader in loaders:
        if loader.error is not None:
            raise AssertionError(f"a client failed: {loader.error!r}")
    return sum(loader.count(ok, after) for loader in loaders)


def test_pulling_the_key_under_load_stops_only_key_bound_actions(key_servers, virtual_keys, make_test_card):
    server = key_servers()
    virtual_keys.plug(make_test_card(SERIAL), PORT)
    wait_key_valid(server)
    server.add_license(product="cad", isHWKeyReq=True, floating_users=1000, floating_timeout=600)
    server.add_license(product="plain", floating_users=1000, floating_timeout=600)
    bound = [Loader(i, server.url, "cad") for i in range(THREADS_PER_LICENSE)]
    plain = [Loader(THREADS_PER_LICENSE + i, server.url, "plain") for i in range(THREADS_PER_LICENSE)]
    stop = threading.Event()
    threads = [threading.Thread(target=x.run, args=(stop,), daemon=True) for x in bound + plain]
    for t in threads:
        t.start()
    try:
        wait_until(
            lambda: min(_total(bound, True), _total(plain, True)) >= ACKS_BEFORE_PULL,
            30,
            what="acknowledged requests on both licenses before the pull",
        )
        pulling = time.monotonic()
        virtual_keys.pull(PORT)
        pulled = time.monotonic()
        wait_until(
            lambda: min(_total(bound, False, pulled), _total(plain, True, pulled)) >= AFTER_PULL,
            30,
            what="refused key-bound and served plain requests after the pull",
        )
        replugging = time.monotonic()
        virtual_keys.plug(make_test_card(SERIAL), PORT)
        plugged = time.monotonic()
        wait_until(
            lambda: _total(bound, True, plugged) >= AFTER_PULL,
            30,
            what="key-bound requests to succeed again after the re-plug",
        )
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not any(t.is_alive() for t in threads), "a client hung"
    assert all(x.error is None for x in bound + plain), [x.error for x in bound + plain]

    for loader in plain:
        failed = [o for o in loader.outcomes if o.status != 200]
        assert not failed, f"a plain-license request failed: {failed[0]}"
    for loader in bound:
        # Started after the pull was detected and answered before the key came back: must fail.
        late = [
            o for o in loader.outcomes if o.status == 200 and o.started > pulled and o.finished < replugging
        ]
        assert not late, f"succeeded, started {late[0].started - pulled:.3f} s after the pull: {late[0]}"
        for o in loader.outcomes:
            if o.status != 200:
                action = "unregistering user" if o.path.endswith("/unregister") else "registering user"
                error = {k: v for k, v in o.answer.items() if k != "request_id"}
                assert error == {**REFUSED, "message": REFUSED_MESSAGE + action}, o.answer
                assert o.finished > pulling, f"refused before the key was pulled: {o}"
    refused = _total(bound, False)
    assert refused >= AFTER_PULL
    print(f"\nkey-bound: {_total(bound, True)} ok, {refused} refused; plain: {_total(plain, True)} ok")


def test_crash_if_no_hardware_key_under_load_loses_nothing(key_servers, virtual_keys, make_test_card):
    server = key_servers("--crash-if-no-hardware-key")
    virtual_keys.plug(make_test_card(SERIAL), PORT)
    wait_key_valid(server)
    policy = {
        "product": "audit",
        "floating_users": 10_000,
        "floating_timeout": 600,
        "max_borrow_time": 24 * 366,
        "max_consumptions": 10**12,
    }
    bound_id = server.add_license(isHWKeyReq=True, **policy)["id"]
    plain_id = server.add_license(**policy)["id"]
    bound = [Worker(i, server.url, bound_id) for i in range(THREADS_PER_LICENSE)]
    plain = [Worker(THREADS_PER_LICENSE + i, server.url, plain_id) for i in range(THREADS_PER_LICENSE)]
    stop, pulling = threading.Event(), threading.Event()
    threads = [threading.Thread(target=w.run, args=(stop, pulling), daemon=True) for w in bound + plain]
    for t in threads:
        t.start()

    def acknowledged(workers: list[Worker]) -> int:
        failed = [w.error for w in bound + plain if w.error is not None]
        if failed:
            stop.set()
            raise AssertionError(f"a client failed before the pull: {failed[0]!r}")
        return sum(w.acks for w in workers)

    try:
        wait_until(
            lambda: min(acknowledged(bound), acknowledged(plain)) >= ACKS_BEFORE_PULL,
            30,
            what="acknowledged operations on both licenses before the pull",
        )
        pulling.set()  # from now on the server may exit under any client
        virtual_keys.pull(PORT)
        client = Client(server.url, timeout=20)
        with pytest.raises(Transport):
            client.post("/api/v4/register", {"product": "audit", "license_id": bound_id, "user": "late"})
        client.close()
        assert server.wait_exit(30) == EXIT_NO_HARDWARE_KEY
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not any(t.is_alive() for t in threads), "a client hung after the server exited"
    assert all(w.error is None for w in bound + plain), [w.error for w in bound + plain]
    assert "crashIfNoHardwareKey" in server.log

    virtual_keys.plug(make_test_card(SERIAL), PORT)
    server.start()
    wait_key_valid(server)
    audit(server, bound, bound_id)
    audit(server, plain, plain_id)
    for license_id in (bound_id, plain_id):
        answer = server.post(
            "/api/v4/register", {"product": "audit", "license_id": license_id, "user": "after-restart"}
        )
        assert answer.status_code == 200, answer.text
    print(
        f"\nacknowledged before the exit: key-bound {sum(w.acks for w in bound)}, "
        f"plain {sum(w.acks for w in plain)}"
    )
