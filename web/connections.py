"""Slow and idle clients cost no worker thread: a worker sees a request only once it is whole.

cheroot (CherryPy's HTTP server) hands a connection to a worker thread as soon as it is
accepted or readable; the worker then blocks on the socket until the request has arrived
and its answer has left, up to ``socket_timeout`` per byte. ``threadPool`` clients that
trickle their headers or body, send nothing, or never read their answer hold every
worker, and everyone else waits.

Here the selector thread reads each connection with non-blocking reads into a buffer of
its own and hands the connection to a worker only when the request line, the headers and
the body (up to ``maxBodySize``) are all there (web/framing.py finds the end); the worker
parses and answers from that buffer. A worker never waits on the client either way: what
the socket does not take at once is parked in the connection's output buffer, which the
selector thread sends as the client reads. What a slow client can hold is then bounded by
deadlines (``requestTimeout`` from a request's first byte, ``idleTimeout`` between
requests and for an answer left unread), by a cap per client address
(``maxConnectionsPerAddress``), by the buffer sizes (``maxHeaderSize`` plus
``maxBodySize`` in, ``OUTPUT_BUDGET`` out), never by threads. TLS handshakes run in the
selector thread too, without blocking.

``GuardedServer`` is CherryPy's own WSGI server with this connection manager; serve.py
installs it as ``cherrypy.server.instance``.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import http
import json
import logging
import resource
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cherrypy
from cheroot.connections import ConnectionManager, prevent_socket_inheritance
from cheroot.server import HTTPConnection
from cherrypy._cpwsgi_server import CPWSGIServer

from floatkey import __version__
from floatkey.app.config import Settings
from floatkey.errors import FloatkeyError
from floatkey.web.framing import Action, Framer, Framing
from floatkey.web.server import DRAIN_LIMIT
from floatkey.web.wire import FloatkeyRequest

logger = logging.getLogger(__name__)

#: Largest read from a socket at a time.
READ_PIECE = 64 * 1024
#: Largest piece of a parked answer handed to the socket at a time.
SEND_PIECE = 256 * 1024
#: All answers parked for slow readers together, in bytes. An answer that would pass it
#: (while others are parked) cuts its own connection: the memory slow readers can pin
#: stays bounded, and a large answer alone still goes out however slowly it is read.
OUTPUT_BUDGET = 64 * 1024 * 1024
#: Seconds the server stops accepting when it is out of file descriptors and no idle
#: connection can be closed to free one.
ACCEPT_PAUSE = 0.2
#: Seconds between two log lines that count the clients cut or refused.
REPORT_INTERVAL = 60.0

_WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)

# What a connection waits for, and who owns it: the selector thread in the first three
# states, a worker thread in WORKING.
HANDSHAKE = "handshake"
READING = "reading"
SENDING = "sending"
WORKING = "working"


@dataclass(frozen=True)
class ClientLimits:
    """The limits of web/connections.py, from the settings of the same names."""

    max_header_size: int
    max_body_size: int
    request_timeout: float
    idle_timeout: float
    max_per_address: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ClientLimits:
        return cls(
            max_header_size=settings.max_header_size,
            max_body_size=settings.max_body_size,
            request_timeout=settings.request_timeout,
            idle_timeout=settings.idle_timeout,
            max_per_address=settings.max_connections_per_address,
        )


class RequestReader:
    """The ``rfile`` a worker reads: one request, received whole beforehand."""

    def __init__(self) -> None:
        self._buf = b""
        self._pos = 0
        self.bytes_read = 0

    def load(self, request: bytes) -> None:
        self._buf = request
        self._pos = 0

    def read(self, size: int | None = -1) -> bytes:
        end = len(self._buf) if size is None or size < 0 else min(len(self._buf), self._pos + size)
        return self._take(end)

    def readline(self, size: int | None = -1) -> bytes:
        newline = self._buf.find(b"\n", self._pos)
        end = len(self._buf) if newline < 0 else newline + 1
        if size is not None and size >= 0:
            end = min(end, self._pos + size)
        return self._take(end)

    def _take(self, end: int) -> bytes:
        piece = self._buf[self._pos : end]
        self._pos = end
        self.bytes_read += len(piece)
        return piece

    def has_data(self) -> bool:
        return self._pos < len(self._buf)

    def close(self) -> None:
        self._buf = b""
        self._pos = 0


class ParkingWriter:
    """The ``wfile`` a worker writes: sends what the socket takes now, parks the rest.

    A worker thread writes; the selector thread sends what was parked once the worker has
    handed the connection back. Never both at once.
    """

    def __init__(self, conn: GuardedConnection) -> None:
        self.conn = conn
        self.bytes_written = 0

    def write(self, data: bytes) -> int:
        conn = self.conn
        if conn.continue_sent and data.endswith(b" 100 Continue\r\n\r\n"):
            conn.continue_sent = False  # cheroot's own, after the selector thread's: once is enough
            return len(data)
        view = memoryview(data)
        if not conn.outbuf:
            view = view[conn.send_some(view) :]
        if view:
            conn.manager.park(conn, view)
        self.bytes_written += len(data)
        return len(data)

    def flush(self) -> None:
        """Nothing is held back: what the socket did not take is parked."""

    def close(self) -> None:
        """The socket is closed by the connection."""


class GuardedConnection(HTTPConnection):
    """A connection whose bytes the selector thread reads and sends without blocking.

    Its requests are ``FloatkeyRequest``s (web/wire.py): strict framing, and cheroot's own
    answers in the JSON error shape.
    """

    def __init__(self, server: Any, sock: Any, manager: GuardedConnectionManager) -> None:
        super().__init__(server, sock, makefile=_no_file)
        sock.setblocking(False)
        self.manager = manager
        self.rfile = RequestReader()
        self.wfile = ParkingWriter(self)
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        limits = manager.limits
        self.framer = Framer(limits.max_header_size, limits.max_body_size, DRAIN_LIMIT)
        self.state = READING
        self.registered = False
        self.events = 0  # what the selector watches for while registered
        self.deadline = 0.0
        #: When the current request's first byte arrived (None: none of it yet).
        self.first_byte_at: float | None = None
        #: Bytes of a refused body still to be read and dropped before its headers go on.
        self.skip = 0
        self.skipped_head = b""
        #: Close after the answer that is in progress (its request's end is unknown).
        self.close_after_answer = False
        #: Close once the parked answer has left.
        self.close_after_flush = False
        #: A failed send: close without waiting for anything.
        self.broken = False
        self.closed = False
        #: A request of this connection has gone to a worker.
        self.served = False
        #: The selector thread has answered this request's ``Expect: 100-continue``.
        self.continue_sent = False

    def send_some(self, view: memoryview) -> int:
        """Send what the socket takes now, without waiting; the number of bytes sent."""
        sent = 0
        try:
            while sent < len(view):
                sent += self.socket.send(view[sent:])
        except _WOULD_BLOCK:
            pass
        except OSError:
            self.broken = True
            raise
        return sent

    def close(self) -> None:
        """Close, or, while an answer is parked, close once it has left."""
        if self.outbuf and not self.broken and not self.closed:
            self.manager.close_after_sending(self)
            return
        self.close_now()

    def close_now(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.manager.forget(self)
        try:
            super().close()
        except OSError as exc:
            logger.debug("closing a connection from %s failed: %s", self.remote_addr, exc)


def _no_file(sock: Any, mode: str, bufsize: int) -> None:
    """The base class's socket files are replaced by ``RequestReader`` and ``ParkingWriter``."""
    return None


