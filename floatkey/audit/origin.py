"""Who is acting and through which route: what an audit record names as actor and route.

The CLI sets the origin for its command; code that sets nothing is a host process
embedding floatkey. A context variable carries it down to ``Floatkey`` and ``Accounts``
without a parameter on every method. The HTTP layer (web/audit.py) instead installs a
function that works out the origin of the request a thread serves when a record is made:
a request that records nothing (every client route) pays nothing for it.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass


@dataclass(frozen=True)
class Origin:
    #: A user name, ``open-mode <address>``, ``os:<login>`` (CLI), ``embedding`` or ``floatkey``.
    actor: str
    #: ``METHOD /path`` of the route, ``cli``, ``embedding`` or ``system``.
    route: str


EMBEDDING = Origin("embedding", "embedding")
#: Events floatkey raises itself (hardware keys, start-up, pruning).
SYSTEM = Origin("floatkey", "system")

_current: ContextVar[Origin | None] = ContextVar("floatkey_audit_origin", default=None)
#: The origin of the HTTP request this thread serves, or None outside one (web/audit.py).
_request_origin: Callable[[], Origin | None] | None = None


def current() -> Origin:
    """What was set in this context; else the request being served; else ``EMBEDDING``."""
    origin = _current.get()
    if origin is None and _request_origin is not None:
        origin = _request_origin()
    return EMBEDDING if origin is None else origin


def set_origin(origin: Origin) -> Token[Origin | None]:
    """Name ``origin`` from now on in this thread; ``reset_origin(token)`` undoes it."""
    return _current.set(origin)


def reset_origin(token: Token[Origin | None]) -> None:
    _current.reset(token)


def name_requests_with(request_origin: Callable[[], Origin | None] | None) -> None:
    """Install how the origin of the request a thread serves is worked out (None: not at all)."""
    global _request_origin
    _request_origin = request_origin


@contextmanager
def acting_as(origin: Origin) -> Iterator[Origin]:
    """Within the block, audit records name ``origin``."""
    token = _current.set(origin)
    try:
        yield origin
    finally:
        _current.reset(token)


def cli_origin() -> Origin:
    """The operator at the command line: their login name, as the system knows it."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = "unknown"
    return Origin(f"os:{login}", "cli")
