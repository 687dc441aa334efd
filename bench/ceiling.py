"""The ceiling of the register benchmark: a bare CherryPy handler that parses the JSON body and answers
a small JSON object, on the same server settings (thread pool, socket queue, logging off,
CPU pinning, keep-alive connections never closed for being many) as floatkey.

    python -m bench.ceiling --port 0 --thread-pool 64 --cpu-affinity auto

It prints ``ceiling listening on http://HOST:PORT`` on stderr once it accepts connections.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import cherrypy

from floatkey.app import affinity
from floatkey.app.config import Settings
from floatkey.web.server import server_config


class Bare:
    @cherrypy.expose
    def default(self, *_vpath: str, **_query: Any) -> bytes:
        request = cherrypy.serving.request
        fields = json.loads(request.body.read() or b"{}")
        cherrypy.serving.response.headers["Content-Type"] = "application/json"
        return json.dumps({"product": fields.get("product"), "ok": True}, separators=(",", ":")).encode()


def _raw_body() -> None:
    """Keep the body unparsed whatever its content type says, as floatkey does."""
    cherrypy.serving.request.body.processors.clear()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.ceiling", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--thread-pool", type=int, default=Settings.thread_pool)
    parser.add_argument("--cpu-affinity", default=Settings.cpu_affinity, type=affinity.setting_from_text)
    args = parser.parse_args(argv)
    affinity.pin(args.cpu_affinity)
    settings = Settings(host=args.host, port=args.port, thread_pool=args.thread_pool)
    cherrypy.config.update(server_config(settings))
    cherrypy.tools.bare_raw_body = cherrypy.Tool("before_request_body", _raw_body)
    config = {"/": {"tools.bare_raw_body.on": True, "tools.encode.on": False}}
    cherrypy.tree.mount(Bare(), "", config)
    cherrypy.engine.signal_handler.subscribe()
    cherrypy.engine.start()
    # The same keep-alive setting as floatkey's GuardedServer (web/connections.py): stock
    # cheroot closes a connection after its answer once ten others wait, which would make
    # the ceiling pay for handshakes that floatkey does not.
    cherrypy.server.httpserver.keep_alive_conn_limit = None
    host, port = cherrypy.server.bound_addr[:2]
    print(f"ceiling listening on http://{host}:{port}", file=sys.stderr, flush=True)
    cherrypy.engine.block()
    return 0


if __name__ == "__main__":
    sys.exit(main())
