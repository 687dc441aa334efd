"""Schema-driven fuzzing: schemathesis against the server's own /api/v4/openapi.json.

Every generated request (valid and invalid, positive and negative modes) must get an
answer below 500, and a rejected one (4xx) must leave every license and seat as it was.
Part of the requests are steered to a seeded license, so that rejected input reaches the
license's actor and not just the "unknown product" check. The examples are derandomized:
every run sends the same ones, so a failure in CI is one anyone can replay.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.fault.support import snapshot, start_server
from tests.support.server import ServerProcess

pytestmark = pytest.mark.timeout(300)

#: Examples per operation and generation mode; keeps the whole test near a minute.
MAX_EXAMPLES = 25
SEEDED = "fuzz"
_steer = itertools.count()
_seeded: dict[str, int | None] = {"id": None}
#: Routes that create licenses: steering them would add licenses of the seeded product.
NOT_STEERED = ("/api/v4/licenses", "/api/v4/addProduct")


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_server(Path(tmp_path_factory.mktemp("schemathesis")))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def api_schema(fuzz_server: ServerProcess) -> Any:
    schema = schemathesis.openapi.from_url(fuzz_server.url + "/api/v4/openapi.json")
    schema.config.generation.update(max_examples=MAX_EXAMPLES)
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


def seed(server: ServerProcess) -> None:
    """Make sure the seeded license exists with a seat and a borrow taken."""
    answer = server.get(f"/api/v4/license?product={SEEDED}")
    ids = [x["id"] for x in answer.json()] if answer.status_code == 200 else []
    if _seeded["id"] not in ids:
        _seeded["id"] = server.add_license(
            product=SEEDED,
            floating_users=3,
            floating_timeout=600,
            max_borrow_time=24,
            max_consumptions=1000,
            features=[{"code": "f1", "is_floating": True, "floating_users": 1}],
        )["id"]
    for path, user in [("/api/v4/register", "alice"), ("/api/v4/borrow", "bob")]:
        answer = server.post(path, {"product": SEEDED, "license_id": _seeded["id"], "user": user})
        assert answer.status_code == 200, answer.text


def steer(case: Any) -> None:
    """Every other request that names a product names the seeded one."""
    if case.path in NOT_STEERED:
        return
    for part in (case.body, case.query):
        if isinstance(part, dict) and "product" in part and next(_steer) % 2 == 0:
            part["product"] = SEEDED


def stable(state: tuple[Any, Any]) -> tuple[Any, Any]:
    """The snapshot without what time alone changes: live counts, expiry flags, seats ending now."""
    licenses, seats = state
    soon = (datetime.now(UTC) + timedelta(seconds=10)).strftime("%Y-%m-%dT%H:%M:%S")
    kept_licenses = [
        {
            k: v
            for k, v in lic.items()
            if k not in ("floating_in_use_devices", "is_expired", "product_features")
        }
        for lic in licenses
    ]
    kept_seats = [s for s in seats["registrations"] if (s.get("expires_at") or "9") > soon]
    return kept_licenses, kept_seats


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_server_error_and_rejections_change_nothing(case: Any, fuzz_server: ServerProcess) -> None:
    seed(fuzz_server)
    steer(case)
    before = stable(snapshot(fuzz_server))
    # As the SDKs send it (a state-changing GET needs it; web/guards.py).
    response = case.call(timeout=30, headers={"Content-Type": "application/json"})
    assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:500])
    if response.status_code >= 400:
        error = response.json()
        assert {"status", "code", "message"} <= set(error) or error.get("message"), error
        assert stable(snapshot(fuzz_server)) == before, (case.method, case.path, response.text[:300])
