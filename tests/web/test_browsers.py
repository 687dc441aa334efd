"""A web page that someone on the network visits must not be able to drive the server.

Browsers send "simple" requests to any address without asking first: a POST whose type is
text/plain, form-urlencoded or multipart (or has no type), and a GET from an image, a link
or a form. With DNS rebinding a foreign page even gets the server's answers: its own host
name resolves to the server, so the browser counts the server as the page's own origin.
Each test below plays one of these requests over a real socket and checks that it is
refused and changed nothing, and that the official SDKs' requests still pass.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from itertools import count
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from floatkey.app.config import Settings
from floatkey.web.access import AuthWeb
from floatkey.web.api import build_table
from floatkey.web.openapi import OpenApi
from tests.support.server import ServerProcess

#: What both LicenseSpring SDKs (Python and Node) send on every request, GET included.
SDK = {"Content-Type": "application/json"}
_names = count()

#: Every GET of the route table, read-only or state-changing. A new GET route fails
#: test_every_get_route_is_classified until it is put on one side.
READ_ONLY_GETS = {
    "/",
    "/console/{name}",
    "/auth",
    "/api/v4/health",
    "/api/v4/health/live",
    "/api/v4/health/ready",
    "/api/v4/license",
    "/api/v4/registrations",
    "/api/v4/hardware_key",
    "/api/v4/hardware_key/doctor",
    "/api/v4/usage",
    "/api/v4/usage.csv",
    "/api/v4/users",
    "/api/v4/openapi.json",
    "/api/v4/docs",
}
STATE_CHANGING_GETS = {
    "/api/v4/unregister/all",
    "/api/v4/featureRelease/all",
    "/api/v4/feature_release/all",
    "/api/v4/addProduct",
    "/api/v4/removeProduct",
    "/api/v4/setPassword",
    "/api/v4/license/report",
}


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("browsers") / "data").start()
    yield proc
    proc.stop()


def product() -> str:
    return f"p{next(_names)}"


def products(server: ServerProcess) -> set[str]:
    answer = requests.get(server.url + "/api/v4/license", timeout=30)
    assert answer.status_code == 200, answer.text
    return {lic["product_details"]["short_code"] for lic in answer.json()}


def seats(server: ServerProcess) -> int:
    answer = requests.get(server.url + "/api/v4/registrations", headers=SDK, timeout=30)
    assert answer.status_code == 200, answer.text
    return len(answer.json()["registrations"])


# Request bodies that are not JSON


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonx",
        None,
    ],
)
def test_a_body_that_is_not_declared_json_is_refused_and_changes_nothing(
    srv: ServerProcess, content_type: str | None
) -> None:
    name = product()
    headers = {} if content_type is None else {"Content-Type": content_type}
    body = f'{{"product": "{name}", "floating_users": 1}}'.encode()
    # requests adds no Content-Type for raw bytes: the None case is a body without one.
    answer = requests.post(srv.url + "/api/v4/licenses", data=body, headers=headers, timeout=30)
    assert answer.status_code == 415, answer.text
    error = answer.json()
    assert error["code"] == "unsupported_media_type"
    assert "Content-Type: application/json" in error["message"]
    assert name not in products(srv)


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"]
)
def test_a_json_body_is_served(srv: ServerProcess, content_type: str) -> None:
    name = product()
    answer = requests.post(
        srv.url + "/api/v4/licenses",
        data=f'{{"product": "{name}"}}'.encode(),
        headers={"Content-Type": content_type},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    assert name in products(srv)


def test_a_post_without_a_body_needs_no_type(srv: ServerProcess) -> None:
    assert requests.post(srv.url + "/api/v4/featureRelease/all", timeout=30).status_code == 200


# GET routes that change state


def test_every_get_route_is_classified() -> None:
    table = build_table(OpenApi().routes() + AuthWeb(Settings()).routes())
    gets = {r.path for r in table.routes if r.method == "GET"}
    assert gets == READ_ONLY_GETS | STATE_CHANGING_GETS
    assert {r.path for r in table.routes if r.method == "GET" and r.changes_state} == STATE_CHANGING_GETS


def test_a_state_changing_get_from_a_page_is_refused_and_changes_nothing(srv: ServerProcess) -> None:
    name = product()
    srv.add_license(product=name, floating_users=2)
    assert requests.post(srv.url + "/api/v4/register", json={"product": name, "user": "u"}, timeout=30).ok
    held = seats(srv)
    attempts = {
        "/api/v4/unregister/all": {},
        "/api/v4/featureRelease/all": {},
        "/api/v4/feature_release/all": {},
        "/api/v4/addProduct": {"product": product()},
        "/api/v4/removeProduct": {"product": name},
    }
    failures = []
    for path, query in attempts.items():
        # What an <img src=...>, a link or a GET form sends: no Content-Type, no token.
        answer = requests.get(srv.url + path, params=query, timeout=30)
        error = answer.json() if answer.headers.get("Content-Type") == "application/json" else {}
        if (
            answer.status_code != 403
            or error.get("code") != "forbidden"
            or "web page" not in error["message"]
        ):
            failures.append(f"GET {path}: {answer.status_code} {answer.text[:160]}")
    assert failures == []
    assert name in products(srv) and seats(srv) == held
    assert attempts["/api/v4/addProduct"]["product"] not in products(srv)


def test_a_state_changing_get_sent_as_the_sdks_send_it_is_served(srv: ServerProcess) -> None:
    name = product()
    added = requests.get(srv.url + "/api/v4/addProduct", params={"product": name}, headers=SDK, timeout=30)
    assert added.status_code == 200, added.text
    assert requests.post(srv.url + "/api/v4/register", json={"product": name, "user": "u"}, timeout=30).ok
    assert requests.get(srv.url + "/api/v4/unregister/all", headers=SDK, timeout=30).status_code == 200
    assert seats(srv) == 0
    removed = requests.get(
        srv.url + "/api/v4/removeProduct", params={"product": name}, headers=SDK, timeout=30
    )
    assert removed.status_code == 200, removed.text
    assert name not in products(srv)


# Foreign origins


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:1", "https://127.0.0.1"])
def test_a_foreign_origin_can_neither_write_nor_read(srv: ServerProcess, origin: str) -> None:
    name = product()
    written = requests.post(
        srv.url + "/api/v4/licenses", json={"product": name}, headers={"Origin": origin}, timeout=30
    )
    assert written.status_code == 403, written.text
    assert written.json()["code"] == "forbidden"
    assert origin in written.json()["message"]
    assert name not in products(srv)
    read = requests.get(srv.url + "/api/v4/license", headers={"Origin": origin}, timeout=30)
    assert read.status_code == 403 and "license_key" not in read.text


def test_the_servers_own_origin_is_served(srv: ServerProcess) -> None:
    name = product()
    answer = requests.post(
        srv.url + "/api/v4/licenses", json={"product": name}, headers={"Origin": srv.url}, timeout=30
    )
    assert answer.status_code == 201, answer.text


# Host names (DNS rebinding)


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8080", "127.0.0.1.nip.io", "localhost.evil.example"]
)
def test_a_host_name_not_configured_is_refused(srv: ServerProcess, host: str) -> None:
    answer = requests.get(srv.url + "/api/v4/license", headers={"Host": host}, timeout=30)
    assert answer.status_code == 421, answer.text
    error = answer.json()
    assert error["code"] == "host_not_allowed"
    assert "allowedHosts" in error["message"]
    assert "license_key" not in answer.text
    name = product()
    written = requests.post(
        srv.url + "/api/v4/licenses", json={"product": name}, headers={"Host": host}, timeout=30
    )
    assert written.status_code == 421
    assert name not in products(srv)


def test_addresses_localhost_and_this_machines_names_are_served_by_default(srv: ServerProcess) -> None:
    port = srv.url.rsplit(":", 1)[1]
    hosts = [
        f"127.0.0.1:{port}",
        "127.0.0.1",
        f"[::1]:{port}",
        "10.1.2.3",
        f"localhost:{port}",
        "LOCALHOST.",
        socket.gethostname(),
        f"{socket.getfqdn()}:{port}",
    ]
    for host in hosts:
        answer = requests.get(srv.url + "/api/v4/health", headers={"Host": host}, timeout=30)
        assert answer.status_code == 200, f"{host}: {answer.text}"


def test_configured_host_names_replace_the_default_ones(tmp_path: Path) -> None:
    config = tmp_path / "floatkey.yaml"
    config.write_text("hardwareKey:\n  enabled: false\nallowedHosts: [licenses.example.com]\n")
    server = ServerProcess(tmp_path / "data", "--config", str(config)).start()
    try:
        for host, status in [
            ("licenses.example.com", 200),
            ("Licenses.Example.com.:8080", 200),
            ("192.0.2.7", 200),
            ("localhost", 421),
            ("evil.example", 421),
        ]:
            answer = requests.get(server.url + "/api/v4/health", headers={"Host": host}, timeout=30)
            assert answer.status_code == status, f"{host}: {answer.text}"
    finally:
        server.stop()


# A refused body does not leak into the next request of the connection


def test_a_refused_chunked_body_is_not_read_as_the_next_request(srv: ServerProcess) -> None:
    parts = urlsplit(srv.url)
    body = b'{"product": "chunked"}'
    refused = (
        b"POST /api/v4/licenses HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    )
    following = b"GET /api/v4/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(refused + following)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    statuses = [int(status) for status in re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)]
    assert statuses[0] == 415, answer[:300]
    assert set(statuses[1:]) <= {200}, answer[:600]


def test_a_refused_body_still_sent_gets_its_answer(srv: ServerProcess) -> None:
    parts = urlsplit(srv.url)
    body = b"x" * 2_000_000
    head = (
        b"POST /api/v4/licenses HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    following = b"GET /api/v4/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(head)
        for i in range(0, len(body), 16384):
            sock.sendall(body[i : i + 16384])
        sock.sendall(following)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    statuses = [int(status) for status in re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)]
    assert statuses == [415, 200], answer[:600]
    assert b'"unsupported_media_type"' in answer
