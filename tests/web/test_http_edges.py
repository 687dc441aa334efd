"""HTTP edges through raw sockets: what a client library would never send, answered in the error shape.

Every test talks to a real server process with bytes written by hand, because ``requests``
normalizes exactly what these tests need to get wrong.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.support.server import ServerProcess

#: Far below the server's 30 s socket timeout: an answer that takes this long is a hang.
PROMPT = 5.0


@pytest.fixture(scope="module")
def edge_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(Path(tmp_path_factory.mktemp("edges")) / "data").start()
    yield server
    server.stop()


class Answer:
    def __init__(self, raw: bytes, seconds: float) -> None:
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1]) if lines[0] else 0
        self.headers = {
            k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
        }
        self.seconds = seconds

    def json(self) -> dict:
        return json.loads(self.body)

    def assert_error(self, status: int, code: str) -> None:
        assert self.status == status, (self.status, self.body)
        assert self.headers.get("content-type", "").startswith("application/json"), self.headers
        error = self.json()
        assert error["status"] == status and error["code"] == code, error
        assert len(error["message"]) > 20, error


def send(server: ServerProcess, data: bytes) -> Answer:
    """Send ``data`` on a new connection and read until the server closes it."""
    host, port = server.url.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=PROMPT) as conn:
        conn.sendall(data)
        raw = b""
        try:
            while piece := conn.recv(65536):
                raw += piece
        except TimeoutError:
            pytest.fail(f"no answer within {PROMPT}s; got so far: {raw[:200]!r}")
    return Answer(raw, time.monotonic() - started)


def request(method: str, target: str, *headers: str, body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", *headers, "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def test_head_on_a_read_only_route_answers_like_get_without_a_body(edge_server: ServerProcess) -> None:
    get = send(edge_server, request("GET", "/api/v4/openapi.json"))
    head = send(edge_server, request("HEAD", "/api/v4/openapi.json"))
    assert get.status == head.status == 200
    assert head.body == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.headers["content-length"] == get.headers["content-length"]


def test_head_on_a_get_that_changes_state_is_refused(edge_server: ServerProcess) -> None:
    edge_server.add_license(product="head-check")
    assert edge_server.post("/api/v4/register", {"product": "head-check", "user": "u"}).status_code == 200
    answer = send(edge_server, request("HEAD", "/api/v4/unregister/all"))
    assert answer.status == 405
    assert answer.headers["allow"] == "GET"
    assert edge_server.get("/api/v4/license?product=head-check").json()[0]["floating_in_use_devices"] == 1


def test_a_query_string_that_is_not_utf8_is_a_validation_error(edge_server: ServerProcess) -> None:
    send(edge_server, request("GET", "/api/v4/license?product=%ff")).assert_error(400, "validation_error")


def test_two_content_lengths_are_refused_at_once(edge_server: ServerProcess) -> None:
    data = request("POST", "/api/v4/register", "Content-Length: 2", "Content-Length: 3", body=b"{}")
    answer = send(edge_server, data)
    answer.assert_error(400, "malformed_request")
    assert answer.seconds < PROMPT


def test_content_length_beside_chunked_is_refused(edge_server: ServerProcess) -> None:
    data = request(
        "POST",
        "/api/v4/register",
        "Content-Length: 2",
        "Transfer-Encoding: chunked",
        body=b"2\r\n{}\r\n0\r\n\r\n",
    )
    send(edge_server, data).assert_error(400, "malformed_request")


def test_an_oversized_header_gets_431_in_the_error_shape(edge_server: ServerProcess) -> None:
    data = request("GET", "/api/v4/health", "X-Padding: " + "a" * 600_000)
    send(edge_server, data).assert_error(431, "headers_too_large")


def test_an_oversized_request_line_gets_414_in_the_error_shape(edge_server: ServerProcess) -> None:
    send(edge_server, request("GET", "/api/v4/license?product=" + "a" * 600_000)).assert_error(
        414, "uri_too_long"
    )


def test_a_malformed_request_line_gets_the_error_shape(edge_server: ServerProcess) -> None:
    send(edge_server, b"GET\r\n\r\n").assert_error(400, "malformed_request")


def test_a_malformed_chunk_size_is_the_clients_error(edge_server: ServerProcess) -> None:
    data = request(
        "POST",
        "/api/v4/register",
        "Content-Type: application/json",
        "Transfer-Encoding: chunked",
        body=b"zz\r\n{}\r\n0\r\n\r\n",
    )
    answer = send(edge_server, data)
    answer.assert_error(400, "malformed_request")
    assert answer.headers["connection"] == "close"


#: Names a path can garble: an encoded slash, a literal %2F, a lone %, spaces, plus,
#: non-ASCII, dot segments and query/fragment characters.
NASTY_USERS = ["a/b", "a%2Fb", "a%252Fb", "100%", "a b", "a+b", "é/ü 雪", "..", "?x=1#y", "%"]


def test_force_release_works_for_every_user_name(edge_server: ServerProcess) -> None:
    license_id = edge_server.add_license(product="nasty", floating_users=len(NASTY_USERS))["id"]
    for user in NASTY_USERS:
        answer = edge_server.post("/api/v4/register", {"product": "nasty", "user": user})
        assert answer.status_code == 200, answer.text

    def holders() -> set[str]:
        seats = edge_server.get(f"/api/v4/registrations?license_id={license_id}").json()
        return {seat["user"] for seat in seats["registrations"]}

    assert holders() == set(NASTY_USERS)
    for user in NASTY_USERS:
        target = f"/api/v4/registrations/{license_id}/{quote(user, safe='')}"
        answer = send(edge_server, request("DELETE", target))
        assert answer.status == 200, (user, answer.body)
        assert user not in holders(), user
    assert holders() == set()


def test_a_path_parameter_that_is_not_utf8_is_a_validation_error(edge_server: ServerProcess) -> None:
    license_id = edge_server.add_license(product="bytes")["id"]
    answer = send(edge_server, request("DELETE", f"/api/v4/registrations/{license_id}/%ff"))
    answer.assert_error(400, "validation_error")


def test_metadata_the_storage_cannot_hold_is_refused_and_changes_nothing(edge_server: ServerProcess) -> None:
    """msgpack stores integers of at most 64 bits: a bigger one was a 503 "could not store"."""
    before = edge_server.get("/api/v4/license").json()
    body = b'{"product": "big-metadata", "metadata": {"n": 123456789012345678901234567890}}'
    data = request(
        "POST",
        "/api/v4/licenses",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        body=body,
    )
    send(edge_server, data).assert_error(400, "validation_error")
    assert edge_server.get("/api/v4/license").json() == before
