"""The route table: every HTTP route, its handler, the role it needs and its schemas.

One table serves dispatch, authorization (the authentication tool reads ``role``) and
the OpenAPI document, so the three cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: Who may call a route in authentication mode.
PUBLIC, USER, ADMIN = "public", "user", "admin"


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
    #: A Bearer token other than a user's that the route also accepts in authentication
    #: mode, checked in constant time (the scrape token of /metrics); None: none.
    token_check: Callable[[str], bool] | None = None

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
        return sorted(methods)
