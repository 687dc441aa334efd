"""The OpenAPI 3 document, generated from the route table the server dispatches with."""

from __future__ import annotations

import re
from typing import Any

from floatkey import __version__
from floatkey.errors import STATUS_BY_CODE
from floatkey.web import pages
from floatkey.web.routes import PUBLIC, Route, RouteTable

ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["status", "code", "message"],
    "properties": {
        "status": {"type": "integer"},
        "code": {"type": "string", "enum": sorted(STATUS_BY_CODE)},
        "message": {"type": "string"},
    },
}


def document(table: RouteTable) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in table.routes:
        paths.setdefault(route.path, {})[route.method.lower()] = operation(route)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "floatkey",
            "version": __version__,
            "description": "LicenseSpring Floating Server V1 protocol, plus floatkey's admin routes.",
        },
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


def operation(route: Route) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": route.method.lower() + re.sub(r"[/{}]+", "_", route.path).rstrip("_"),
        "summary": route.summary,
        "tags": list(route.tags),
        "x-role": route.role,
        "responses": {str(route.status): {"description": "success", "content": _content(route.response)}},
    }
    for status, what in (
        (400, "refused"),
        (401, "not logged in"),
        (403, "role may not"),
        (404, "not found"),
        (413, "body too large"),
        (429, "throttled"),
    ):
        op["responses"][str(status)] = {
            "description": what,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    if route.role != PUBLIC:
        op["security"] = [{"bearer": []}]
    schema = route.request or {"type": "object", "properties": {}}
    if route.method == "POST":
        op["requestBody"] = {"required": False, "content": {"application/json": {"schema": schema}}}
    else:
        required = set(schema.get("required", []))
        params = []
        for name, prop in schema.get("properties", {}).items():
            where = "path" if f"{{{name}}}" in route.path else "query"
            params.append(
                {
                    "name": name,
                    "in": where,
                    "required": where == "path" or name in required,
                    "schema": _scalar(prop),
                }
            )
        if params:
            op["parameters"] = params
    return op


def _content(schema: dict[str, Any]) -> dict[str, Any]:
    if schema.get("type") == "string":
        return {"text/plain": {"schema": schema}}
    return {"application/json": {"schema": schema}}


def _scalar(prop: dict[str, Any]) -> dict[str, Any]:
    """Query and path parameters arrive as strings: describe them as such."""
    if "anyOf" in prop:
        return {"type": "string"}
    if prop.get("type") in ("object", "array"):
        return {"type": "string", "description": "JSON"}
    return prop


class OpenApi:
    """Serves the document and the readable page; ``table`` is set once the table is built."""

    table: RouteTable | None = None

    def json(self, *_: Any) -> Any:
        assert self.table is not None
        return document(self.table)

    def docs(self, *_: Any) -> Any:
        assert self.table is not None
        return pages.docs(document(self.table))

    def routes(self) -> list[Route]:
        return [
            Route(
                "GET",
                "/api/v4/openapi.json",
                self.json,
                PUBLIC,
                "This OpenAPI document",
                tags=("docs",),
                head=True,
            ),
            Route(
                "GET",
                "/api/v4/docs",
                self.docs,
                PUBLIC,
                "The API reference for people",
                response={"type": "string"},
                tags=("docs",),
                head=True,
            ),
        ]
