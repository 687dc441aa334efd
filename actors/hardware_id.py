"""HardwareIdActor: follows key and license events and keeps the server's hardware ID.

It learns which keys are valid from the hardware-key actor's broadcasts and which keys
licenses are bound to from the directory's, applies ``floatkey.hardware.hardware_id`` and logs every
change. Start it before the hardware-key actor so it hears every key that is found.
"""

from __future__ import annotations

import logging

import pykka

from floatkey.actors.directory import DirectoryListener
from floatkey.hardware.hardware_id import hardware_id
from floatkey.hardware.listener import HardwareKeyListener

logger = logging.getLogger(__name__)


class HardwareIdHolder:
    """Where the identity actor publishes the current hardware ID for request threads."""

    def __init__(self, machine_id: str) -> None:
        self.current = machine_id


class HardwareIdActor(pykka.ThreadingActor, HardwareKeyListener, DirectoryListener):
    def __init__(self, machine_id: str, holder: HardwareIdHolder, bound_keys: list[str]) -> None:
        super().__init__()
        self._machine_id = machine_id
        self._holder = holder
        self._valid: set[str] = set()
        self._bound = list(bound_keys)

    def key_connected(self, serial: str, reader: str) -> None:
        self._valid.add(serial)
        self._update()

    def key_disconnected(self, serial: str, reader: str) -> None:
        self._valid.discard(serial)
        self._update()

    def licenses_changed(self, key_serials: list[str]) -> None:
        self._bound = list(key_serials)
        self._update()

    def _update(self) -> None:
        new = hardware_id(self._machine_id, self._valid, self._bound)
        if new == self._holder.current:
            return
        if new == self._machine_id:
            logger.info("hardware ID is the machine's again: %s", new)
        else:
            logger.info("hardware ID is now the serial of hardware key %s", new)
        self._holder.current = new
