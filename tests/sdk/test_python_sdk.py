"""LicenseSpring's Python SDK (``licensespring`` from PyPI), unchanged, against a real floatkey.

Two layers of the SDK: ``FloatingAPIClient``, its V1 floating server client, which names the
user of each call; and ``FloatingManager``, which an application uses, which sends the
machine's hardware id as the user and parses the register answer into its license model.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from licensespring.api.error import ClientError
from licensespring.floating_server import FloatingAPIClient
from licensespring.licensefile.config import Configuration
from licensespring.licensefile.floating_manager import FloatingManager

from floatkey.app.config import Settings
from floatkey.app.users_command import accounts
from tests.sdk.support import add_sdk_license
from tests.support.server import ServerProcess

_products = itertools.count(1)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("python-sdk") / "data").start(timeout=120)
    yield proc
    proc.stop()


@pytest.fixture
def product(srv: ServerProcess) -> str:
    """A product with one floating seat, borrowing, metering and a one-seat floating feature."""
    return add_sdk_license(srv, f"py-sdk-{next(_products)}")


def client_for(srv: ServerProcess) -> FloatingAPIClient:
    url = urlsplit(srv.url)
    return FloatingAPIClient(api_protocol=url.scheme, api_domain=url.netloc)


def seats(srv: ServerProcess, product: str) -> dict[str, dict[str, Any]]:
    """Who holds a seat of ``product``, as the server's own admin route shows it."""
    answer = srv.get("/api/v4/registrations")
    assert answer.status_code == 200, answer.text
    return {r["user"]: r for r in answer.json()["registrations"] if r["product"] == product}


def test_floating_api_client_covers_the_v1_routes(srv: ServerProcess, product: str) -> None:
    client = client_for(srv)
    assert client.is_floating_server_v2() is False  # else it would switch to the V2 protocol
    assert client.auth("alice", "any password")["token"]  # open mode: a token all the same

    answer = client.register_user(product=product, user="alice", os_hostname="alice-pc")
    assert answer["floating_slots_in_use"] == 1
    assert seats(srv, product)["alice"]["os_hostname"] == "alice-pc"

    with pytest.raises(ClientError) as refused:
        client.register_user(product=product, user="bob")
    assert (refused.value.status, refused.value.code) == (400, "floating_not_available")
    assert "bob" not in seats(srv, product)

    until = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    borrowed = client.borrow(product=product, user="alice", borrowed_until=until.isoformat())
    assert borrowed["is_borrowed"] is True
    assert seats(srv, product)["alice"]["borrowed_until"] == until.strftime("%Y-%m-%dT%H:%M:%SZ")

    consumed = client.add_consumption(product=product, consumptions=5, user="alice")
    assert consumed["total_consumptions"] == 5
    with pytest.raises(ClientError) as too_many:
        client.add_consumption(product=product, consumptions=96, user="alice")
    assert too_many.value.code == "license_not_enough_consumptions"
    feature = client.add_feature_consumption(
        product=product, feature_code="export", consumptions=3, user="alice"
    )
    assert feature["total_consumptions"] == 3

    held = client.feature_register(product=product, feature_code="render", user="alice")
    assert (held["feature"], held["user"]) == ("render", "alice")
    assert [f["feature"] for f in seats(srv, product)["alice"]["features"]] == ["render"]
    assert client.feature_release(product=product, feature_code="render", user="alice") == "feature_released"
    assert seats(srv, product)["alice"]["features"] == []

    assert client.unregister_user(product=product, user="alice") == "user_unregistered"
    assert seats(srv, product) == {}
    with pytest.raises(ClientError) as gone:
        client.unregister_user(product=product, user="alice")
    assert gone.value.code == "registration_not_found"
    assert client.register_user(product=product, user="bob")["floating_slots_in_use"] == 1
    assert set(seats(srv, product)) == {"bob"}


def test_floating_manager_as_an_application_uses_it(srv: ServerProcess, product: str, tmp_path: Path) -> None:
    url = urlsplit(srv.url)
    conf = Configuration(
        product=product,
        # The SDK insists on keys for LicenseSpring's cloud; a floating server ignores them.
        api_key="unused-by-floating-servers",
        shared_key="unused-by-floating-servers",
        file_key="floatkey-test-file-key-32-bytes!",
        file_iv="floatkey-test-iv",
        api_protocol=url.scheme,
        api_domain=url.netloc,
        file_path=str(tmp_path),
        is_guard_file_enabled=False,
    )
    manager = FloatingManager(conf)
    assert manager.is_online()
    manager.auth("alice", "any password")

    license = manager.register(os_hostname="app-host")
    assert license.is_floating() and license.floating_in_use_devices() == 1
    (user,) = seats(srv, product)  # the SDK registers the machine's hardware id
    assert seats(srv, product)[user]["os_hostname"] == "app-host"

    with pytest.raises(ClientError) as refused:
        client_for(srv).register_user(product=product, user="another-machine")
    assert refused.value.code == "floating_not_available"

    until = (datetime.now(UTC) + timedelta(hours=3)).replace(microsecond=0)
    license.floating_borrow(until.strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert seats(srv, product)[user]["borrowed_until"] == until.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert license.borrow_until() is not None

    license.add_local_consumption(7)
    assert license.sync_consumption() is True
    [stored] = srv.get(f"/api/v4/license?product={product}").json()
    assert stored["total_consumptions"] == 7

    license.check_feature("render")
    assert [f["feature"] for f in seats(srv, product)[user]["features"]] == ["render"]
    license.release_feature("render")
    assert seats(srv, product)[user]["features"] == []

    license.floating_release(throw_e=True)
    assert seats(srv, product) == {}


def test_authentication_mode_login_then_register(tmp_path: Path) -> None:
    password = "correct horse battery"
    with accounts(Settings(data_dir=tmp_path / "data")) as users:
        users.add_user("alice", password, "user")
        users.add_user("root", password, "admin")
    srv = ServerProcess(tmp_path / "data", "--user-authentication").start(timeout=120)
    try:
        admin = client_for(srv)
        admin.auth("root", password)
        assert admin.send_request("post", "/licenses", json_data={"product": "cad"}).status_code == 201
        client = client_for(srv)
        with pytest.raises(ClientError) as refused:
            client.register_user(product="cad", user="pc-1")
        assert (refused.value.status, refused.value.code) == (401, "unauthorized")
        with pytest.raises(ClientError) as wrong:
            client.auth("alice", "not her password")
        assert wrong.value.code == "authentication_failed"
        assert client.auth("alice", password)["token"]
        assert client.register_user(product="cad", user="pc-1")["floating_slots_in_use"] == 1
        assert client.unregister_user(product="cad", user="pc-1") == "user_unregistered"
    finally:
        srv.stop()
