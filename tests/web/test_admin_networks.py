"""Open mode: admin routes answer only adminNetworks; client routes stay open to everyone.

Linux routes all of 127.0.0.0/8 to the loopback interface, so a client socket bound to
127.0.0.2 or 127.0.0.3 is a second and a third machine as far as the server can tell.
"""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from floatkey.app.config import Settings, load
from floatkey.errors import ConfigError
from tests.support.server import ServerProcess

OTHER, PROXY = "127.0.0.2", "127.0.0.3"


def call(
    server: ServerProcess,
    method: str,
    path: str,
    body: Any = None,
    source: str = "127.0.0.1",
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """``method path`` from a client socket bound to ``source``: the status and the parsed body."""
    url = urlsplit(server.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30, source_address=(source, 0))
    try:
        payload = None if body is None else json.dumps(body)
        conn.request(method, path, payload, {"Content-Type": "application/json", **(headers or {})})
        answer = conn.getresponse()
        raw = answer.read()
    finally:
        conn.close()
    try:
        return answer.status, json.loads(raw) if raw else None
    except ValueError:
        return answer.status, raw.decode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("admin-networks")
    config = root / "floatkey.yaml"
    config.write_text(
        f"hardwareKey:\n  enabled: false\nadminNetworks: [127.0.0.1/32]\nauth:\n  trustedProxies: [{PROXY}]\n"
    )
    proc = ServerProcess(root / "data", "--config", str(config)).start()
    yield proc
    proc.stop()


ADMIN_CALLS = [
    ("POST", "/api/v4/licenses", {"product": "intruder", "floating_users": 1}),
    ("GET", "/api/v4/addProduct?product=intruder", None),
    ("GET", "/api/v4/registrations", None),
    ("GET", "/api/v4/unregister/all", None),
    ("POST", "/api/v4/featureRelease/all", None),
    ("GET", "/api/v4/removeProduct?product=cad", None),
    ("DELETE", "/api/v4/licenses/1", None),
    ("DELETE", "/api/v4/registrations/1/alice", None),
    ("GET", "/api/v4/hardware_key", None),
]


def test_admin_routes_refuse_other_networks_and_change_nothing(server: ServerProcess) -> None:
    status, lic = call(server, "POST", "/api/v4/licenses", {"product": "cad", "floating_users": 3})
    assert status == 201, lic
    status, _ = call(server, "POST", "/api/v4/register", {"product": "cad", "user": "alice"}, source=OTHER)
    assert status == 200
    for method, path, body in ADMIN_CALLS:
        status, answer = call(server, method, path, body, source=OTHER)
        assert status == 403, (method, path, answer)
        assert answer["code"] == "forbidden" and "adminNetworks" in answer["message"], answer
        assert OTHER in answer["message"]
    status, licenses = call(server, "GET", "/api/v4/license")
    assert [(lic["product_details"]["short_code"], lic["floating_in_use_devices"]) for lic in licenses] == [
        ("cad", 1)
    ]
    server.wait_for_log(f"refused to {OTHER} (not in adminNetworks)")


def test_client_routes_stay_open_to_every_network(server: ServerProcess) -> None:
    call(server, "POST", "/api/v4/licenses", {"product": "open", "floating_users": 3})
    for source in (OTHER, PROXY):
        seat = {"product": "open", "user": f"u-{source}"}
        assert call(server, "POST", "/api/v4/register", seat, source=source)[0] == 200
        assert call(server, "GET", "/api/v4/license?product=open", source=source)[0] == 200
        assert call(server, "GET", "/api/v4/health", source=source)[0] == 200
        assert call(server, "POST", "/api/v4/unregister", seat, source=source)[0] == 200


def test_admin_routes_answer_the_admin_network(server: ServerProcess) -> None:
    status, lic = call(server, "POST", "/api/v4/licenses", {"product": "mine", "floating_users": 1})
    assert status == 201
    assert call(server, "GET", "/api/v4/registrations")[0] == 200
    assert call(server, "DELETE", f"/api/v4/licenses/{lic['id']}")[0] == 200


def test_behind_a_trusted_proxy_the_named_client_counts(server: ServerProcess) -> None:
    via_proxy = {"X-Forwarded-For": "127.0.0.1"}
    assert call(server, "GET", "/api/v4/registrations", source=PROXY, headers=via_proxy)[0] == 200
    outsider = {"X-Forwarded-For": "10.1.2.3"}
    assert call(server, "GET", "/api/v4/registrations", source=PROXY, headers=outsider)[0] == 403
    # Anyone else may write the header: it proves nothing.
    assert call(server, "GET", "/api/v4/registrations", source=OTHER, headers=via_proxy)[0] == 403


def test_the_default_is_loopback_only() -> None:
    assert Settings().admin_networks == ("127.0.0.0/8", "::1/128")


def test_a_network_that_is_not_one_is_refused_by_name(tmp_path: Path) -> None:
    config = tmp_path / "floatkey.yaml"
    config.write_text("adminNetworks: [10.0.0.0/33]\n")
    with pytest.raises(ConfigError, match=r"adminNetworks: '10.0.0.0/33' is not an IP address or network"):
        load(config)


def test_authentication_mode_lets_the_admin_role_decide(tmp_path: Path) -> None:
    from floatkey.app.users_command import accounts

    password = "an admin's long password"
    with accounts(Settings(data_dir=tmp_path / "data")) as acc:
        acc.add_user("root_admin", password, "admin")
    config = tmp_path / "floatkey.yaml"
    config.write_text("hardwareKey:\n  enabled: false\nadminNetworks: [127.0.0.1/32]\n")
    proc = ServerProcess(tmp_path / "data", "--user-authentication", "--config", str(config)).start()
    try:
        basic = base64.b64encode(f"root_admin:{password}".encode()).decode()
        status, login = call(proc, "GET", "/auth", source=OTHER, headers={"Authorization": f"Basic {basic}"})
        assert status == 200, login
        bearer = {"Authorization": f"Bearer {login['token']}"}
        assert call(proc, "GET", "/api/v4/registrations", source=OTHER, headers=bearer)[0] == 200
        assert call(proc, "GET", "/api/v4/registrations", source=OTHER)[0] == 401
    finally:
        proc.stop()
