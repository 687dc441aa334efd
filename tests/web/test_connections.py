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
