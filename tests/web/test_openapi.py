"""The OpenAPI document against the running server: what it says is what the server does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from tests.support.server import ServerProcess


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(Path(tmp_path_factory.mktemp("openapi")) / "data").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def document(docs_server: ServerProcess) -> dict[str, Any]:
    return docs_server.get("/api/v4/openapi.json").json()


def body_schema(document: dict[str, Any], path: str) -> dict[str, Any]:
    return document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]


def valid(schema: dict[str, Any], instance: Any) -> bool:
    """OpenAPI 3.0 ``nullable`` read as JSON Schema (enough for these fields)."""
    return jsonschema_rs.Draft7Validator(_nullable(schema)).is_valid(instance)


def _nullable(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_nullable(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _nullable(v) for k, v in schema.items() if k != "nullable"}
    if schema.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


@pytest.mark.parametrize("path", ["/api/v4/users/{username}/password", "/api/v4/users/{username}/role"])
def test_path_parameters_of_post_routes_are_described(document: dict[str, Any], path: str) -> None:
    op = document["paths"][path]["post"]
    assert [(p["name"], p["in"], p["required"]) for p in op["parameters"]] == [("username", "path", True)]
    assert "username" not in body_schema(document, path)["properties"]


@pytest.mark.parametrize("path", ["/", "/api/v4/docs"])
def test_html_pages_are_described_as_html(
    docs_server: ServerProcess, document: dict[str, Any], path: str
) -> None:
    assert list(document["paths"][path]["get"]["responses"]["200"]["content"]) == ["text/html"]
    assert docs_server.get(path).headers["Content-Type"].startswith("text/html")


#: Bodies the server refuses as malformed: the schema must refuse each of them too.
REFUSED = [
    ("/api/v4/register", {"product": "", "user": "u"}),
    ("/api/v4/register", {"product": "p", "user": " "}),
    ("/api/v4/register", {"product": "p", "user": "u", "license_id": 0}),
    ("/api/v4/register", {"product": "p", "user": "u", "license_id": "0"}),
    ("/api/v4/register", {"product": "p", "user": "u", "user_info": "x" * 4097}),
    ("/api/v4/borrow", {"product": "p", "user": "u", "borrowed_until": "next week"}),
    ("/api/v4/add_consumption", {"product": "p", "consumptions": 10**16}),
    ("/api/v4/add_consumption", {"product": "p", "consumptions": 1, "max_overages": -1}),
    ("/api/v4/add_consumption", {"product": "p", "consumptions": 1, "allow_overages": "maybe"}),
    ("/api/v4/licenses", {"product": "a b"}),
    ("/api/v4/licenses", {"product": "p", "floating_users": 0}),
    ("/api/v4/licenses", {"product": "p", "floating_timeout": 0}),
    ("/api/v4/licenses", {"product": "p", "license_type": "forever"}),
    ("/api/v4/licenses", {"product": "p", "consumption_period": "hourly"}),
    ("/api/v4/licenses", {"product": "p", "hardware_key_serial": "12ab"}),
    ("/api/v4/licenses", {"product": "p", "features": [{"code": "-x"}]}),
]

#: Bodies the server takes as they are (V1 clients' loose types): the schema must allow them.
ACCEPTED = [
    ("/api/v4/register", {"product": "p", "user": 42, "license_id": "7"}),
    ("/api/v4/add_consumption", {"product": "p", "consumptions": "-3", "allowOverages": "True"}),
    (
        "/api/v4/licenses",
        {"product": "p", "floating_users": "5", "isHWKeyReq": 1, "consumption_period": None},
    ),
    (
        "/api/v4/licenses",
        {"product": "p", "validity_period": "2030-01-02", "start_date": "2026-01-01T10:00:00+02:00"},
    ),
]


@pytest.mark.parametrize(("path", "body"), REFUSED)
def test_the_schema_refuses_what_the_server_refuses(
    docs_server: ServerProcess, document: dict[str, Any], path: str, body: dict[str, Any]
) -> None:
    answer = docs_server.post(path, body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] in ("validation_error", "missing_parameters"), answer.text
    assert not valid(body_schema(document, path), body)


@pytest.mark.parametrize(("path", "body"), ACCEPTED)
def test_the_schema_allows_the_loose_types_the_server_takes(
    document: dict[str, Any], path: str, body: dict[str, Any]
) -> None:
    assert valid(body_schema(document, path), body)


def test_open_mode_asks_for_no_token(document: dict[str, Any]) -> None:
    assert not any("security" in op for ops in document["paths"].values() for op in ops.values())
