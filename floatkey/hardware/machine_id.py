"""The server's hardware ID when no hardware key stands in for it: derived from the machine."""

from __future__ import annotations

import hashlib
import socket
import uuid
from pathlib import Path

_MACHINE_ID_FILES = (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id"))


def machine_hardware_id() -> str:
    """A stable, opaque ID of this machine: a hash, so nothing of the machine is revealed."""
    source = ""
    for path in _MACHINE_ID_FILES:
        try:
            source = path.read_text(encoding="ascii").strip()
        except OSError:
            continue
        if source:
            break
    if not source:
        source = f"{socket.gethostname()}-{uuid.getnode():012x}"
    return hashlib.sha256(f"floatkey:{source}".encode()).hexdigest()[:32]
