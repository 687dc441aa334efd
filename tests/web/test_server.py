"""The CherryPy glue in-process: a handler that fails answers the error shape with a request id."""

import io
import logging

import cherrypy
import pytest
import requests

from floatkey.app.config import Settings
from floatkey.app.system import Floatkey
from floatkey.web.api import build_table
from floatkey.web.routes import PUBLIC, Route
from floatkey.web.server import build_app, server_config


def broken(fk, fields, path):
    raise RuntimeError("a bug")


@pytest.fixture
def app_url(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", host="127.0.0.1", port=0)
    fk = Floatkey(settings, hardware_keys=False).start()
    table = build_table([Route("GET", "/api/v4/broken", broken, PUBLIC, "fails on purpose")])
    cherrypy.tree.apps[""] = build_app(fk, settings, table)
    cherrypy.config.update(server_config(settings))
    cherrypy.engine.start()
    host, port = cherrypy.server.bound_addr[:2]
    yield f"http://{host}:{port}"
    cherrypy.engine.exit()
    cherrypy.tree.apps.clear()
    fk.stop()


def test_a_bug_is_a_500_with_the_error_shape_and_a_logged_request_id(app_url, caplog):
    with caplog.at_level(logging.ERROR, logger="floatkey.web.server"):
        answer = requests.get(app_url + "/api/v4/broken", timeout=10)
    assert answer.status_code == 500
    body = answer.json()
    assert body["code"] == "internal_error" and body["status"] == 500
    assert body["request_id"] in body["message"]
    assert any(body["request_id"] in r.getMessage() for r in caplog.records)
    assert "a bug" not in answer.text
    assert requests.get(app_url + "/api/v4/health", timeout=10).status_code == 200


def test_cherrypys_access_line_is_built_only_when_a_handler_would_write_it(app_url, monkeypatch):
    """CherryPy formats an access line for every request and hands it to a logger that
    floatkey gives no handler (it logs requests itself, web/request_log.py): a tenth of a
    request's CPU for nothing. The line is still built once a handler is attached."""
    built = []
    original = cherrypy._cplogging.LogManager.access
    monkeypatch.setattr(cherrypy._cplogging.LogManager, "access", lambda self: built.append(original(self)))
    assert requests.get(app_url + "/api/v4/health", timeout=10).status_code == 200
    assert built == []
    access_log = cherrypy.tree.apps[""].log.access_log
    handler = logging.StreamHandler(io.StringIO())
    access_log.addHandler(handler)
    try:
        assert requests.get(app_url + "/api/v4/health", timeout=10).status_code == 200
    finally:
        access_log.removeHandler(handler)
    assert len(built) == 1
    assert '"GET /api/v4/health HTTP/1.1" 200' in handler.stream.getvalue()
