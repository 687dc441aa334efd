"""``floatkey doctor``: what the PC/SC stack sees, which key is valid, who holds the reader.

It prints whether the PC/SC service answers, every reader and card (ATR), for each card its
PIV serial and whether it is a valid key (and why not), and, on Linux, every process
connected to pcscd's socket: pcscd does not say which client owns a card, so the processes
connected to it are the suspects. The PIN comes from ``--pin-file``, the configuration, or
the environment variable ``FLOATKEY_PIV_PIN``; it is never printed. With ``--config`` it
follows the server's rules for the PIN: only to ``pinSerials``, and never to a key that
already refused it (``refused-pins.json`` in ``dataDir``, read, never written). A running
floatkey server holds its keys exclusively, so stop it to diagnose its keys.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509

from floatkey.app.config import HardwareKeySettings
from floatkey.errors import ConfigError
from floatkey.hardware import piv
from floatkey.hardware.pcsc import (
    SCARD_E_SHARING_VIOLATION,
    CardLink,
    PcscError,
    open_link,
    scard,
)
from floatkey.hardware.pin import read_pin
from floatkey.hardware.refused_pins import FILE_NAME as REFUSED_PINS_FILE
from floatkey.hardware.refused_pins import RefusedPins

PCSCD_SOCKET = "/run/pcscd/pcscd.comm"
MACOS_GUIDANCE = (
    "macOS: list the processes using the smart card with `lsof | grep -i -e ctkd -e pcsc`\n"
    "  (or `sudo lsof -U | grep -i smartcard`), and test the stack with `pcsctest`."
)
WINDOWS_GUIDANCE = (
    'Windows: check the "Smart Card" service (SCardSvr) in Task Manager > Services or with\n'
    "  `sc query SCardSvr`; find the process holding the card with Sysinternals Process\n"
    "  Explorer (Find > Find Handle or DLL: WinSCard)."
)

Printer = Callable[[str], None]


def parse_ss_peers(text: str, socket_path: str = PCSCD_SOCKET) -> list[int]:
    """Peer inodes of the server-side sockets of ``socket_path`` in ``ss -xp`` output.

    Server-side lines carry the socket path, then the local inode, then ``*`` and the peer
    inode: the client's end of the connection, which /proc/*/fd links name ``socket:[N]``.
    """
    peers = []
    for line in text.splitlines():
        tokens = line.split()
        if socket_path not in tokens:
            continue
        i = tokens.index(socket_path)
        if i + 3 < len(tokens) and tokens[i + 3].isdigit() and tokens[i + 3] != "0":
            peers.append(int(tokens[i + 3]))
    return peers


def socket_owners(inodes: set[int], proc: Path = Path("/proc")) -> dict[int, list[int]]:
    """pid -> the inodes among ``inodes`` that the process has open as sockets."""
    owners: dict[int, list[int]] = {}
    pattern = re.compile(r"socket:\[(\d+)\]")
    for fd_dir in proc.glob("[0-9]*/fd"):
        found = [int(m.group(1)) for link in _links(fd_dir) if (m := pattern.fullmatch(link))]
        hits = [i for i in found if i in inodes]
        if hits:
            owners[int(fd_dir.parent.name)] = hits
    return owners


def _links(fd_dir: Path) -> list[str]:
    """Targets of a process's fd links; fds closed while we look are skipped."""
    try:
        entries = list(fd_dir.iterdir())
    except OSError:
        return []
    links = []
    for entry in entries:
        try:
            links.append(os.readlink(entry))
        except OSError:
            continue
    return links


def describe_process(pid: int, proc: Path = Path("/proc")) -> str:
    """``pid 123 (name): command line`` for a person."""
    try:
        raw = (proc / str(pid) / "cmdline").read_bytes()
        cmdline = raw.replace(b"\0", b" ").decode(errors="replace").strip()
        name = (proc / str(pid) / "comm").read_text().strip()
    except OSError:
        return f"pid {pid} (gone)"
    return f"pid {pid} ({name}): {cmdline}"


