"""The PC/SC adapter: connections to cards, their errors, and the reader watcher's calls.

``PCSCLITE_NO_BLOCKING=1`` is set before libpcsclite loads, so that a transmit on a card
another process holds in a transaction fails at once instead of waiting for it. Cards
are disconnected with ``SCARD_LEAVE_CARD``, never reset: pcsc-lite 1.9.9 then loses
sight of a re-plugged card for seconds.
"""

from __future__ import annotations

import os

# Before libpcsclite is loaded: transmits in a transaction held by another process fail at once.
os.environ.setdefault("PCSCLITE_NO_BLOCKING", "1")

from smartcard import scard as scard

from floatkey.errors import FloatkeyError

BUSY_MESSAGE = (
    "Another process holds the smart card reader of the hardware key; run `floatkey doctor` to see which."
)
SCARD_E_SHARING_VIOLATION = 0x8010000B
SCARD_E_TIMEOUT = 0x8010000A


def reader_busy() -> FloatkeyError:
    """The error of an action whose key is held by another process."""
    return FloatkeyError("hardware_key_reader_busy", BUSY_MESSAGE)


class PcscError(Exception):
    """A PC/SC call failed; ``hresult`` is the pcsc-lite error code."""

    def __init__(self, hresult: int) -> None:
        self.hresult = hresult & 0xFFFFFFFF
        super().__init__(f"{scard.SCardGetErrorMessage(hresult)} (0x{self.hresult:08X})")


class CardLink:
    """An open exclusive connection to one card, with a PC/SC context of its own."""

    def __init__(self, context: int, card: int, protocol: int) -> None:
        self.context = context
        self.card = card
        self.protocol = protocol

    def transmit(self, command: bytes) -> tuple[bytes, int]:
        hresult, response = scard.SCardTransmit(self.card, self.protocol, list(command))
        if hresult != scard.SCARD_S_SUCCESS:
            raise PcscError(hresult)
        if len(response) < 2:
            raise PcscError(scard.SCARD_F_COMM_ERROR)
        return bytes(response[:-2]), (response[-2] << 8) | response[-1]

    def close(self) -> None:
        """Disconnect leaving the card as it is (never reset: see the module docstring)."""
        scard.SCardDisconnect(self.card, scard.SCARD_LEAVE_CARD)
        scard.SCardReleaseContext(self.context)


def open_link(reader: str) -> tuple[CardLink | None, int]:
    """Connect to ``reader`` exclusively. Blocks while another process holds a transaction."""
    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        return None, hresult
    hresult, card, protocol = scard.SCardConnect(
        context,
        reader,
        scard.SCARD_SHARE_EXCLUSIVE,
        scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
    )
    if hresult != scard.SCARD_S_SUCCESS:
        scard.SCardReleaseContext(context)
        return None, hresult
    return CardLink(context, card, protocol), hresult
