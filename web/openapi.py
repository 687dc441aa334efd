"""The OpenAPI 3 document, generated from the route table the server dispatches with."""

from __future__ import annotations

import re
from typing import Any

from floatkey import __version__
from floatkey.errors import STATUS_BY_CODE
from floatkey.web import pages
from floatkey.web.routes import PUBLIC, V4, Route, RouteTable

ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["status", "code", "message"],
    "properties": {
        "status": {"type": "integer"},
        "code": {"type": "string", "enum": sorted(STATUS_BY_CODE)},
        "message": {"type": "string"},
        "request_id": {"type": "string", "description": "the X-Request-Id of the answer, for the log"},
        "reasons": {"type": "array", "items": {"type": "string"}, "description": "why not ready (503)"},
    },
}


def document(table: RouteTable, authentication: bool = True) -> dict[str, Any]:
    """The document of ``table``; in open mode (``authentication`` off) no route needs a token."""
    paths: dict[str, dict[str, Any]] = {}
    for route in table.routes:
        paths.setdefault(route.path, {})[route.method.lower()] = operation(route, authentication)
        if route.head:
            paths[route.path]["head"] = head_operation(route, authentication)
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


ERRORS = (
    (400, "refused: malformed request, invalid field or a rule of the license"),
    (401, "not logged in"),
    (403, "role may not, or a foreign web page"),
    (404, "not found"),
    (413, "body too large"),
    (414, "request line over maxHeaderSize"),
    (415, "body not declared JSON"),
    (421, "host name not served (allowedHosts)"),
    (429, "throttled"),
    (431, "request line and headers over maxHeaderSize"),
    (503, "overloaded, or the data directory refused the change"),
)


def operation(route: Route, authentication: bool = True) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": route.method.lower() + re.sub(r"[/{}]+", "_", route.path).rstrip("_"),
        "summary": route.summary,
        "tags": list(route.tags),
        "x-role": route.role,
        "responses": {str(route.status): {"description": "success", "content": _content(route.response)}},
    }
    for status, what in ERRORS:
        op["responses"][str(status)] = {
            "description": what,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    if authentication and route.role != PUBLIC:
        op["security"] = [{"bearer": []}]
    schema = route.request or {"type": "object", "properties": {}}
    properties = schema.get("properties", {})
    in_path = re.findall(r"\{(\w+)\}", route.path)
    params = [
        {"name": name, "in": "path", "required": True, "schema": _scalar(properties.get(name, _SEGMENT))}
        for name in in_path
    ]
    if route.file_body:
        upload = {"type": "string", "format": "binary"}
        op["requestBody"] = {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": upload},
                "multipart/form-data": {"schema": {"type": "object", "properties": {"file": upload}}},
            },
        }
    elif route.method == "POST":
        body = {
            **schema,
            "properties": {k: v for k, v in properties.items() if k not in in_path},
        }
        # Without a body, a route with required fields answers missing_parameters.
        required_body = bool(body.get("required"))
        op["requestBody"] = {"required": required_body, "content": {JSON: {"schema": body}}}
    else:
        required = set(schema.get("required", []))
        for name, prop in properties.items():
            if name in in_path:
                continue
            param: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
            if prop.get("type") in ("object", "array"):
                param["content"] = {JSON: {"schema": {k: v for k, v in prop.items() if k != "nullable"}}}
            else:
                param["schema"] = _scalar(prop)
            params.append(param)
    if params:
        op["parameters"] = params
    return op


def head_operation(route: Route, authentication: bool = True) -> dict[str, Any]:
    """HEAD on a read-only GET route: its status and headers, without a body."""
    op = operation(route, authentication)
    op["operationId"] = "head" + op["operationId"].removeprefix("get")
    op["summary"] = f"{route.summary} (headers only)"
    op["responses"] = {
        status: {"description": answer["description"]} for status, answer in op["responses"].items()
    }
    return op


#: A path segment: anything but empty (a slash is sent as %2F).
_SEGMENT: dict[str, Any] = {"type": "string", "minLength": 1}
JSON = "application/json"


def _content(schema: dict[str, Any]) -> dict[str, Any]:
    media = schema.get("x-media-type")
    if media is not None:
        return {media: {"schema": schema}}
    if schema.get("type") == "string":
        return {"text/plain": {"schema": schema}}
    return {JSON: {"schema": schema}}


def _scalar(prop: dict[str, Any]) -> dict[str, Any]:
    """Query and path parameters arrive as strings: describe the string form a field takes."""
    for branch in prop.get("anyOf", []):
        if branch.get("type") == "string":
            return dict(branch)
    return {k: v for k, v in prop.items() if k != "nullable"}


class OpenApi:
    """Serves the document and the readable page; ``table`` is set once the table is built."""

    table: RouteTable | None = None

    def __init__(self, authentication: bool = True) -> None:
        self.authentication = authentication

    def json(self, *_: Any) -> Any:
        assert self.table is not None
        return document(self.table, self.authentication)

    def docs(self, *_: Any) -> Any:
        assert self.table is not None
        return pages.docs(document(self.table, self.authentication))

    def routes(self) -> list[Route]:
        return [
            Route(
                "GET",
                f"{V4}/openapi.json",
                self.json,
                PUBLIC,
                "This OpenAPI document",
                tags=("docs",),
                head=True,
            ),
            Route(
                "GET",
                f"{V4}/docs",
                self.docs,
                PUBLIC,
                "The API reference for people",
                response={"type": "string", "x-media-type": "text/html"},
                tags=("docs",),
                head=True,
            ),
        ]
