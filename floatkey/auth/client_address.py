"""Which address a request comes from, behind trusted reverse proxies.

Login throttling counts failures per client address. Behind a reverse proxy every TCP
peer is the proxy, so the proxy's ``X-Forwarded-For`` names the client instead, but only
when the peer is a proxy the configuration trusts: anyone else can write that header.
Each proxy appends the address it saw to the right, so the client is the rightmost
address that is not itself a trusted proxy; what lies left of it came from the client
and proves nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """``["10.0.0.5", "fd00::/8"]`` as networks; ValueError names an entry that is neither."""
    found = []
    for entry in entries:
        try:
            found.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or network") from None
    return tuple(found)


def client_address(peer: str, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The TCP ``peer``, or the client a trusted proxy names in ``forwarded_for``."""
    if not trusted or not forwarded_for or not _is_trusted(_ip(peer), trusted):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",")]
    for hop in reversed(hops):
        ip = _ip(hop)
        if ip is None:
            return peer  # a trusted proxy wrote something that is not an address
        if not _is_trusted(ip, trusted):
            return hop
    return hops[0]


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _is_trusted(ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None, trusted: Sequence[Network]) -> bool:
    return ip is not None and any(ip in network for network in trusted)
