"""Bad input: a 4xx with the error shape, never a 500, never a changed state.

A license with seats, a borrow and consumptions is seeded; each bad request must leave
every license and every seat exactly as they were.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.fault.support import Client, snapshot, start_server
from tests.support.server import ServerProcess

pytestmark = pytest.mark.timeout(120)

P = "shape"


def body(**fields: object) -> bytes:
    return json.dumps({"product": P, **fields}).encode()


CASES: dict[str, tuple[str, str, bytes]] = {
    "not json": ("POST", "/api/v4/register", b'{"product": "shape", "user": '),
    "json array": ("POST", "/api/v4/register", b'["shape", "mallory"]'),
    "json string": ("POST", "/api/v4/add_consumption", b'"shape"'),
    "NaN literal": ("POST", "/api/v4/add_consumption", b'{"product": "shape", "consumptions": NaN}'),
    "Infinity literal": (
        "POST",
        "/api/v4/add_consumption",
        b'{"product": "shape", "consumptions": Infinity}',
    ),
    "deep nesting": (
        "POST",
        "/api/v4/register",
        b'{"product": "shape", "user": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ),
    "huge body": ("POST", "/api/v4/register", body(user="mallory", user_info="x" * 2_000_000)),
    "invalid utf-8": ("POST", "/api/v4/register", b'{"product": "shape", "user": "\xff\xfe"}'),
    "missing user": ("POST", "/api/v4/register", body()),
    "missing product": ("POST", "/api/v4/register", b'{"user": "mallory"}'),
    "empty user": ("POST", "/api/v4/register", body(user="   ")),
    "user as object": ("POST", "/api/v4/register", body(user={"name": "mallory"})),
    "user as bool": ("POST", "/api/v4/register", body(user=True)),
    "user too long": ("POST", "/api/v4/register", body(user="m" * 10_000)),
    "user too many bytes": ("POST", "/api/v4/register", body(user="\U0001f600" * 200)),
    "lone surrogate": ("POST", "/api/v4/register", b'{"product": "shape", "user": "\\ud800"}'),
    "NUL in user": ("POST", "/api/v4/register", body(user="mal\u0000lory")),
    "odd unicode product": (
        "POST",
        "/api/v4/register",
        json.dumps({"product": "sh\u202eape\u200d\U0001f600", "user": "mallory"}).encode(),
    ),
    "unknown product": ("POST", "/api/v4/register", json.dumps({"product": "nope", "user": "m"}).encode()),
    "unknown license id": ("POST", "/api/v4/register", body(user="mallory", license_id=999_999)),
    "license id negative": ("POST", "/api/v4/register", body(user="mallory", license_id=-1)),
    "license id enormous": ("POST", "/api/v4/register", body(user="mallory", license_id=10**40)),
    "license id float": ("POST", "/api/v4/register", body(user="mallory", license_id=1.5)),
    "consumptions negative": ("POST", "/api/v4/add_consumption", body(consumptions=-5)),
    "consumptions enormous": ("POST", "/api/v4/add_consumption", body(consumptions=10**30)),
    "consumptions float": ("POST", "/api/v4/add_consumption", body(consumptions=0.5)),
    "consumptions 1e309": ("POST", "/api/v4/add_consumption", b'{"product": "shape", "consumptions": 1e309}'),
    "consumptions text": ("POST", "/api/v4/add_consumption", body(consumptions="five")),
    "over the limit": ("POST", "/api/v4/add_consumption", body(consumptions=1_000_000)),
    "overages raised by client": (
        "POST",
        "/api/v4/add_consumption",
        body(consumptions=1_000_000, allow_overages=True, max_overages=0),
    ),
    "allow_overages junk": ("POST", "/api/v4/add_consumption", body(consumptions=1, allow_overages="maybe")),
    "borrow in the past": (
        "POST",
        "/api/v4/borrow",
        body(user="alice", borrowed_until="2001-01-01T00:00:00Z"),
    ),
    "borrow too far": ("POST", "/api/v4/borrow", body(user="alice", borrowed_until="2999-01-01T00:00:00Z")),
    "borrow junk time": ("POST", "/api/v4/borrow", body(user="alice", borrowed_until="next tuesday")),
    "borrow time as number": ("POST", "/api/v4/borrow", body(user="alice", borrowed_until=1e20)),
    "unregister stranger": ("POST", "/api/v4/unregister", body(user="stranger")),
    "seat beyond the last": ("POST", "/api/v4/register", body(user="mallory")),
    "unknown feature": ("POST", "/api/v4/featureRegister", body(user="alice", feature="nope")),
    "release unknown feature": ("POST", "/api/v4/featureRelease", body(user="alice", feature="nope")),
    "license with junk seats": ("POST", "/api/v4/licenses", body(floating_users="many")),
    "license with negative seats": ("POST", "/api/v4/licenses", body(floating_users=-1)),
    "license with enormous timeout": ("POST", "/api/v4/licenses", body(floating_timeout=10**20)),
    "license with junk type": ("POST", "/api/v4/licenses", body(license_type="forever")),
    "license with bad product code": (
        "POST",
        "/api/v4/licenses",
        json.dumps({"product": "../../etc"}).encode(),
    ),
    "delete license junk id": ("DELETE", "/api/v4/licenses/abc", b""),
    "delete license huge id": ("DELETE", "/api/v4/licenses/" + "9" * 40, b""),
    "release unknown seat": ("DELETE", "/api/v4/registrations/1/nobody", b""),
    "registrations junk id": ("GET", "/api/v4/registrations?license_id=x", b""),
    "unknown route": ("POST", "/api/v4/registerr", body(user="mallory")),
    "wrong method": ("PUT", "/api/v4/register", body(user="mallory")),
}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_server(tmp_path_factory.mktemp("bad-input"))
    try:
        server.add_license(
            product=P, floating_users=2, floating_timeout=600, max_borrow_time=24, max_consumptions=100
        )
        for path, fields in [
            ("/api/v4/register", {"user": "alice"}),
            ("/api/v4/borrow", {"user": "bob", "borrowed_until": None}),
            ("/api/v4/add_consumption", {"consumptions": 7}),
        ]:
            answer = server.post(path, {"product": P, **fields})
            assert answer.status_code == 200, answer.text
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("case", list(CASES))
def test_rejected_without_a_trace(seeded: ServerProcess, case: str) -> None:
    method, path, raw = CASES[case]
    before = snapshot(seeded)
    client = Client(seeded.url)
    try:
        status, answer = client.request(method, path, raw=raw)
    finally:
        client.close()
    assert 400 <= status < 500, (status, answer)
    assert isinstance(answer, dict), answer
    assert set(answer) >= {"status", "code", "message"} and answer["status"] == status, answer
    assert snapshot(seeded) == before
    assert seeded.get("/api/v4/health").status_code == 200
