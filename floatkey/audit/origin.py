"""Who is acting and through which route: what an audit record names as actor and route.

The HTTP layer sets the origin for the length of a request (web/audit.py), the CLI for its
command; code that sets nothing is a host process embedding floatkey. A context variable
carries it down to ``Floatkey`` and ``Accounts`` without a parameter on every method.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
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

_current: ContextVar[Origin] = ContextVar("floatkey_audit_origin", default=EMBEDDING)


def current() -> Origin:
    return _current.get()


def set_origin(origin: Origin) -> Token[Origin]:
    """Name ``origin`` from now on in this thread; ``reset_origin(token)`` undoes it."""
    return _current.set(origin)


def reset_origin(token: Token[Origin]) -> None:
    _current.reset(token)


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
