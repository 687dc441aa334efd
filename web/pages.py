"""Pages for people: the API reference (the console is floatkey/console)."""

from __future__ import annotations

import html
import json
from typing import Any

from floatkey import __version__


class Html(str):
    """A handler answer rendered as text/html."""


class Csv(str):
    """A handler answer rendered as text/csv."""


def docs(document: dict[str, Any]) -> str:
    """A readable page of every route, from the same OpenAPI document machines read."""
    rows = []
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            params = [p["name"] for p in op.get("parameters", [])]
            fields = ", ".join(sorted((body or {}).get("properties", {}))) or ", ".join(params)
            rows.append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code></td>"
                f"<td>{html.escape(op.get('summary', ''))}</td>"
                f"<td>{html.escape(op.get('x-role', ''))}</td><td>{html.escape(fields)}</td></tr>"
            )
    errors = html.escape(json.dumps(document["components"]["schemas"]["Error"], indent=1))
    return Html(f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>floatkey API</title>
<style>body{{font-family:sans-serif;margin:2em}}td{{padding:.2em .6em;vertical-align:top}}
tr:nth-child(even){{background:#f4f4f4}}</style></head>
<body><h1>floatkey API {html.escape(__version__)}</h1>
<p>LicenseSpring Floating Server V1 protocol plus floatkey's admin routes.
Machine-readable: <a href="/api/v4/openapi.json">openapi.json</a>.</p>
<table><tr><th>method</th><th>path</th><th>what</th><th>role</th><th>fields</th></tr>
{"".join(rows)}</table>
<h2>Errors</h2><pre>{errors}</pre></body></html>
""")
