"""Which hardware ID the server reports: a key's serial while a bound key is valid."""

from __future__ import annotations

from collections.abc import Collection, Sequence


def hardware_id(machine_id: str, valid_keys: Collection[str], bound_keys: Sequence[str]) -> str:
    """The server's identity now.

    ``bound_keys`` are the serials of the key-bound licenses in the order they were added.
    With no key-bound license, or no valid key, the machine's own ID stands. Otherwise the
    key of the earliest-added key-bound license that is valid now; failing that (a valid
    key no license is bound to), the valid key with the lowest serial.
    """
    if not bound_keys or not valid_keys:
        return machine_id
    for serial in bound_keys:
        if serial in valid_keys:
            return serial
    return min(valid_keys, key=lambda s: (len(s), s))
