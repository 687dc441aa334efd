"""Broadcast events to actors, after Mopidy's listener pattern.

An actor that wants events also subclasses a ``Listener`` class and overrides the
methods of the events it cares about. ``send`` calls ``on_event`` through a proxy of
every live actor of that class without waiting for the result: never ask inside a
broadcast, because the sender is often lower in the stack and blocking on a listener
deadlocks.
"""

from __future__ import annotations

import logging
from typing import Any

import pykka

logger = logging.getLogger(__name__)


class Listener:
    """Base of listener interfaces: one method per event, each a no-op by default."""

    def on_event(self, event: str, **kwargs: Any) -> None:
        getattr(self, event)(**kwargs)


def send(listener_cls: type[Listener], event: str, **kwargs: Any) -> None:
    """Deliver ``event(**kwargs)`` to every running actor that implements ``listener_cls``."""
    for ref in pykka.ActorRegistry.get_by_class(listener_cls):  # type: ignore[type-var]
        try:
            ref.proxy().on_event(event, **kwargs)
        except pykka.ActorDeadError:
            logger.debug("listener %s stopped before event %s", ref, event)
