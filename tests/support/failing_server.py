"""``floatkey serve`` with one more route that always fails, to test the 500 path.

Run as ``python -m tests.support.failing_server serve ...`` (``ServerProcess(...,
module="tests.support.failing_server")``). Production code has no such route and no hook
for it: this module adds it through ``mount``'s ``extra_routes``.
"""

from __future__ import annotations

import sys
from typing import Any

import cherrypy

from floatkey.app.cli import main
from floatkey.web import serve
from floatkey.web.routes import PUBLIC, USER, Route

#: GET or POST here raises a RuntimeError in the handler: the server answers 500.
FAIL_PATH = "/test/fail"
#: The same for a logged-in user (authentication mode): the token has been checked.
FAIL_AS_USER_PATH = "/test/fail-as-user"


def fail(*_args: Any) -> Any:
    raise RuntimeError("deliberate failure of the test route")


def _failing_routes() -> list[Route]:
    return [
        Route("GET", FAIL_PATH, fail, PUBLIC, "Always fails (tests only)"),
        Route("POST", FAIL_PATH, fail, PUBLIC, "Always fails (tests only)"),
        Route("GET", FAIL_AS_USER_PATH, fail, USER, "Always fails (tests only)"),
    ]


_mount = serve.mount


def _mount_with_failing_routes(
    fk: Any, settings: Any, extra_routes: list[Route] | None = None, extra_config: Any = None
) -> cherrypy.Application:
    return _mount(fk, settings, [*(extra_routes or []), *_failing_routes()], extra_config)


serve.mount = _mount_with_failing_routes

if __name__ == "__main__":
    sys.exit(main())