def process_name(pid: int, proc: Path = Path("/proc")) -> str:
    """``pid 123 (name)``: without the command line, which may hold another program's secret."""
    try:
        name = (proc / str(pid) / "comm").read_text().strip()
    except OSError:
        return f"pid {pid} (gone)"
    return f"pid {pid} ({name})"


def pcscd_clients(
    socket_path: str = PCSCD_SOCKET, describe: Callable[[int], str] = describe_process
) -> list[str] | None:
    """Processes connected to pcscd (Linux), or None when ``ss`` is not available."""
    try:
        text = subprocess.run(["ss", "-xp"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    owners = socket_owners(set(parse_ss_peers(text, socket_path)))
    return [describe(pid) for pid in sorted(owners)]


def findings(ignore: tuple[str, ...] = ()) -> dict[str, Any]:
    """What ``floatkey doctor`` finds without touching a card, for the server's admin route.

    The PC/SC service, every reader with its card's presence and ATR (read from pcscd's
    reader states: no card is connected, so the server's own exclusive links and key checks
    are undisturbed), and the processes connected to pcscd by pid and name. Which key is
    valid, and why not, is the server's own ``GET /api/v4/hardware_key``.
    """
    lines: list[str] = []
    readers = _readers(lines.append)
    clients = pcscd_clients(describe=process_name) if platform.system() == "Linux" else None
    return {
        "pcsc": "running" if readers is not None else "unavailable",
        "pcsc_detail": lines[0] if lines else "",
        "readers": [
            {
                "name": name,
                "card_present": present,
                "atr": atr.hex(" ").upper() if present and atr else None,
                "ignored": any(i in name for i in ignore),
            }
            for name, present, atr in readers or []
        ],
        "pcscd_clients": clients,
    }


def _connect_bounded(reader: str, timeout: float) -> tuple[CardLink | None, str | None]:
    """Open ``reader`` exclusively within ``timeout``; (link, None) or (None, why not)."""
    result: list[tuple[CardLink | None, int]] = []
    lock = threading.Lock()
    abandoned = threading.Event()

    def work() -> None:
        link, hresult = open_link(reader)
        with lock:
            if abandoned.is_set():
                if link is not None:
                    link.close()
                return
            result.append((link, hresult))

    thread = threading.Thread(target=work, name=f"doctor-connect-{reader}", daemon=True)
    thread.start()
    thread.join(timeout)
    with lock:
        if not result:
            abandoned.set()
    if not result:
        return None, "another process holds a transaction on the card (connect timed out)"
    link, hresult = result[0]
    if link is not None:
        return link, None
    if hresult & 0xFFFFFFFF == SCARD_E_SHARING_VIOLATION:
        return None, "another process holds the card exclusively"
    return None, f"cannot connect: {PcscError(hresult)}"


def _check_card(
    reader: str, ca: x509.Certificate | None, pin: str | None, timeout: float, out: Printer, rules: _PinRules
) -> bool:
    link, why = _connect_bounded(reader, timeout)
    if link is None:
        out(f"    key: not checked: {why}")
        return False
    try:
        refused = (
            (lambda serial: rules.refused.refused(serial, pin)) if pin is not None else piv.never_refused
        )
        verdict = piv.validate(link.transmit, ca, pin, refused, rules.serials)
    except PcscError as exc:
        out(f"    key: card stopped answering: {exc}")
        return False
    finally:
        link.close()
    serial = verdict.serial or "unknown"
    if verdict.valid:
        out(f"    key: serial {serial}, VALID")
    else:
        out(f"    key: serial {serial}, NOT VALID: {verdict.reason}")
    return verdict.valid


def _readers(out: Printer) -> list[tuple[str, bool, bytes]] | None:
    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        out(f"PC/SC service: NOT RUNNING ({scard.SCardGetErrorMessage(hresult)})")
        return None
    try:
        hresult, names = scard.SCardListReaders(context, [])
        if hresult == scard.SCARD_E_NO_READERS_AVAILABLE or (hresult == scard.SCARD_S_SUCCESS and not names):
            out("PC/SC service: running")
            return []
        if hresult != scard.SCARD_S_SUCCESS:
            out(f"PC/SC service: NOT ANSWERING ({scard.SCardGetErrorMessage(hresult)})")
            return None
        out("PC/SC service: running")
        hresult, states = scard.SCardGetStatusChange(
            context, 0, [(n, scard.SCARD_STATE_UNAWARE) for n in names]
        )
        if hresult != scard.SCARD_S_SUCCESS:
            return [(n, False, b"") for n in names]
        return [(n, bool(ev & scard.SCARD_STATE_PRESENT), bytes(atr)) for n, ev, atr in states]
    finally:
        scard.SCardReleaseContext(context)


class _PinRules:
    """The server's rules for sending the PIN: allowed serials and PINs keys refused."""

    def __init__(self, serials: tuple[str, ...], refused: RefusedPins) -> None:
        self.serials = frozenset(serials) or None
        self.refused = refused


def _settings(args: argparse.Namespace) -> tuple[HardwareKeySettings, _PinRules]:
    settings = HardwareKeySettings()
    refused = RefusedPins(None)
    if args.config is not None:
        from floatkey.app.config import load

        loaded = load(args.config)
        settings = loaded.hardware_key
        refused = RefusedPins(loaded.data_dir / REFUSED_PINS_FILE, read_only=True)
    return settings, _PinRules(settings.pin_serials, refused)


def _pin(args: argparse.Namespace, settings: HardwareKeySettings) -> str | None:
    return read_pin(settings, args.pin_file)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="floatkey doctor", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="floatkey configuration file (YAML)")
    parser.add_argument("--ca", type=Path, help="vendor CA certificate the keys must chain to")
    parser.add_argument("--pin-file", type=Path, help="file holding the keys' PIN")
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds to wait for a card (default: hardwareKey.pcscTimeout)",
    )
    return parser