class GuardedConnectionManager(ConnectionManager):
    """cheroot's selector loop, reading and sending for the workers (see the module docstring)."""

    # cheroot's own state, which its type stubs leave out.
    _selector: Any
    _stop_requested: bool
    _remove_invalid_sockets: Callable[[], None]

    def __init__(self, server: Any, limits: ClientLimits) -> None:
        super().__init__(server)
        self.limits = limits
        self._lock = threading.Lock()  # guards what follows: worker threads close connections too
        self._by_address: dict[Any, set[GuardedConnection]] = {}
        self._parked = 0
        self._cut: collections.Counter[str] = collections.Counter()
        self._cut_addresses: collections.Counter[Any] = collections.Counter()
        self._last_report = float("-inf")
        self._accept_paused_until = 0.0
        #: ``OUTPUT_BUDGET``, an attribute so that a test can make it small.
        self.output_budget = OUTPUT_BUDGET

    # --- called by worker threads -------------------------------------------------------

    def put(self, conn: GuardedConnection) -> None:
        """A worker is done with ``conn`` and keeps it open for its next request.

        cheroot calls this in its worker loop's ``finally``, where an exception would stop
        the whole server: a failure closes this one connection instead.
        """
        try:
            if conn.close_after_answer:
                conn.close()
            elif conn.outbuf:
                self._wait(conn, SENDING, selectors.EVENT_WRITE, time.monotonic() + self.limits.idle_timeout)
            else:
                self._next_request(conn)
        except Exception:
            logger.exception("a connection from %s could not be kept open", conn.remote_addr)
            conn.broken = True
            conn.close_now()

    def close_after_sending(self, conn: GuardedConnection) -> None:
        """Close ``conn`` once its parked answer has left (a worker's ``close``, same caveat as ``put``)."""
        conn.close_after_flush = True
        if self._stop_requested:  # the server is stopping: no one would send the rest
            conn.broken = True
            conn.close_now()
            return
        try:
            self._wait(conn, SENDING, selectors.EVENT_WRITE, time.monotonic() + self.limits.idle_timeout)
        except Exception:
            logger.exception("the answer to %s could not be finished", conn.remote_addr)
            conn.broken = True
            conn.close_now()

    def park(self, conn: GuardedConnection, data: memoryview) -> None:
        """Keep what the socket of ``conn`` did not take, within ``output_budget``."""
        with self._lock:
            over = self._parked > 0 and self._parked + len(data) > self.output_budget
            if not over:
                self._parked += len(data)
        if over:
            conn.broken = True
            self._note("answers cut over the output budget", conn.remote_addr)
            raise ConnectionAbortedError(errno.ECONNABORTED, "the output budget for slow readers is spent")
        conn.outbuf += data

    def forget(self, conn: GuardedConnection) -> None:
        """``conn`` is closed: drop it from the selector and the tallies."""
        if conn.registered:
            self._unregister(conn)
        with self._lock:
            self._parked -= len(conn.outbuf)
            same = self._by_address.get(conn.remote_addr)
            if same is not None:
                same.discard(conn)
                if not same:
                    del self._by_address[conn.remote_addr]
        conn.outbuf.clear()
        conn.inbuf.clear()

    # --- the selector thread ------------------------------------------------------------

    def _run(self, expiration_interval: float) -> None:
        last_check = time.monotonic()
        while not self._stop_requested:
            try:
                ready = list(self._selector.select(timeout=expiration_interval))
            except OSError:
                self._remove_invalid_sockets()
                continue
            for _fd, conn in ready:
                if conn is self.server:
                    self._accept()
                elif conn.closed or not conn.registered:
                    continue
                elif conn.state == SENDING:
                    self._send(conn)
                elif conn.state == HANDSHAKE:
                    self._handshake(conn)
                else:
                    self._receive(conn)
            now = time.monotonic()
            if self._accept_paused_until and now >= self._accept_paused_until:
                self._accept_paused_until = 0.0
                self._selector.register(self.server.socket.fileno(), selectors.EVENT_READ, data=self.server)
            if now - last_check > expiration_interval:
                self._expire(now)
                last_check = now
                self._report(now)

    def _accept(self) -> None:
        server = self.server
        try:
            sock, addr = server.socket.accept()
        except (TimeoutError, *_WOULD_BLOCK, ConnectionAbortedError):
            return
        except OSError as exc:  # out of file descriptors, most often
            self._note(f"connections not accepted ({exc.strerror})", None)
            self._make_room()
            return
        prevent_socket_inheritance(sock)
        tls = _tls_context(server.ssl_adapter)
        if tls is not None:
            sock.setblocking(False)
            try:
                sock = tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            except OSError as exc:  # the client is already gone
                logger.debug("a connection from %s closed before TLS: %s", addr, exc)
                sock.close()
                return
        conn = server.ConnectionClass(server, sock, self)
        if not isinstance(server.bind_addr, (str, bytes)):
            conn.remote_addr, conn.remote_port = (addr or ("0.0.0.0", 0))[:2]
        conn.ssl_env = {}
        if server.stats["Enabled"]:
            server.stats["Accepts"] += 1
        if not self._admit(conn):
            return
        conn.deadline = time.monotonic() + self.limits.request_timeout
        if tls is not None:
            self._wait(conn, HANDSHAKE, selectors.EVENT_READ, conn.deadline)
        else:
            self._receive(conn)  # the request has often arrived already: no round through select

    def _make_room(self) -> None:
        """Out of descriptors: close the longest-idle connection, or stop accepting for a
        moment (the listening socket would stay readable, and the loop would spin)."""
        held = [conn for _fd, conn in self._selector.connections if conn is not self.server]
        victim = min(filter(_idle, held), key=lambda c: c.deadline, default=None)
        if victim is not None:
            victim.close_now()
            return
        self._selector.unregister(self.server.socket.fileno())
        self._accept_paused_until = time.monotonic() + ACCEPT_PAUSE

    def _admit(self, conn: GuardedConnection) -> bool:
        """Count ``conn`` against its address's cap, closing that address's longest-idle
        connection to make room; False (and ``conn`` refused) when none is idle."""
        address = conn.remote_addr
        with self._lock:
            same = self._by_address.get(address, set())
            crowded = len(same) >= self.limits.max_per_address
            victim = min(filter(_idle, same), key=lambda c: c.deadline, default=None) if crowded else None
        if crowded and victim is None:
            self._note("connections refused over maxConnectionsPerAddress", address)
            error = FloatkeyError(
                "too_many_requests",
                f"This address has {self.limits.max_per_address} connections open, the most allowed;"
                " reuse one, or close one before opening another.",
            )
            self._refuse(conn, error)
            return False
        if victim is not None:
            self._note("idle connections closed to make room for another from their address", address)
            victim.close_now()
        with self._lock:
            self._by_address.setdefault(address, set()).add(conn)
        return True

    def _handshake(self, conn: GuardedConnection) -> None:
        try:
            conn.socket.do_handshake()
        except ssl.SSLWantReadError:
            self._wait(conn, HANDSHAKE, selectors.EVENT_READ, conn.deadline)
            return
        except ssl.SSLWantWriteError:
            self._wait(conn, HANDSHAKE, selectors.EVENT_WRITE, conn.deadline)
            return
        except OSError as exc:
            logger.debug("TLS handshake with %s failed: %s", conn.remote_addr, exc)
            conn.broken = True
            conn.close_now()
            return
        conn.ssl_env = self.server.ssl_adapter.get_environ(conn.socket)
        self._wait(conn, READING, selectors.EVENT_READ, conn.deadline)

    def _receive(self, conn: GuardedConnection) -> None:
        cap = self.limits.max_header_size + self.limits.max_body_size + READ_PIECE
        try:
            while True:
                data = conn.socket.recv(READ_PIECE)
                if not data:  # the client closed its side; nothing to answer
                    conn.broken = True
                    conn.close_now()
                    return
                self._took(conn, data)
                pending = getattr(conn.socket, "pending", None)
                if pending is None or not pending() or len(conn.inbuf) >= cap:
                    break
        except _WOULD_BLOCK:
            pass
        except OSError as exc:
            logger.debug("reading from %s failed: %s", conn.remote_addr, exc)
            conn.broken = True
            conn.close_now()
            return
        self._advance(conn)

    def _took(self, conn: GuardedConnection, data: bytes) -> None:
        if conn.first_byte_at is None:
            conn.first_byte_at = time.monotonic()
            conn.deadline = conn.first_byte_at + self.limits.request_timeout
        if conn.skip:
            dropped = min(conn.skip, len(data))
            conn.skip -= dropped
            data = data[dropped:]
        conn.inbuf += data

    def _advance(self, conn: GuardedConnection) -> None:
        """Hand ``conn`` to a worker if its request is whole, else wait for more bytes.

        Called by the connection's owner: the selector thread, or the worker handing it back.
        """
        if conn.framer.expects_continue:
            conn.framer.expects_continue = False
            self._send_interim(conn)
        if conn.skip:
            self._wait(conn, READING, selectors.EVENT_READ, conn.deadline)
            return
        if conn.skipped_head:
            head, conn.skipped_head = conn.skipped_head, b""
            self._dispatch(conn, head)
            return
        framing = conn.framer.check(conn.inbuf)
        if framing is None:
            if conn.framer.expects_continue:
                conn.framer.expects_continue = False
                self._send_interim(conn)
            self._wait(conn, READING, selectors.EVENT_READ, conn.deadline)
        else:
            self._act(conn, framing)

    def _act(self, conn: GuardedConnection, framing: Framing) -> None:
        action = framing.action
        if action is Action.REQUEST:
            request = bytes(conn.inbuf[: framing.end])
            del conn.inbuf[: framing.end]
            self._dispatch(conn, request)
        elif action is Action.DRAIN:
            conn.skipped_head = bytes(conn.inbuf[: framing.head_end])
            body = conn.inbuf[framing.head_end :]
            conn.inbuf.clear()
            conn.skip = framing.skip
            self._took(conn, bytes(body))
            self._advance(conn)
        elif action is Action.HEADERS_ONLY:
            request = bytes(conn.inbuf[: framing.head_end])
            conn.inbuf.clear()
            conn.close_after_answer = True
            self._dispatch(conn, request)
        elif action is Action.HEADERS_TOO_LARGE:
            self._note("requests refused over maxHeaderSize", conn.remote_addr)
            limit = self.limits.max_header_size
            if b"\r\n" not in conn.inbuf[:limit]:  # the request line alone is too long
                error = FloatkeyError(
                    "uri_too_long",
                    f"The request line is longer than {limit} bytes; send long values in a POST body.",
                )
            else:
                error = FloatkeyError(
                    "headers_too_large", f"The request line and headers are larger than {limit} bytes."
                )
            self._refuse(conn, error)
        else:
            limit = self.limits.max_body_size
            error = FloatkeyError("payload_too_large", f"The request body is larger than {limit} bytes.")
            self._refuse(conn, error)

    def _dispatch(self, conn: GuardedConnection, request: bytes) -> None:
        if conn.registered:
            self._unregister(conn)
        conn.state = WORKING
        conn.served = True
        conn.framer.reset()
        conn.first_byte_at = None
        conn.rfile.load(request)
        self.server.process_conn(conn)

    def _next_request(self, conn: GuardedConnection) -> None:
        now = time.monotonic()
        conn.state = READING
        conn.continue_sent = False
        if conn.inbuf:  # pipelined: the next request has begun
            conn.first_byte_at = now
            conn.deadline = now + self.limits.request_timeout
        else:
            conn.deadline = now + self.limits.idle_timeout
        pending = getattr(conn.socket, "pending", None)
        if pending is not None and pending():  # TLS: bytes the selector cannot see
            self._receive(conn)
        else:
            self._advance(conn)

    def _send(self, conn: GuardedConnection) -> None:
        try:
            sent = conn.send_some(memoryview(bytes(conn.outbuf[:SEND_PIECE])))
        except OSError as exc:
            logger.debug("sending to %s failed: %s", conn.remote_addr, exc)
            conn.close_now()
            return
        if sent:
            del conn.outbuf[:sent]
            with self._lock:
                self._parked -= sent
            conn.deadline = time.monotonic() + self.limits.idle_timeout
        if conn.outbuf:
            return
        if conn.close_after_flush:
            conn.close_now()
        else:
            self._unregister(conn)
            self._next_request(conn)

    def _send_interim(self, conn: GuardedConnection) -> None:
        """``100 Continue`` for a client that waits for it before sending its body."""
        try:
            conn.send_some(memoryview(b"HTTP/1.1 100 Continue\r\n\r\n"))
            conn.continue_sent = True
        except OSError:
            conn.close_now()

    def _expire(self, now: float) -> None:
        overdue = [
            conn
            for _fd, conn in self._selector.connections
            if conn is not self.server and conn.deadline < now
        ]
        for conn in overdue:
            if conn.state == SENDING:
                self._note("answers left unread for idleTimeout", conn.remote_addr)
                conn.broken = True
                conn.close_now()
            elif conn.first_byte_at is not None or conn.skip or conn.state == HANDSHAKE:
                self._note("requests not whole within requestTimeout", conn.remote_addr)
                limit = self.limits.request_timeout
                error = FloatkeyError(
                    "request_timeout", f"The request did not arrive whole within {limit:g} seconds."
                )
                self._refuse(conn, error)
            else:  # idle: nothing of a request arrived
                if not conn.served:
                    self._note("connections that sent nothing within requestTimeout", conn.remote_addr)
                conn.close_now()

    def _refuse(self, conn: GuardedConnection, error: FloatkeyError) -> None:
        """Answer ``error`` if the socket takes it now, and close: nothing waits on this client."""
        if conn.state != HANDSHAKE:
            try:
                conn.send_some(memoryview(_error_answer(error)))
                _drain(conn.socket)  # unread bytes would turn the close into a reset
            except OSError:
                pass
        conn.broken = True
        conn.close_now()

    def close(self) -> None:
        """Close every connection the selector holds (the server is stopping)."""
        held = [conn for _fd, conn in self._selector.connections if conn is not self.server]
        for conn in held:
            conn.broken = True
            conn.close_now()
        self._selector.close()

    # --- helpers ------------------------------------------------------------------------

    def _wait(self, conn: GuardedConnection, state: str, events: int, deadline: float) -> None:
        conn.state = state
        conn.deadline = deadline
        if conn.registered:
            if conn.events == events:
                return  # already waiting for that: spare the two system calls
            self._unregister(conn)
        conn.events = events
        self._selector.register(conn.socket.fileno(), events, data=conn)
        # Last: from here on the selector thread owns it and may close it (``_idle``).
        conn.registered = True

    def _unregister(self, conn: GuardedConnection) -> None:
        conn.registered = False
        with contextlib.suppress(KeyError, ValueError, OSError):  # already closed
            self._selector.unregister(conn.socket.fileno())

    def _note(self, what: str, address: Any) -> None:
        with self._lock:
            self._cut[what] += 1
            if address is not None:
                self._cut_addresses[address] += 1

    def _report(self, now: float) -> None:
        """One log line per ``REPORT_INTERVAL`` with what slow clients were denied."""
        if now - self._last_report < REPORT_INTERVAL:
            return
        with self._lock:
            cut, self._cut = self._cut, collections.Counter()
            addresses, self._cut_addresses = self._cut_addresses, collections.Counter()
        if not cut:
            return
        self._last_report = now
        counts = ", ".join(f"{n} {what}" for what, n in cut.most_common())
        top = ", ".join(f"{a} ({n})" for a, n in addresses.most_common(3))
        logger.warning("slow or idle clients: %s; most from %s", counts, top or "unknown addresses")


