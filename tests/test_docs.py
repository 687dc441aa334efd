"""The documents say what the code does: every error code and route is in docs/api.md."""

from __future__ import annotations

import re
from pathlib import Path

from floatkey.app.config import Settings
from floatkey.errors import STATUS_BY_CODE
from floatkey.metrics import exposition
from floatkey.web.access import AuthWeb
from floatkey.web.api import build_table
from floatkey.web.audit import AuditWeb
from floatkey.web.openapi import OpenApi

ROOT = Path(__file__).resolve().parents[1]
API = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")


def test_every_error_code_is_documented_with_its_status() -> None:
    rows = dict(re.findall(r"^\| `(\w+)` \| (\d{3}) \|", API, re.M))
    assert rows == {code: str(status) for code, status in STATUS_BY_CODE.items()}


def test_the_route_list_is_the_route_table() -> None:
    settings = Settings()
    table = build_table(
        OpenApi().routes()
        + AuthWeb(settings).routes()
        + AuditWeb(settings).routes()
        + [exposition.route(settings)]
    )
    served = {(r.method, r.path, r.role) for r in table.routes if r.method != "HEAD"}
    documented = set(re.findall(r"^\| (GET|POST|PUT|DELETE) \| `([^`]+)` \| (\w+) \|", API, re.M))
    assert documented == served, (
        f"in the table, not in docs/api.md: {sorted(served - documented)}; "
        f"in docs/api.md only: {sorted(documented - served)}"
    )


def test_docs_cite_no_document_that_is_not_in_the_repository() -> None:
    cited = set()
    for path in [*ROOT.glob("*.md"), *ROOT.glob("docs/*.md"), *ROOT.glob("floatkey/**/*.py"),
                 *ROOT.glob("actors/*.py"), *ROOT.glob("web/*.py"), *ROOT.glob("storage/*.py"),
                 *ROOT.glob("bench/*.py")]:  # fmt: skip
        for name in re.findall(r"(?<![\w/.-])([a-z][a-z-]*\.md)\b", path.read_text(encoding="utf-8")):
            cited.add((name, path.relative_to(ROOT).as_posix()))
    existing = {p.name for p in [*ROOT.glob("*.md"), *ROOT.glob("docs/*.md")]}
    stray = sorted((name, where) for name, where in cited if name not in existing)
    assert not stray, f"documents cited but not in the repository: {stray}"