def main(argv: list[str] | None = None, out: Printer = print) -> int:
    """Print the diagnosis; 0 when PC/SC runs, a valid key is there and no card fails."""
    args = _parser().parse_args(argv)
    settings, rules = _settings(args)
    ca_path = args.ca or settings.ca_certificate
    ca = None
    if ca_path is not None:
        from floatkey.hardware.ca import load_certificate

        ca = load_certificate(ca_path)
    try:
        pin = _pin(args, settings)
    except ConfigError as exc:
        out(f"floatkey doctor: {exc}")
        return 2
    timeout = args.timeout or settings.pcsc_timeout
    healthy = _report_cards(ca, pin, timeout, settings.ignore_readers, out, rules)
    _report_clients(out)
    return 0 if healthy else 1


def _report_cards(
    ca: x509.Certificate | None,
    pin: str | None,
    timeout: float,
    ignore: tuple[str, ...],
    out: Printer,
    rules: _PinRules,
) -> bool:
    readers = _readers(out)
    if readers is None:
        out("  Start it: `sudo systemctl start pcscd` (or `pcscd --foreground`).")
        return False
    out(
        f"CA: {'configured' if ca is not None else 'none (any PIV key counts)'}; "
        f"PIN: {'configured' if pin is not None else 'none (sign without VERIFY)'}"
    )
    if not readers:
        out("Readers: none (is the key plugged in?)")
        return False
    healthy, valid = True, 0
    for name, present, atr in readers:
        ignored = ""
        if any(i in name for i in ignore):
            ignored = " (ignored by hardwareKey.ignoreReaders)"
        out(f"Reader: {name}{ignored}")
        if not present:
            out("    card: none")
            continue
        out(f"    card: ATR {atr.hex(' ').upper()}")
        if not ignored:
            ok = _check_card(name, ca, pin, timeout, out, rules)
            healthy, valid = healthy and ok, valid + ok
    if not valid:
        out("No valid hardware key found.")
    return healthy and valid > 0


def _report_clients(out: Printer) -> None:
    system = platform.system()
    if system == "Darwin":
        out(MACOS_GUIDANCE)
        return
    if system == "Windows":
        out(WINDOWS_GUIDANCE)
        return
    clients = pcscd_clients()
    if clients is None:
        out("Processes connected to pcscd: unknown (`ss` from iproute2 is not installed)")
        return
    out(f"Processes connected to pcscd ({PCSCD_SOCKET}): {len(clients)}")
    for line in clients:
        out(f"    {line}")