def _idle(conn: GuardedConnection) -> bool:
    """Held by the selector between requests, with nothing received, arriving or parked."""
    return (
        conn.registered
        and conn.state == READING
        and conn.first_byte_at is None
        and not conn.inbuf
        and not conn.skip
        and not conn.outbuf
        and not _bytes_waiting(conn.socket)
    )


def _bytes_waiting(sock: Any) -> bool:
    """Bytes have arrived that the selector thread has not read yet."""
    try:
        return bool(socket.socket.recv(sock, 1, socket.MSG_PEEK))  # the TCP bytes, even under TLS
    except _WOULD_BLOCK:
        return False
    except OSError:
        return True  # reset: the selector thread's next read closes it


def _tls_context(adapter: Any) -> ssl.SSLContext | None:
    if adapter is None:
        return None
    context = getattr(adapter, "context", None)
    if not isinstance(context, ssl.SSLContext):
        raise TypeError("floatkey's connection manager needs cheroot's builtin TLS adapter")
    return context


def _error_answer(error: FloatkeyError) -> bytes:
    body = json.dumps(error.to_dict()).encode()
    phrase = http.HTTPStatus(error.status).phrase
    head = (
        f"HTTP/1.1 {error.status} {phrase}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\nServer: floatkey/{__version__}\r\n\r\n"
    )
    return head.encode("ascii") + body


