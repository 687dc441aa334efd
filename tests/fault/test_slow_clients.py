"""Slow or idle clients cost a legitimate client under 1 s (docs/operations.md, "Slow clients and limits").

Ten attacker connections per worker thread (``threadPool`` 8 here, 80 attackers) from
several loopback addresses (Linux routes all of 127/8 to ``lo``) trickle their headers,
trickle their body, send nothing, or never read a large answer. While they hold on, a
legitimate register from 127.0.0.1 is answered within 1 s, again and again, and the
server's resident memory stays bounded. Each attack stops by itself within seconds.
"""

from __future__ import annotations

import contextlib
import fcntl
import socket
import struct
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fault.support import Client, start_server
from tests.support.server import ServerProcess, wait_until
from tests.web.test_tls import self_signed

pytestmark = pytest.mark.timeout(120)

THREADS = 8
ATTACKERS = 10 * THREADS
ADDRESSES = [f"127.0.0.{n}" for n in range(2, 10)]
#: Seconds between two bytes of a trickling attacker.
TRICKLE = 0.25
#: Legitimate registers measured during each attack, one per trickle round.
ROUNDS = 5
ANSWER_WITHIN = 1.0
#: Resident memory the server may gain while an attack holds (80 parked answers of
#: openapi.json are about 5 MB).
RSS_GROWTH = 48 * 1024 * 1024

_HEAD = b"POST /api/v4/register HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


class Attack:
    """``ATTACKERS`` connections that send ``opening``, then one byte of ``drip`` each per round."""

    def __init__(self, url: str, opening: bytes, drip: bytes = b"", small_window: bool = False) -> None:
        self.host, port = url.rsplit("//", 1)[1].rsplit(":", 1)
        self.port = int(port)
        self.opening = opening
        self.drip = drip
        self.small_window = small_window
        self.socks: list[socket.socket] = []
        self.rounds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, daemon=True)

    def __enter__(self) -> Attack:
        for n in range(ATTACKERS):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if self.small_window:
                # Jam early: a small receive window, and small segments so that the
                # server's kernel does not grow its send buffer to megabytes (loopback's
                # 64 KiB segments would), so a few answers fill what the kernel holds.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 1000)
            sock.bind((ADDRESSES[n % len(ADDRESSES)], 0))
            sock.settimeout(5)
            sock.connect((self.host, self.port))
            if self.opening:
                sock.sendall(self.opening)
            sock.setblocking(False)
            self.socks.append(sock)
        self._thread.start()
        return self

    def _trickle(self) -> None:
        position = 0
        while not self._stop.wait(TRICKLE):
            if self.drip:
                byte = self.drip[position % len(self.drip) : position % len(self.drip) + 1]
                position += 1
                for sock in self.socks:
                    with contextlib.suppress(OSError):  # the server closed it; still_open() tells
                        sock.send(byte)
            self.rounds += 1

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        for sock in self.socks:
            sock.close()

    def still_open(self) -> int:
        """How many attacker connections the server has not closed."""
        count = 0
        for sock in self.socks:
            try:
                if sock.recv(1, socket.MSG_PEEK):
                    count += 1  # an answer waits, unread: open
            except BlockingIOError:
                count += 1
            except OSError:
                pass
        return count

    def receiving(self) -> int:
        """How many attackers have answer bytes waiting in their receive queue."""
        queued = 0
        for sock in self.socks:
            buf = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
            queued += struct.unpack("i", buf)[0] > 0
        return queued


def rss(server: ServerProcess) -> int:
    assert server.proc is not None
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def timed_register(server: ServerProcess, user: str) -> float:
    """Seconds a fresh client from 127.0.0.1 waits for its register (fails past 3 s)."""
    client = Client(server.url, timeout=3)
    started = time.monotonic()
    try:
        status, body = client.post("/api/v4/register", {"product": "cad", "user": user})
    finally:
        client.close()
    elapsed = time.monotonic() - started
    assert status == 200, body
    return elapsed


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory.mktemp("slow"), f"threadPool: {THREADS}\n")
    proc.add_license(product="cad", floating_users=1000)
    timed_register(proc, "warm-up")
    yield proc
    proc.stop()


def hold_and_measure(server: ServerProcess, attack: Attack, name: str, ready: Any = None) -> None:
    before = rss(server)
    with attack:
        if ready is not None:
            wait_until(ready, timeout=10, what=f"the {name} attack in place")
        latencies = []
        for n in range(ROUNDS):
            wait_until(lambda n=n: attack.rounds > n, timeout=5, what=f"trickle round {n}")
            latencies.append(timed_register(server, f"{name}-{n}"))
        held = attack.still_open()
        grown = rss(server) - before
    assert max(latencies) < ANSWER_WITHIN, f"register latencies under attack: {latencies}"
    assert held == ATTACKERS, f"the attackers were dropped ({held} held), not outlasted"
    assert grown < RSS_GROWTH, f"resident memory grew by {grown / 2**20:.1f} MiB under attack"


def test_trickled_headers_do_not_lock_out_a_register(server: ServerProcess) -> None:
    attack = Attack(server.url, _HEAD, drip=b"X-Slow: 1\r\n")
    hold_and_measure(server, attack, "headers")


def test_a_trickled_body_does_not_lock_out_a_register(server: ServerProcess) -> None:
    attack = Attack(server.url, _HEAD + b"Content-Length: 4000\r\n\r\n", drip=b" ")
    hold_and_measure(server, attack, "body")


