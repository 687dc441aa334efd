"""Open mode: admin routes answer only clients of ``adminNetworks``.

Open mode has no login, so without this anyone who reaches the port could add and
remove licenses and free every seat. Client routes stay open as V1's are; the admin
routes (role ``admin`` in the route table) answer only addresses in ``adminNetworks``
(loopback by default). The address is the one ``request_log`` worked out: the TCP peer,
or behind a trusted reverse proxy (``auth.trustedProxies``) the client it names.
Authentication mode does not use this tool: the admin role decides there.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence

import cherrypy

from floatkey.auth.client_address import Network
from floatkey.errors import FloatkeyError
from floatkey.web import request_log
from floatkey.web.routes import ADMIN, Route
from floatkey.web.server import JsonError

logger = logging.getLogger(__name__)


def allowed(address: str, networks: Sequence[Network]) -> bool:
    """Whether ``address`` lies in one of ``networks`` (an IPv4-mapped IPv6 address counts as IPv4)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


def require_admin_network(networks: Sequence[Network] = ()) -> None:
    """Tool: refuse an admin route to a client outside ``networks`` (open mode only)."""
    route: Route | None = getattr(cherrypy.serving.request, "floatkey_route", None)
    if route is None or route.role != ADMIN:
        return
    address = request_log.client()
    if allowed(address, networks):
        return
    logger.warning(
        "admin route %s %s refused to %s (not in adminNetworks)", route.method, route.path, address
    )
    raise JsonError(outside_admin_networks(address))


def outside_admin_networks(address: str) -> FloatkeyError:
    return FloatkeyError(
        "forbidden",
        f"Admin routes answer only clients in adminNetworks, and {address} is not in them; "
        "call from the server itself or add your network to adminNetworks in the configuration "
        "(or use authentication mode).",
    )
