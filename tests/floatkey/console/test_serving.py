"""The console's files over HTTP on a real server: headers, caching, no way out of static/."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from floatkey.console import assets
from tests.support.server import ServerProcess

STATIC = Path(assets.__file__).parent / "static"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    proc = ServerProcess(tmp_path_factory.mktemp("console") / "data").start()
    yield proc
    proc.stop()


def raw_get(srv: ServerProcess, target: str) -> str:
    """A request line sent as written (requests would normalise ``..`` away)."""
    host, port = srv.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data.decode("latin-1")


def test_the_console_is_the_front_page_with_its_security_headers(srv):
    answer = srv.get("/")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "text/html;charset=utf-8"
    csp = answer.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert '<script type="module" src="/console/app.js">' in answer.text
    assert srv.session.head(srv.url + "/", timeout=10).status_code == 200


@pytest.mark.parametrize(
    ("name", "media"),
    [("app.js", "text/javascript"), ("app.css", "text/css"), ("chart.js", "text/javascript")],
)
def test_each_file_has_its_type_and_revalidates_by_etag(srv, name, media):
    answer = srv.get(f"/console/{name}")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith(media)
    assert answer.headers["Cache-Control"] == "no-cache"
    assert answer.content == (STATIC / name).read_bytes()
    etag = answer.headers["ETag"]
    again = srv.get(f"/console/{name}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["ETag"] == etag
    assert srv.get(f"/console/{name}", headers={"If-None-Match": '"other"'}).status_code == 200


@pytest.mark.parametrize(
    "target",
    [
        "/console/../setup.py",
        "/console/..%2F..%2Fsetup.py",
        "/console/%2e%2e%2fassets.py",
        "/console/..%5cassets.py",
        "/console/%2Fetc%2Fpasswd",
        "/console/static",
        "/console/",
        "/console/assets.py",
        "/console/__init__.py",
    ],
)
def test_no_path_leaves_the_static_files(srv, target):
    answer = raw_get(srv, target)
    status = int(answer.split(" ", 2)[1])
    assert status in (400, 404), answer[:300]
    assert "import" not in answer and "root:" not in answer


def test_no_inline_script_or_style_and_no_html_from_strings():
    for path in STATIC.iterdir():
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), path.name
        assert "<style" not in text and "style=" not in text, path.name
        for sink in (
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
        ):
            assert sink not in text, (path.name, sink)
        assert "localStorage." not in text, path.name


def test_health_names_the_license_source(srv):
    assert srv.get("/api/v4/health").json()["license_source"] == "local"
