"""Where an HTTP/1.1 request ends in the bytes received so far: the framing rules, no sockets.

The selector thread (web/connections.py) reads a connection's bytes into a buffer and
asks a ``Framer`` after each read whether a whole request is there yet. The framer only
finds the request's end (the blank line after the headers, then ``Content-Length`` bytes
or the chunks of a chunked body); cheroot still parses and validates the request in the
worker. Each check resumes where the previous one stopped, so a client that trickles its
request byte by byte costs a constant amount of work per byte, not a rescan.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Action(enum.Enum):
    #: ``buf[:end]`` is one whole request: hand it to a worker.
    REQUEST = "request"
    #: ``buf[:head_end]`` are the headers of a body over ``max_body`` but under the drain
    #: limit: read and drop ``skip`` more bytes, then hand the headers alone to a worker,
    #: which answers 413 (the client reads the answer instead of a reset).
    DRAIN = "drain"
    #: Hand ``buf[:head_end]`` to a worker now and close the connection after its answer:
    #: the body is too large to drain, or its length cannot be known (cheroot answers 400).
    HEADERS_ONLY = "headers_only"
    #: The request line and headers are over ``max_header``: answer 431 and close.
    HEADERS_TOO_LARGE = "headers_too_large"
    #: A chunked body over ``max_body``: answer 413 and close.
    BODY_TOO_LARGE = "body_too_large"


@dataclass(frozen=True)
class Framing:
    action: Action
    head_end: int = 0
    end: int = 0
    skip: int = 0


#: Longest chunk-size line (hex digits and extensions) accepted while looking for its end.
_CHUNK_LINE = 1024
#: A chunked body may take this many times ``max_body`` on the wire, framing included.
_CHUNKED_OVERHEAD = 2


class Framer:
    """The framing state of the request being received on one connection.

    ``check`` is called with the connection's whole buffer, which only grows between
    calls until a request is taken out of it; ``reset`` then starts the next request.
    """

    def __init__(self, max_header: int, max_body: int, drain_limit: int) -> None:
        self.max_header = max_header
        self.max_body = max_body
        self.drain_limit = drain_limit
        self.reset()

    def reset(self) -> None:
        self._scanned = 0  # where the search for the end of the headers resumes
        self.head_end = 0  # 0 until the headers are complete
        self._chunked = False
        self._length = 0
        self._chunk_pos = 0  # start of the next chunk-size line (chunked bodies)
        self._chunk_total = 0
        self._trailers = False
        #: The client sent ``Expect: 100-continue`` and waits for an interim answer.
        self.expects_continue = False

    def check(self, buf: bytes | bytearray) -> Framing | None:
        """What to do with ``buf`` now; None: wait for more bytes."""
        if not self.head_end:
            head = self._find_head_end(buf)
            if head is not None:
                return head
            if not self.head_end:
                return None
        if self._chunked:
            return self._check_chunks(buf)
        end = self.head_end + self._length
        if len(buf) >= end:
            return Framing(Action.REQUEST, self.head_end, end)
        return None

    def _find_head_end(self, buf: bytes | bytearray) -> Framing | None:
        start = max(0, self._scanned - 3)
        end = buf.find(b"\r\n\r\n", start, self.max_header + 4)
        if end >= 0:
            end += 4
        else:
            # cheroot refuses bare-LF requests with 400; let it say so rather than wait.
            end = buf.find(b"\n\n", start, self.max_header + 2)
            if end >= 0:
                end += 2
        if end < 0:
            self._scanned = len(buf)
            if len(buf) > self.max_header:
                return Framing(Action.HEADERS_TOO_LARGE)
            return None
        self.head_end = end
        return self._read_head(bytes(buf[:end]).lower())

    def _read_head(self, head: bytes) -> Framing | None:
        """Learn the body's framing from the headers; a Framing when it settles the request."""
        self.expects_continue = _field(head, b"\nexpect:") == b"100-continue"
        encoding = _field(head, b"\ntransfer-encoding:")
        if encoding is not None:
            if encoding.rsplit(b",", 1)[-1].strip() != b"chunked":
                return Framing(Action.HEADERS_ONLY, self.head_end)  # cheroot answers 501/400
            self._chunked = True
            self._chunk_pos = self.head_end
        else:
            length = _field(head, b"\ncontent-length:")
            if length is not None:
                if not length.isdigit():
                    return Framing(Action.HEADERS_ONLY, self.head_end)  # cheroot answers 400
                self._length = int(length)
                if self._length > self.drain_limit:
                    return Framing(Action.HEADERS_ONLY, self.head_end)
                if self._length > self.max_body:
                    return Framing(Action.DRAIN, self.head_end, skip=self._length)
        self.expects_continue = self.expects_continue and (self._chunked or self._length > 0)
        return None

    def _check_chunks(self, buf: bytes | bytearray) -> Framing | None:
        if len(buf) - self.head_end > _CHUNKED_OVERHEAD * self.max_body + _CHUNK_LINE:
            # Tiny chunks with long extensions: a body within the limit in bytes without end.
            return Framing(Action.BODY_TOO_LARGE, self.head_end)
        pos = self._chunk_pos
        while True:
            eol = buf.find(b"\r\n", pos, pos + _CHUNK_LINE)
            if eol < 0:
                if len(buf) - pos > _CHUNK_LINE:
                    return Framing(Action.HEADERS_ONLY, self.head_end)  # cheroot answers 400
                self._chunk_pos = pos
                return None
            if self._trailers:
                if eol == pos:  # the blank line that ends the trailers
                    return Framing(Action.REQUEST, self.head_end, eol + 2)
                pos = eol + 2
                continue
            size_field = bytes(buf[pos:eol]).split(b";", 1)[0].strip()
            try:
                size = int(size_field, 16)
            except ValueError:
                return Framing(Action.HEADERS_ONLY, self.head_end)  # cheroot answers 400
            if size == 0:
                self._trailers = True
                pos = eol + 2
                continue
            if size < 0 or self._chunk_total + size > self.max_body:
                return Framing(Action.BODY_TOO_LARGE, self.head_end)
            following = eol + 2 + size + 2
            if following > len(buf):
                self._chunk_pos = pos
                return None
            self._chunk_total += size
            pos = following


def _field(head: bytes, name: bytes) -> bytes | None:
    """The value of header ``name`` (lowercase, with its leading newline and colon) in ``head``."""
    start = head.find(name)
    if start < 0:
        return None
    start += len(name)
    end = head.find(b"\n", start)
    return head[start:end].strip()
