"""The guarded connection manager in-process, where its output budget can be made small."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import cherrypy
import pytest

from floatkey.app.config import Settings
from floatkey.web.connections import ClientLimits, GuardedServer
from floatkey.web.server import server_config
from tests.support.server import wait_until

#: Larger than any send buffer the kernel grows to (4 MiB here), so part of it stays parked.
ANSWER = 8 * 1024 * 1024


class Big:
    @cherrypy.expose
    def index(self) -> bytes:
        return b"x" * ANSWER

    @cherrypy.expose
    def small(self) -> bytes:
        return b"ok"


@pytest.fixture
def guarded() -> Iterator[tuple[Any, int]]:
    """A CherryPy server on the guarded manager; yields (manager, port)."""
    settings = Settings(host="127.0.0.1", port=0)
    cherrypy.tree.mount(Big(), "", {"/": {"tools.encode.on": False}})
    cherrypy.config.update(server_config(settings))
    cherrypy.server.instance = GuardedServer(ClientLimits.from_settings(settings))
    cherrypy.server.httpserver = None  # another test's server, or it would be started again
    cherrypy.engine.start()
    try:
        yield cherrypy.server.httpserver._connections, cherrypy.server.bound_addr[1]
    finally:
        cherrypy.engine.exit()
        cherrypy.tree.apps.clear()
        cherrypy.server.instance = None
        cherrypy.server.httpserver = None


def slow_reader(port: int) -> socket.socket:
    """A client that asks for the big answer and reads none of it for now."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 1000)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    return sock


def read_all(sock: socket.socket) -> bytes:
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while piece := sock.recv(65536):
            received += piece
            if received.endswith(b"x" * 16) and len(received) >= ANSWER:
                break
    return received


def test_a_parked_answer_past_the_output_budget_cuts_its_connection_the_first_goes_out(guarded):
    manager, port = guarded
    manager.output_budget = 1024 * 1024  # less than one answer: a lone answer still goes out
    first = slow_reader(port)
    second = None
    try:
        wait_until(lambda: manager._parked > 0, what="the first answer parked")
        second = slow_reader(port)
        cut = read_all(second)
        assert len(cut) < ANSWER, "the second answer was parked past the budget"
        whole = read_all(first)
        assert whole.startswith(b"HTTP/1.1 200 ") and whole.endswith(b"x" * ANSWER)
        wait_until(lambda: manager._parked == 0, what="the budget given back")
    finally:
        first.close()
        if second is not None:
            second.close()


def small_answer(sock: socket.socket) -> bytes:
    """The head of one answer to ``GET /small`` (its 2-byte body read too)."""
    sock.sendall(b"GET /small HTTP/1.1\r\nHost: x\r\n\r\n")
    received = b""
    while not (b"\r\n\r\n" in received and received.endswith(b"ok")):
        piece = sock.recv(65536)
        assert piece, f"the server closed the connection after {received!r}"
        received += piece
    return received.partition(b"\r\n\r\n")[0]


def test_many_keep_alive_clients_keep_their_connections(guarded):
    """cheroot closes a keep-alive connection after its answer once 10 others wait in its
    selector; every client over ten then reconnects for each request, and the accept, the
    new connection and the TCP handshake cost the server more than many a request. Idle
    connections cost floatkey no thread: its own limits (per address, idleTimeout) bound them.
    """
    _, port = guarded
    clients = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(24)]
    try:
        for _round in range(2):
            for sock in clients:
                head = small_answer(sock)
                assert head.startswith(b"HTTP/1.1 200 ")
                assert b"connection: close" not in head.lower()
    finally:
        for sock in clients:
            sock.close()
