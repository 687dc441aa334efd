"""Broadcast events to actors, after Mopidy's listener pattern.

An actor that wants events also subclasses a ``Listener`` class and overrides the
methods of the events it cares about. ``send`` *tells* every live actor of that class to
run ``on_event``: never ask inside a broadcast, because the sender is often lower in the
stack and blocking on a listener deadlocks. With a tell there is no one to hand an error
back to, so ``on_event`` logs a failing event itself, with its traceback, at ERROR: a
listener that raises is heard of, and keeps running for the next event.
"""

from __future__ import annotations

import logging
from typing import Any

import pykka
from pykka.messages import ProxyCall

logger = logging.getLogger(__name__)


class Listener:
    """Base of listener interfaces: one method per event, each a no-op by default."""

    def on_event(self, event: str, **kwargs: Any) -> None:
        """Run the method of ``event``; an exception is logged here, never lost."""
        try:
            getattr(self, event)(**kwargs)
        except Exception:
            logger.exception("%s failed on event %s", type(self).__name__, event)


def send(listener_cls: type[Listener], event: str, **kwargs: Any) -> None:
    """Deliver ``event(**kwargs)`` to every running actor that implements ``listener_cls``."""
    if not callable(getattr(listener_cls, event, None)):
        raise ValueError(f"{listener_cls.__name__} has no event {event!r}")
    for ref in pykka.ActorRegistry.get_by_class(listener_cls):  # type: ignore[type-var]
        try:
            ref.tell(ProxyCall(attr_path=("on_event",), args=(event,), kwargs=kwargs))
        except pykka.ActorDeadError:
            logger.debug("listener %s stopped before event %s", ref, event)
