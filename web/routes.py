"""The route table: every HTTP route, its handler, the role it needs and its schemas.

One table serves dispatch, authorization (the authentication tool reads ``role``) and
the OpenAPI document, so the three cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from floatkey.auth import passwords
from floatkey.errors import FloatkeyError

#: Who may call a route in authentication mode.
#: Who may call a route: anyone, or the roles of authentication mode (floatkey/auth/passwords.py).
PUBLIC = "public"
USER, ADMIN = passwords.USER, passwords.ADMIN
#: Every API route but the V1 login lives under this prefix.
V4 = "/api/v4"


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Callable[..., Any]
    role: str
    summary: str
    #: JSON schema of the request body (POST), or of the query parameters (GET/DELETE).
    request: dict[str, Any] | None = None
    #: JSON schema of the 2xx answer; a string schema means a text/plain body.
    response: dict[str, Any] = field(default_factory=lambda: {"type": "object"})
    status: int = 200
    tags: tuple[str, ...] = ()
    #: A GET that changes state (V1 shapes): a web page must not be able to trigger it (guards.py).
    changes_state: bool = False
    #: A GET that changes nothing: HEAD answers it without the body. A GET that changes
    #: state (the V1 shapes ``addProduct``, ``unregister/all``...) refuses HEAD with 405.
    head: bool = False
    #: A Bearer token other than a user's that the route also accepts in authentication
    #: mode, checked in constant time (the scrape token of /metrics); None: none.
    token_check: Callable[[str], bool] | None = None
    #: The body is a file (any media type, or multipart), not JSON: the handler gets it as
    #: ``{"file": bytes}`` (web/upload.py).
    file_body: bool = False

    @property
    def pattern(self) -> re.Pattern[str]:
        return _compile(self.path)


def _compile(path: str) -> re.Pattern[str]:
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", re.escape(path).replace(r"\{", "{").replace(r"\}", "}"))
    return re.compile(f"^{regex}$")


class RouteTable:
    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes
        self._exact: dict[tuple[str, str], Route] = {}
        self._patterns: list[tuple[re.Pattern[str], Route]] = []
        for route in routes:
            if "{" in route.path:
                self._patterns.append((route.pattern, route))
            else:
                self._exact[(route.method, route.path)] = route

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """The route for ``method path`` with its path parameters, and whether the path exists."""
        if method == "HEAD":
            route, params, known = self.match("GET", path)
            if route is not None and not route.head:
                return None, {}, True
            return route, params, known
        if len(path) > 1:
            path = path.rstrip("/")
        route = self._exact.get((method, path))
        if route is not None:
            return route, {}, True
        known = any(p == path for (_, p) in self._exact)
        for pattern, candidate in self._patterns:
            found = pattern.match(path)
            if found:
                if candidate.method == method:
                    return candidate, found.groupdict(), True
                known = True
        return None, {}, known

    def allowed_methods(self, path: str) -> list[str]:
        methods = {m for (m, p) in self._exact if p == path.rstrip("/") or p == path}
        methods |= {r.method for pattern, r in self._patterns if pattern.match(path)}
        if self.match("HEAD", path)[0] is not None:
            methods.add("HEAD")
        return sorted(methods)


def path_params(route: Route, raw_path: str) -> dict[str, str]:
    """The path parameters of ``route`` read from the request's path as the client sent it.

    Each segment is percent-decoded once, as UTF-8: ``a%2Fb`` is ``a/b`` and ``a%252Fb``
    is ``a%2Fb``. The server's decoded path cannot tell these apart (it keeps ``%2F``
    encoded so that segments stay apart), so every name a client can percent-encode
    reaches the handler as it was meant.
    """
    segments = raw_path.split("/")
    params = {}
    for index, part in enumerate(route.path.split("/")):
        if part.startswith("{") and part.endswith("}"):
            name = part[1:-1]
            try:
                params[name] = unquote(segments[index], errors="strict")
            except UnicodeDecodeError:
                raise FloatkeyError(
                    "validation_error",
                    f"The path parameter {name!r} is not UTF-8 once percent-decoded; "
                    "percent-encode the UTF-8 bytes of the value.",
                ) from None
    return params
