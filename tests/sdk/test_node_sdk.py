"""LicenseSpring's Node.js SDK (``@licensespring/node-sdk`` from npm), unchanged, against a real floatkey.

``node/driver.js`` runs one SDK call per process and prints what the SDK returned or threw;
``scripts/setup test`` installs the SDK there (``npm ci``) when Node.js is present. The SDK's
``FloatingAPI`` sends the machine's hardware id as the user of borrow, consumption and
feature calls, so the seat under test is the one registered without a username.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from floatkey.app.config import Settings
from floatkey.app.users_command import accounts
from tests.sdk.support import add_sdk_license
from tests.support.server import ServerProcess

NODE_DIR = Path(__file__).parent / "node"
NODE = shutil.which("node")
#: One SDK call; generous, for a loaded 2-core machine (a run takes well under a second).
CALL_TIMEOUT = 120

pytestmark = pytest.mark.skipif(
    NODE is None, reason="Node.js is not installed: install nodejs and npm, then run scripts/setup test"
)

_products = itertools.count(1)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    if not (NODE_DIR / "node_modules" / "@licensespring" / "node-sdk").is_dir():
        pytest.fail(
            f"the Node SDK is not installed in {NODE_DIR}: run scripts/setup test (it runs npm ci there)"
        )
    proc = ServerProcess(tmp_path_factory.mktemp("node-sdk") / "data").start(timeout=120)
    yield proc
    proc.stop()


@pytest.fixture
def product(srv: ServerProcess) -> str:
    """A product with one floating seat, borrowing, metering and a one-seat floating feature."""
    return add_sdk_license(srv, f"node-sdk-{next(_products)}")


def sdk(srv: ServerProcess, product: str, action: str, **args: Any) -> dict[str, Any]:
    """Run one SDK call in node; the driver's answer, ``{"ok": True, "result": ...}`` or
    ``{"ok": False, "error": ...}``."""
    request = {"url": srv.url, "product": product, "action": action, **args}
    assert NODE is not None
    done = subprocess.run(
        [NODE, "driver.js", json.dumps(request)],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=CALL_TIMEOUT,
    )
    assert done.returncode == 0, f"driver.js failed ({done.returncode}):\n{done.stderr}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def result(answer: dict[str, Any]) -> Any:
    assert answer["ok"], answer
    return answer["result"]


def error_code(answer: dict[str, Any]) -> str:
    assert not answer["ok"], answer
    return answer["error"]["code"]


def seats(srv: ServerProcess, product: str) -> dict[str, dict[str, Any]]:
    """Who holds a seat of ``product``, as the server's own admin route shows it."""
    answer = srv.get("/api/v4/registrations")
    assert answer.status_code == 200, answer.text
    return {r["user"]: r for r in answer.json()["registrations"] if r["product"] == product}


def test_login_gives_a_token_in_open_mode(srv: ServerProcess, product: str) -> None:
    assert result(sdk(srv, product, "login"))["token"]
    # Without it the SDK refuses to register: the reason /auth answers in open mode.
    assert error_code(sdk(srv, product, "register", skip_login=True)) == "not_authenticated"
    assert seats(srv, product) == {}


def test_seat_borrow_consumption_features_and_release(srv: ServerProcess, product: str) -> None:
    machine = result(sdk(srv, product, "hardware_id"))
    assert machine

    registered = result(sdk(srv, product, "register", user_info="node app"))
    assert registered["response"]["floating_in_use"] == 1
    assert registered["floating_in_use_devices"] == 1  # as the SDK's license model reads it
    assert seats(srv, product)[machine]["user_info"] == "node app"
    again = result(sdk(srv, product, "register"))  # the periodic check-in keeps the one seat
    assert again["floating_in_use_devices"] == 1 and list(seats(srv, product)) == [machine]

    assert error_code(sdk(srv, product, "register", user="bob")) == "floating_not_available"
    assert "bob" not in seats(srv, product)

    until = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    borrowed = result(sdk(srv, product, "borrow", borrowed_until=until))
    assert borrowed["is_borrowed"] is True and borrowed["borrowed_until"] == until
    assert seats(srv, product)[machine]["borrowed_until"] == until

    consumed = result(
        sdk(srv, product, "add_consumption", consumptions=5, max_overages=0, allow_overages=False)
    )
    assert consumed["total_consumptions"] == 5
    assert (
        error_code(sdk(srv, product, "add_consumption", consumptions=96)) == "license_not_enough_consumptions"
    )
    feature = result(sdk(srv, product, "add_feature_consumption", feature="export", consumptions=3))
    assert feature["total_consumptions"] == 3

    held = result(sdk(srv, product, "feature_register", feature="render"))
    assert (held["feature"], held["user"]) == ("render", machine)
    assert [f["feature"] for f in seats(srv, product)[machine]["features"]] == ["render"]
    assert result(sdk(srv, product, "feature_release", feature="render")) == "feature_released"
    assert seats(srv, product)[machine]["features"] == []

    assert result(sdk(srv, product, "unregister")) == "user_unregistered"
    assert seats(srv, product) == {}
    assert error_code(sdk(srv, product, "unregister")) == "registration_not_found"
    assert result(sdk(srv, product, "register", user="bob"))["floating_in_use_devices"] == 1
    assert list(seats(srv, product)) == ["bob"]


def test_authentication_mode_login_then_register(tmp_path: Path) -> None:
    password = "correct horse battery"
    with accounts(Settings(data_dir=tmp_path / "data")) as users:
        users.add_user("alice", password, "user")
        users.add_user("root", password, "admin")
    srv = ServerProcess(tmp_path / "data", "--user-authentication").start(timeout=120)
    try:
        admin = srv.get("/auth", auth=("root", password)).json()["token"]
        added = srv.post("/api/v4/licenses", {"product": "cad"}, headers={"Authorization": f"Bearer {admin}"})
        assert added.status_code == 201, added.text
        wrong = sdk(srv, "cad", "register", user="pc-1", username="alice", password="not her password")
        assert wrong["error"]["status"] == "authentication_failed"  # the SDK's own error object
        registered = sdk(srv, "cad", "register", user="pc-1", username="alice", password=password)
        assert result(registered)["floating_in_use_devices"] == 1
        assert result(sdk(srv, "cad", "unregister", user="pc-1", username="alice", password=password)) == (
            "user_unregistered"
        )
    finally:
        srv.stop()
