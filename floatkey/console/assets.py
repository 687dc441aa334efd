"""The console's static files, read once from the package, and how they are answered.

The files are a fixed set known at import: a request names one by its file name, never
by a path, so no request can reach a file outside ``static/`` (``..``, ``%2F`` and
absolute names are simply not in the set) and no directory is ever listed.

Every answer is ``no-cache`` with a strong ``ETag``: a browser revalidates on each load
and gets ``304 Not Modified`` while the file is unchanged, so an upgraded server never
serves a stale script next to a new page. Each answer carries the console's security
headers (``SECURITY_HEADERS``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from floatkey.errors import FloatkeyError

#: The Content-Security-Policy of the console: only its own scripts, styles and API; no
#: inline script or style, no frames, no forms posting elsewhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
CONTENT_TYPES = {
    ".html": "text/html;charset=utf-8",
    ".js": "text/javascript;charset=utf-8",
    ".css": "text/css;charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
INDEX = "index.html"


@dataclass(frozen=True)
class Asset:
    """One static file: its bytes, media type and entity tag."""

    name: str
    body: bytes
    content_type: str
    etag: str

    def headers(self) -> dict[str, str]:
        return {
            **SECURITY_HEADERS,
            "Content-Type": self.content_type,
            "Cache-Control": "no-cache",
            "ETag": self.etag,
        }

    def not_modified(self, if_none_match: str | None) -> bool:
        """Whether the browser's ``If-None-Match`` names this version (RFC 9110 13.1.2)."""
        if not if_none_match:
            return False
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or self.etag in tags


def _load() -> dict[str, Asset]:
    assets = {}
    for entry in resources.files(__package__).joinpath("static").iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if not entry.is_file() or suffix not in CONTENT_TYPES:
            continue
        body = entry.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        assets[entry.name] = Asset(entry.name, body, CONTENT_TYPES[suffix], etag)
    return assets


ASSETS: dict[str, Asset] = _load()


def asset(name: str) -> Asset:
    """The static file ``name``; ``not_found`` for any other name (paths included)."""
    found = ASSETS.get(name)
    if found is None:
        raise FloatkeyError("not_found", f"The console has no file {name[:100]!r}; open / for the console.")
    return found


def answer(found: Asset, request: Any, response: Any) -> bytes:
    """Write ``found`` on a CherryPy response: 304 when the browser holds this version."""
    response.headers.update(found.headers())
    if found.not_modified(request.headers.get("If-None-Match")):
        response.status = 304
        response.headers.pop("Content-Type", None)
        return b""
    return found.body