def test_connections_that_send_nothing_do_not_lock_out_a_register(server: ServerProcess) -> None:
    attack = Attack(server.url, b"")
    hold_and_measure(server, attack, "silent")


def test_clients_that_never_read_a_large_answer_do_not_lock_out_a_register(server: ServerProcess) -> None:
    # Each asks for the API document (64 KiB) three times over and reads none of it: what
    # the kernel holds for it takes one and a half.
    ask = b"GET /api/v4/openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 3
    attack = Attack(server.url, ask, small_window=True)
    # Jammed: as many answers have begun as there are workers (all of them, once fixed).
    hold_and_measure(server, attack, "unread", ready=lambda: attack.receiving() >= THREADS)


LIMITS = "requestTimeout: 2\nidleTimeout: 2\nmaxConnectionsPerAddress: 4\n"


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path, f"threadPool: {THREADS}\n{LIMITS}")
    proc.add_license(product="cad", floating_users=10)
    yield proc
    proc.stop()


def connect(server: ServerProcess, address: str, opening: bytes = b"") -> socket.socket:
    host, port = server.url.rsplit("//", 1)[1].rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((address, 0))
    sock.settimeout(10)
    sock.connect((host, int(port)))
    if opening:
        sock.sendall(opening)
    return sock


def answer_then_close(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (10 s at most)."""
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while piece := sock.recv(65536):
            received += piece
    return received


def test_a_request_not_whole_within_request_timeout_gets_408_and_is_closed(limited: ServerProcess) -> None:
    sock = connect(limited, "127.0.0.10", _HEAD)
    started = time.monotonic()
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(TRICKLE):
            with contextlib.suppress(OSError):
                sock.send(b"X")

    dripper = threading.Thread(target=trickle, daemon=True)
    dripper.start()
    try:
        answer = answer_then_close(sock)
    finally:
        stop.set()
        dripper.join(5)
        sock.close()
    took = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b'"code": "request_timeout"' in answer
    assert 2 <= took < 4, f"cut after {took:.1f} s with requestTimeout 2"


def test_an_address_at_its_connection_cap_gets_429_but_others_are_served(limited: ServerProcess) -> None:
    busy = [connect(limited, "127.0.0.11", _HEAD) for _ in range(4)]  # each has begun a request
    try:
        extra = connect(limited, "127.0.0.11")
        answer = answer_then_close(extra)
        extra.close()
        assert answer.startswith(b"HTTP/1.1 429 "), answer
        assert b'"code": "too_many_requests"' in answer
        assert timed_register(limited, "other-address") < ANSWER_WITHIN
    finally:
        for sock in busy:
            sock.close()


def test_at_the_cap_an_idle_connection_makes_room_for_a_new_one(limited: ServerProcess) -> None:
    idle = [connect(limited, "127.0.0.12") for _ in range(4)]
    try:
        newcomer = connect(limited, "127.0.0.12", b"GET /api/v4/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert newcomer.recv(65536).startswith(b"HTTP/1.1 200 ")
        newcomer.close()
        assert answer_then_close(idle[0]) == b"", "the longest-idle connection was closed"
    finally:
        for sock in idle:
            sock.close()


def test_an_answer_left_unread_for_idle_timeout_is_dropped(tmp_path: Path) -> None:
    server = start_server(tmp_path, f"threadPool: {THREADS}\nidleTimeout: 2\n")
    try:
        server.add_license(product="cad", floating_users=10)
        ask = b"GET /api/v4/openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 3
        attack = Attack(server.url, ask, small_window=True)
        with attack:
            wait_until(lambda: attack.receiving() == ATTACKERS, timeout=10, what="answers jammed")
            server.wait_for_log("answers left unread for idleTimeout", timeout=8)
            assert timed_register(server, "after") < ANSWER_WITHIN
    finally:
        server.stop()


def test_silent_connections_to_https_do_not_stall_the_tls_handshakes_of_others(tmp_path: Path) -> None:
    """cheroot does the TLS handshake in its one selector thread, waiting on the client."""
    cert, key = self_signed(tmp_path)
    tls = f"threadPool: {THREADS}\ntls:\n  certificate: {cert}\n  privateKey: {key}\n"
    server = start_server(tmp_path, tls)
    try:
        assert server.url.startswith("https://")
        answer = requests.post(
            server.url + "/api/v4/licenses", json={"product": "cad", "floating_users": 10}, verify=str(cert)
        )
        assert answer.status_code == 201, answer.text
        with Attack(server.url, b"") as attack:
            latencies = []
            for n in range(ROUNDS):
                wait_until(lambda n=n: attack.rounds > n, timeout=5, what=f"round {n}")
                started = time.monotonic()
                answer = requests.post(  # a new connection: a new handshake
                    server.url + "/api/v4/register",
                    json={"product": "cad", "user": f"u{n}"},
                    verify=str(cert),
                    timeout=3,
                )
                latencies.append(time.monotonic() - started)
                assert answer.status_code == 200, answer.text
            held = attack.still_open()
        assert max(latencies) < ANSWER_WITHIN, f"HTTPS register latencies under attack: {latencies}"
        assert held == ATTACKERS
    finally:
        server.stop()


def test_a_client_that_waits_for_100_continue_gets_it_once_before_its_body_is_read(
    server: ServerProcess,
) -> None:
    """The body is read before a worker sees the request, so the interim answer cannot wait for one."""
    body = b'{"product": "cad", "user": "patient"}'
    head = _HEAD + b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)
    sock = connect(server, "127.0.0.1", head)
    try:
        assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        answer = sock.recv(65536)
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 200 "), answer
    assert b"100 Continue" not in answer
