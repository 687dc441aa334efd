"""Schema-driven fuzzing: schemathesis against the server's own /api/v4/openapi.json.

Every generated request (valid and invalid, positive and negative modes) must get an
answer below 500, and a rejected one (4xx) must leave every license and seat as it was.
The document must match the server exactly: every answer has a documented status, content
type and schema; data the schema forbids is refused; data it allows is never refused as
malformed (a 400 for a rule of the license, such as an unknown product, is fine).
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
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fault.support import snapshot, start_server
from tests.support.server import ServerProcess

pytestmark = pytest.mark.timeout(300)

#: Examples per operation and generation mode; keeps the whole test near a minute.
MAX_EXAMPLES = 10
SEEDED = "fuzz"
_steer = itertools.count()
_seeded: dict[str, int | None] = {"id": None}
_state: dict[str, Any] = {"last": None}
#: Routes that create licenses: steering them would add licenses of the seeded product.
#: An activation request needs no license of its product, so steering it would only turn
#: a refused product into an accepted one.
NOT_STEERED = ("/api/v4/licenses", "/api/v4/addProduct", "/api/v4/license/generate")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
#: Codes that say "the request is malformed": never the answer to data the schema allows.
SHAPE_CODES = ("invalid_json", "validation_error", "missing_parameters", "malformed_request")
#: Rules a JSON schema cannot state (they depend on the license, on another field or on
#: the server's users): a positive example may break them and get a shape code.
NOT_IN_THE_SCHEMA = (
    "Negative consumptions are not allowed",  # the license's allow_negative_consumptions
    "is not a consumption feature",  # the feature's type
    "needs a validity_period",  # time-limited and subscription licenses
    "reset_consumption needs a consumption_period",
    "a list of features with distinct codes",
    "bytes long in UTF-8",  # a user name's 400-byte bound
    "The password is not accepted",  # not the username, not a common password
    "The new password must differ",
    "already exists",  # the users the server has
    "is the last admin",
    "from must not be later than to",  # the audit trail's window
)


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # Generated queries (addProduct's features) run long: the limit on the request line is
    # not what this test is about (tests/fault/test_slow_clients.py and test_http_edges.py).
    server = start_server(Path(tmp_path_factory.mktemp("schemathesis")), "maxHeaderSize: 1048576\n")
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


def seeded_snapshot(server: ServerProcess) -> tuple[Any, Any]:
    """The snapshot, after making sure the seeded license exists with its two seats."""
    state = snapshot(server)
    if is_seeded(state):
        return state
    seed(server, [x["id"] for x in state[0] if x["product_details"]["short_code"] == SEEDED])
    return snapshot(server)


def is_seeded(state: tuple[Any, Any]) -> bool:
    licenses, seats = state
    holders = {s["user"] for s in seats["registrations"] if s["license_id"] == _seeded["id"]}
    return _seeded["id"] in {x["id"] for x in licenses} and {"alice", "bob"} <= holders


def seed(server: ServerProcess, ids: list[int]) -> None:
    """Make sure the seeded license exists with a seat and a borrow taken."""
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
    """Every other request that names a valid product names the seeded one.

    A product the schema refuses is left alone: steering it would make a negative
    example valid.
    """
    if case.path in NOT_STEERED:
        return
    for part in (case.body, case.query):
        if isinstance(part, dict) and _valid_product(part.get("product")) and next(_steer) % 2 == 0:
            part["product"] = SEEDED


def _valid_product(value: Any) -> bool:
    if isinstance(value, int) and not isinstance(value, bool):
        return True
    return isinstance(value, str) and bool(value.strip()) and len(value) <= 256 and "\x00" not in value


def assert_positive_data_accepted(case: Any, response: Any) -> None:
    """Data the schema allows is not refused as malformed (schemathesis's own
    positive_data_acceptance would also refuse every rule of the license)."""
    if case.method == "HEAD" or response.status_code != 400:
        return
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    error = response.json()
    if error.get("code") in SHAPE_CODES and not any(rule in error["message"] for rule in NOT_IN_THE_SCHEMA):
        raise AssertionError(
            f"valid data refused: {case.method} {case.path} {case.body!r} {case.query!r} -> {error}"
        )


def stable(state: tuple[Any, Any], soon: str) -> tuple[Any, Any]:
    """The snapshot without what time alone changes: live counts, expiry flags, seats ending soon."""
    licenses, seats = state
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
    before = _state["last"] or seeded_snapshot(fuzz_server)
    steer(case)
    # As the SDKs send it (a state-changing GET needs it; web/guards.py).
    response = case.call_and_validate(checks=CHECKS, timeout=30, headers={"Content-Type": "application/json"})
    assert_positive_data_accepted(case, response)
    # The state after this request is the state before the next one: one snapshot a case.
    after = snapshot(fuzz_server)
    _state["last"] = after if is_seeded(after) else None
    if response.status_code >= 400 and case.method != "HEAD":
        error = response.json()
        assert {"status", "code", "message"} <= set(error) or error.get("message"), error
        soon = (datetime.now(UTC) + timedelta(seconds=10)).strftime("%Y-%m-%dT%H:%M:%S")
        assert stable(after, soon) == stable(before, soon), (case.method, case.path, response.text[:300])
