"""The audit origin of a request in-process, where building one can be counted: worked out
for the requests that make an audit record, and for no other."""

import cherrypy
import pytest
import requests

from floatkey.app.config import Settings
from floatkey.app.system import Floatkey
from floatkey.audit import origin as origins
from floatkey.web.audit import AuditWeb
from floatkey.web.serve import mount
from floatkey.web.server import server_config


@pytest.fixture
def app_url(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", host="127.0.0.1", port=0)
    fk = Floatkey(settings, hardware_keys=False).start()
    audit = AuditWeb(settings)
    mount(fk, settings, audit.routes(), audit.config())
    cherrypy.config.update(server_config(settings))
    cherrypy.engine.start()
    host, port = cherrypy.server.bound_addr[:2]
    yield f"http://{host}:{port}"
    cherrypy.engine.exit()
    cherrypy.tree.apps.clear()
    if hasattr(origins, "name_requests_with"):
        origins.name_requests_with(None)
    fk.stop()


def test_only_a_request_that_makes_a_record_works_out_its_origin(app_url, monkeypatch):
    built: list[origins.Origin] = []

    class Counted(origins.Origin):
        def __init__(self, actor: str, route: str) -> None:
            super().__init__(actor, route)
            built.append(self)

    monkeypatch.setattr(origins, "Origin", Counted)
    session = requests.Session()
    session.headers["Content-Type"] = "application/json"
    added = session.post(app_url + "/api/v4/licenses", json={"product": "cad", "floating_users": 5})
    assert added.status_code == 201, added.text
    assert [(o.actor, o.route) for o in built] == [("open-mode 127.0.0.1", "POST /api/v4/licenses")]
    built.clear()
    for path in ("/api/v4/register", "/api/v4/register", "/api/v4/unregister"):
        answer = session.post(app_url + path, json={"product": "cad", "user": "a"})
        assert answer.status_code == 200, answer.text
    assert built == []
    records = session.get(app_url + "/api/v4/audit", timeout=10).json()["records"]
    assert [(r["kind"], r["actor"]) for r in records if r["kind"] == "license_added"] == [
        ("license_added", "open-mode 127.0.0.1")
    ]
