"""The events of the hardware-key subsystem, for actors that follow keys coming and going."""

from __future__ import annotations

from floatkey import listener


class HardwareKeyListener(listener.Listener):
    """Events of the hardware-key actor. A key is connected while it is valid."""

    def key_connected(self, serial: str, reader: str) -> None:
        """A valid key with this serial is now present in ``reader``."""

    def key_disconnected(self, serial: str, reader: str) -> None:
        """The key with this serial in ``reader`` was pulled out or stopped being valid."""

    def key_invalid(self, serial: str | None, reader: str, reason: str | None) -> None:
        """The card in ``reader`` was found not to be a valid key (``reason`` says why)."""