def _drain(sock: Any, most: int = 4 * READ_PIECE) -> None:
    """Read and drop what has already arrived, up to ``most`` bytes, without waiting."""
    while most > 0:
        try:
            data = sock.recv(READ_PIECE)
        except (*_WOULD_BLOCK, OSError):
            return
        if not data:
            return
        most -= len(data)


class GuardedServer(CPWSGIServer):
    """CherryPy's WSGI server with ``GuardedConnectionManager`` in place of cheroot's."""

    ConnectionClass = GuardedConnection
    _connections: Any  # cheroot's, left out of its type stubs
    #: cheroot closes a connection after its answer once 10 others wait in the selector,
    #: so that over ten keep-alive clients reconnect for nearly every request (an accept,
    #: a handshake and a new connection each, more CPU than the request). Here a waiting
    #: connection holds no thread, and the limits above (per address, idleTimeout, the
    #: file-descriptor guard) bound how many there are.
    keep_alive_conn_limit = None

    def __init__(self, limits: ClientLimits, server_adapter: Any = None) -> None:
        self.limits = limits
        super().__init__(server_adapter or cherrypy.server)
        # CherryPy's __init__ sets its own request class on the connection class: put ours
        # back (strict framing, cheroot's answers in the error shape; web/wire.py).
        self.ConnectionClass.RequestHandlerClass = FloatkeyRequest

    def prepare(self) -> None:
        raise_file_limit()
        super().prepare()
        plain: Any = self._connections
        self._connections = GuardedConnectionManager(self, self.limits)
        plain.close()  # it held nothing but the listening socket, now in the new selector


def raise_file_limit() -> int:
    """Raise the soft limit of open files to the hard one; the limit now in force.

    Every connection holds a descriptor, idle or not, and systemd's default soft limit
    (1024) would let a few addresses at ``maxConnectionsPerAddress`` take them all.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft == resource.RLIM_INFINITY or soft >= hard:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as exc:
        logger.warning("the open-file limit stays at %d (could not raise it to %d: %s)", soft, hard, exc)
        return soft
    logger.debug("open-file limit raised from %d to %d", soft, hard)
    return hard
