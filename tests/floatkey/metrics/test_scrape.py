"""GET /metrics on a real server process: the figures follow real events, and who may read them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from floatkey.app.config import Settings
from floatkey.app.system import Floatkey
from floatkey.app.users_command import accounts
from tests.support.server import ServerProcess

PW = "correct horse battery"
SCRAPE_TOKEN = "scrape-3f9a1c7e5b2d4e6f8a0b"
#: What clients send that must never show in a scrape.
CLIENT_TEXT = ("alice", "bob", "carol", "alice-laptop", "10.1.2.3", "alice's notes")


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def scrape(server: ServerProcess, **kwargs: Any) -> tuple[str, Samples]:
    answer = requests.get(server.url + "/metrics", timeout=30, **kwargs)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("text/plain")
    return answer.text, parse(answer.text)


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def post(server: ServerProcess, route: str, body: dict[str, Any]) -> requests.Response:
    return server.post(f"/api/v4/{route}", body)


def test_figures_follow_registers_refusals_and_consumptions(server: ServerProcess) -> None:
    lic = server.add_license(
        product="cad",
        floating_users=1,
        max_consumptions=100,
        features=[
            {"code": "render", "is_floating": True, "floating_users": 2},
            {"code": "export", "feature_type": "consumption", "max_consumption": 7},
        ],
    )
    lid = str(lic["id"])
    client = {"os_hostname": "alice-laptop", "ip_local": "10.1.2.3", "user_info": "alice's notes"}
    assert post(server, "register", {"product": "cad", "user": "alice", **client}).status_code == 200
    refused = post(server, "register", {"product": "cad", "user": "bob"})
    assert refused.json()["code"] == "floating_not_available"
    assert server.delete(f"/api/v4/registrations/{lid}/alice").status_code == 200
    assert post(server, "register", {"product": "cad", "user": "carol"}).status_code == 200
    assert post(server, "add_consumption", {"product": "cad", "consumptions": 5}).status_code == 200
    taken = post(server, "featureRegister", {"product": "cad", "feature": "render", "user": "carol"})
    assert taken.status_code == 200
    consumed = post(
        server, "add_feature_consumption", {"product": "cad", "feature": "export", "consumptions": 3}
    )
    assert consumed.status_code == 200
    assert server.get("/api/v4/no/such/route/carol").status_code == 404

    text, samples = scrape(server)

    cad = {"license_id": lid, "product": "cad"}
    assert value(samples, "floatkey_license_seats_used", **cad) == 1  # alice's freed by the DELETE
    assert value(samples, "floatkey_license_seats_allowed", **cad) == 1
    assert value(samples, "floatkey_license_consumptions_used", **cad) == 5
    assert value(samples, "floatkey_license_consumptions_allowed", **cad) == 100
    render = {**cad, "feature": "render"}
    assert value(samples, "floatkey_feature_seats_used", **render) == 1
    assert value(samples, "floatkey_feature_seats_allowed", **render) == 2
    export = {**cad, "feature": "export"}
    assert value(samples, "floatkey_feature_consumptions_used", **export) == 3
    assert value(samples, "floatkey_feature_consumptions_allowed", **export) == 7
    assert value(samples, "floatkey_license_actors") == 1

    assert value(samples, "floatkey_refusals_total", code="floating_not_available") == 1
    assert value(samples, "floatkey_refusals_total", code="not_found") == 1
    register = {"route": "/api/v4/register", "method": "POST"}
    assert value(samples, "floatkey_http_requests_total", **register, status="200") == 2
    assert value(samples, "floatkey_http_requests_total", **register, status="400") == 1
    assert value(samples, "floatkey_http_request_duration_seconds_count", **register) == 3
    assert value(samples, "floatkey_http_request_duration_seconds_sum", **register) > 0  # type: ignore[operator]
    release = {"route": "/api/v4/registrations/{license_id}/{user}", "method": "DELETE"}
    assert value(samples, "floatkey_http_requests_total", **release, status="200") == 1
    unmatched = {"route": "unmatched", "method": "unmatched"}
    assert value(samples, "floatkey_http_requests_total", **unmatched, status="404") == 1

    # Every change above was committed: the license, the seats, the consumptions.
    commits = value(samples, "floatkey_storage_commit_seconds_count")
    assert commits is not None and commits >= 1
    assert value(samples, "floatkey_storage_commit_batch_size_sum") >= commits  # type: ignore[operator]
    assert 0 < value(samples, "floatkey_storage_map_used_ratio") < 1  # type: ignore[operator]
    assert value(samples, "floatkey_storage_writable") == 1

    for text_sent in CLIENT_TEXT:
        assert text_sent not in text
    assert f"/registrations/{lid}/" not in text  # raw paths never become labels

    # The next scrape counts the one before it: the figures are live, not cached.
    _, again = scrape(server)
    scraped = {"route": "/metrics", "method": "GET", "status": "200"}
    assert value(again, "floatkey_http_requests_total", **scraped) == 1


def write_private(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text, encoding="utf-8")
    os.chmod(path, mode)
    return path


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("metrics-auth")
    with accounts(Settings(data_dir=root / "data")) as acc:
        acc.add_user("root_admin", PW, "admin")
        acc.add_user("alice", PW, "user")
    token_file = write_private(root / "scrape.token", SCRAPE_TOKEN + "\n")
    config = root / "floatkey.yaml"
    config.write_text(
        "userAuthentication: true\nhardwareKey:\n  enabled: false\n"
        f"metrics:\n  scrapeTokenFile: {token_file}\n"
    )
    proc = ServerProcess(root / "data", "--config", str(config)).start()
    yield proc
    proc.stop()


def login(server: ServerProcess, user: str) -> dict[str, str]:
    answer = requests.get(server.url + "/auth", auth=(user, PW), timeout=30)
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def metrics_status(server: ServerProcess, headers: dict[str, str] | None = None) -> tuple[int, str]:
    answer = requests.get(server.url + "/metrics", headers=headers or {}, timeout=30)
    code = answer.json()["code"] if answer.status_code >= 400 else ""
    return answer.status_code, code


def test_authentication_mode_needs_an_admin_or_the_scrape_token(auth_server: ServerProcess) -> None:
    assert metrics_status(auth_server) == (401, "unauthorized")
    assert metrics_status(auth_server, {"Authorization": "Bearer " + SCRAPE_TOKEN[:-1] + "x"}) == (
        401,
        "unauthorized",
    )
    assert metrics_status(auth_server, {"Authorization": "Basic " + SCRAPE_TOKEN}) == (401, "unauthorized")
    assert metrics_status(auth_server, login(auth_server, "alice")) == (403, "forbidden")
    assert metrics_status(auth_server, login(auth_server, "root_admin")) == (200, "")
    _, samples = scrape(auth_server, headers={"Authorization": "Bearer " + SCRAPE_TOKEN})
    assert value(samples, "floatkey_refusals_total", code="unauthorized") == 3
    assert value(samples, "floatkey_refusals_total", code="forbidden") == 1
    # The token opens /metrics only, not the admin routes.
    other = requests.get(
        auth_server.url + "/api/v4/registrations",
        headers={"Authorization": "Bearer " + SCRAPE_TOKEN},
        timeout=30,
    )
    assert other.status_code == 401


def test_the_scrape_token_file_must_be_private_and_a_real_token(tmp_path: Path) -> None:
    config = tmp_path / "floatkey.yaml"
    for name, text, mode, says in (
        ("a.token", SCRAPE_TOKEN, 0o644, "owner-only"),
        ("b.token", "tiny", 0o600, "at least 16 characters"),
        ("c.token", None, 0o600, "cannot read"),
    ):
        path = tmp_path / name
        if text is not None:
            write_private(path, text, mode)
        config.write_text(f"hardwareKey:\n  enabled: false\nmetrics:\n  scrapeTokenFile: {path}\n")
        with pytest.raises(RuntimeError) as refused:
            ServerProcess(tmp_path / "data", "--config", str(config)).start()
        assert "metrics.scrapeTokenFile" in str(refused.value) and says in str(refused.value)
        assert (text or "never logged") not in str(refused.value)  # the token is never shown


def test_each_instance_has_its_own_registry(tmp_path: Path) -> None:
    """Embedded instances in one process: one's figures are never the other's."""
    one = Floatkey(Settings(data_dir=tmp_path / "one"), hardware_keys=False).start()
    two = Floatkey(Settings(data_dir=tmp_path / "two"), hardware_keys=False).start()
    try:
        one.add_license({"product": "cad", "floating_users": 3})
        one.register("cad", "alice")
        first, second = (parse(generate_latest(fk.metrics.registry).decode()) for fk in (one, two))
        assert value(first, "floatkey_license_actors") == 1
        assert value(second, "floatkey_license_actors") == 0
        assert [k for k in first if k[0] == "floatkey_license_seats_used"] != []
        assert [k for k in second if k[0] == "floatkey_license_seats_used"] == []
    finally:
        one.stop()
        two.stop()


def test_metrics_switched_off(tmp_path: Path) -> None:
    config = tmp_path / "floatkey.yaml"
    config.write_text("hardwareKey:\n  enabled: false\nmetrics:\n  enabled: false\n")
    server = ServerProcess(tmp_path / "data", "--config", str(config)).start()
    try:
        answer = server.get("/metrics")
        assert (answer.status_code, answer.json()["code"]) == (404, "not_found")
        assert "/metrics" not in server.get("/api/v4/openapi.json").json()["paths"]
    finally:
        server.stop()
