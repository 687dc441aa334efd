"""Authentication mode over real sockets: the role of every route, token attacks, throttling, V1 login."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from floatkey.app.config import Settings
from floatkey.app.users_command import accounts
from floatkey.metrics import exposition
from floatkey.web.access import AuthWeb
from floatkey.web.api import build_table
from floatkey.web.audit import AuditWeb
from floatkey.web.openapi import OpenApi
from floatkey.web.routes import ADMIN, PUBLIC, USER, Route
from tests.support.server import ServerProcess, error_of

PW = "correct horse battery"
UNAUTHORIZED = {"message": "Unauthorized: Please log in", "status": 401, "code": "unauthorized"}

#: What the issue says each route needs (point 1 and 3). A route missing here fails the test.
EXPECTED_ROLES: dict[tuple[str, str], str] = {
    ("GET", "/"): PUBLIC,
    ("GET", "/console/{name}"): PUBLIC,
    ("GET", "/api/v4/hardware_key/doctor"): ADMIN,
    ("GET", "/auth"): PUBLIC,
    ("GET", "/api/v4/health"): PUBLIC,
    # Probes (Kubernetes, load balancers) carry no token.
    ("GET", "/api/v4/health/live"): PUBLIC,
    ("GET", "/api/v4/health/ready"): PUBLIC,
    # The API's own documentation: public so clients and fuzzers can read the contract.
    ("GET", "/api/v4/openapi.json"): PUBLIC,
    ("GET", "/api/v4/docs"): PUBLIC,
    ("POST", "/api/v4/register"): USER,
    ("POST", "/api/v4/unregister"): USER,
    ("POST", "/api/v4/borrow"): USER,
    ("POST", "/api/v4/add_consumption"): USER,
    ("POST", "/api/v4/add_feature_consumption"): USER,
    ("POST", "/api/v4/featureRegister"): USER,
    ("POST", "/api/v4/check_license_feature"): USER,
    ("POST", "/api/v4/featureRelease"): USER,
    ("POST", "/api/v4/feature_release"): USER,
    ("GET", "/api/v4/license"): USER,
    ("POST", "/api/v4/users/{username}/password"): USER,
    ("GET", "/api/v4/setPassword"): USER,
    ("GET", "/api/v4/unregister/all"): ADMIN,
    ("POST", "/api/v4/featureRelease/all"): ADMIN,
    ("GET", "/api/v4/featureRelease/all"): ADMIN,
    ("POST", "/api/v4/feature_release/all"): ADMIN,
    ("GET", "/api/v4/feature_release/all"): ADMIN,
    ("POST", "/api/v4/licenses"): ADMIN,
    ("GET", "/api/v4/addProduct"): ADMIN,
    ("DELETE", "/api/v4/licenses/{license_id}"): ADMIN,
    ("GET", "/api/v4/removeProduct"): ADMIN,
    ("GET", "/api/v4/registrations"): ADMIN,
    ("DELETE", "/api/v4/registrations/{license_id}/{user}"): ADMIN,
    ("GET", "/api/v4/hardware_key"): ADMIN,
    ("POST", "/api/v4/license/generate"): ADMIN,
    ("POST", "/api/v4/license/upload"): ADMIN,
    ("GET", "/api/v4/license/report"): ADMIN,
    ("GET", "/api/v4/usage"): ADMIN,
    ("GET", "/api/v4/usage.csv"): ADMIN,
    ("GET", "/api/v4/users"): ADMIN,
    ("POST", "/api/v4/users"): ADMIN,
    ("DELETE", "/api/v4/users/{username}"): ADMIN,
    ("POST", "/api/v4/users/{username}/role"): ADMIN,
    ("POST", "/api/v4/secret/rotate"): ADMIN,
    # Admins, or Prometheus with the scrape token (tests/floatkey/metrics/test_scrape.py).
    ("GET", "/metrics"): ADMIN,
    ("GET", "/api/v4/audit"): ADMIN,
}


def real_routes() -> list[Route]:
    """The table ``floatkey serve`` dispatches with."""
    return build_table(
        OpenApi().routes()
        + AuthWeb(Settings()).routes()
        + AuditWeb(Settings()).routes()
        + [exposition.route(Settings())]
    ).routes


def seed_users(data_dir: Path, **users: str) -> None:
    with accounts(Settings(data_dir=data_dir)) as acc:
        for name, role in users.items():
            acc.add_user(name, PW, role)


def write_config(path: Path, **auth: Any) -> Path:
    lines = ["userAuthentication: true", "auth:"] + [f"  {k}: {json.dumps(v)}" for k, v in auth.items()]
    if not auth:
        lines.pop()
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def login(
    server: ServerProcess, username: str, password: str = PW, forwarded_for: str | None = None
) -> requests.Response:
    headers = {} if forwarded_for is None else {"X-Forwarded-For": forwarded_for}
    return requests.get(server.url + "/auth", auth=(username, password), headers=headers, timeout=30)


def token_of(server: ServerProcess, username: str, password: str = PW) -> str:
    answer = login(server, username, password)
    assert answer.status_code == 200, answer.text
    return answer.json()["token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def call(server: ServerProcess, route: Route, token: str | None, params: dict[str, str]) -> requests.Response:
    path = route.path.format(**params)
    headers = bearer(token) if token else {}
    body = {} if route.method == "POST" else None
    return requests.request(route.method, server.url + path, json=body, headers=headers, timeout=30)


def refused(answer: requests.Response) -> str | None:
    """``unauthorized`` or ``forbidden`` when the role gate stopped the request, else None."""
    if answer.status_code in (401, 403) and answer.headers.get("Content-Type") == "application/json":
        code = answer.json().get("code")
        if code in ("unauthorized", "forbidden"):
            return code
    return None


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("auth")
    seed_users(root / "data", root_admin="admin", alice="user", bob="user")
    proc = ServerProcess(
        root / "data", "--user-authentication", "--config", str(write_config(root / "floatkey.yaml"))
    ).start()
    yield proc
    proc.stop()


# The role table


def test_every_route_has_the_role_the_issue_gives_it() -> None:
    actual = {(r.method, r.path): r.role for r in real_routes()}
    assert actual == EXPECTED_ROLES


def test_the_served_table_is_the_tested_one(auth_server: ServerProcess) -> None:
    document = auth_server.get("/api/v4/openapi.json").json()
    served = {(m.upper(), p): op["x-role"] for p, ops in document["paths"].items() for m, op in ops.items()}
    heads = {p: role for (m, p), role in served.items() if m == "HEAD"}
    assert heads and all(served[("GET", p)] == role for p, role in heads.items())  # HEAD is GET's
    served = {key: role for key, role in served.items() if key[0] != "HEAD"}
    assert served == {(r.method, r.path): r.role for r in real_routes()}


def test_every_route_enforces_its_role(auth_server: ServerProcess) -> None:
    tokens = {"user": token_of(auth_server, "alice"), "admin": token_of(auth_server, "root_admin")}
    params = {
        None: {"license_id": "1", "user": "u", "username": "ghost", "name": "app.js"},
        "user": {"license_id": "1", "user": "u", "username": "alice", "name": "app.js"},
        "admin": {"license_id": "1", "user": "u", "username": "ghost", "name": "app.js"},
    }
    routes = sorted(real_routes(), key=lambda r: r.path == "/api/v4/secret/rotate")  # rotation last
    failures = []
    for route in routes:
        for who in (None, "user", "admin"):
            answer = call(auth_server, route, tokens.get(who) if who else None, params[who])
            got = refused(answer)
            if route.role == PUBLIC:
                want = None
            elif who is None:
                want = "unauthorized"
                if got == want and error_of(answer) != UNAUTHORIZED:
                    failures.append(f"{route.method} {route.path}: 401 body {answer.text}")
            elif route.role == ADMIN and who == "user":
                want = "forbidden"
            else:
                want = None
            if got != want:
                failures.append(
                    f"{route.method} {route.path} as {who or 'nobody'}: "
                    f"{answer.status_code} {answer.text[:120]}, wanted {want or 'through'}"
                )
    assert failures == []


def test_public_routes_answer_without_a_token(auth_server: ServerProcess) -> None:
    assert requests.get(auth_server.url + "/", timeout=30).status_code == 200
    assert requests.get(auth_server.url + "/api/v4/health", timeout=30).json()["status"] == "ok"


def test_401_carries_a_bearer_challenge(auth_server: ServerProcess) -> None:
    answer = requests.post(auth_server.url + "/api/v4/register", json={}, timeout=30)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")


# The V1 login flow


def test_v1_client_login_flow(auth_server: ServerProcess) -> None:
    admin = token_of(auth_server, "root_admin")
    added = requests.post(
        auth_server.url + "/api/v4/licenses",
        json={"product": "cad", "floating_users": 2},
        headers=bearer(admin),
        timeout=30,
    )
    assert added.status_code == 201, added.text
    session = requests.Session()
    login_answer = session.get(
        auth_server.url + "/auth",
        headers={"Authorization": "Basic " + base64.b64encode(f"bob:{PW}".encode()).decode()},
        timeout=30,
    )
    assert login_answer.status_code == 200
    body = login_answer.json()
    assert body["message"] == "Login successful"
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert {"username", "role", "iat", "exp"} <= set(claims)
    assert (claims["username"], claims["role"]) == ("bob", "user")
    assert claims["exp"] - claims["iat"] == Settings().auth.token_lifetime
    session.headers["Authorization"] = f"Bearer {body['token']}"
    registered = session.post(
        auth_server.url + "/api/v4/register", json={"product": "cad", "user": "bob-pc"}, timeout=30
    )
    assert registered.status_code == 200, registered.text
    assert registered.json()["floating_slots_in_use"] == 1
    assert (
        session.post(
            auth_server.url + "/api/v4/unregister", json={"product": "cad", "user": "bob-pc"}, timeout=30
        ).text
        == "user_unregistered"
    )
    assert session.get(auth_server.url + "/api/v4/unregister/all", timeout=30).status_code == 403


def test_unknown_user_and_wrong_password_get_the_same_answer(auth_server: ServerProcess) -> None:
    wrong = login(auth_server, "alice", "not her password")
    unknown = login(auth_server, "nobody-at-all", "not her password")
    assert wrong.status_code == unknown.status_code == 401
    assert (
        error_of(wrong)
        == error_of(unknown)
        == {"status": 401, "code": "authentication_failed", "message": "Wrong username or password."}
    )


@pytest.mark.parametrize(
    "header", [None, "Basic", "Basic !!!", "Bearer abc", "Basic " + base64.b64encode(b"nocolon").decode()]
)
def test_auth_without_usable_basic_credentials(auth_server: ServerProcess, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    answer = requests.get(auth_server.url + "/auth", headers=headers, timeout=30)
    assert answer.status_code == 401
    assert answer.json()["code"] == "authentication_failed"
    assert answer.headers["WWW-Authenticate"].startswith("Basic")


# Token attacks, over HTTP


def forge(
    server: ServerProcess, key: bytes | None = None, header: dict[str, Any] | None = None, **claims: Any
) -> str:
    """A token signed with ``key`` (default: the server's own secret) over an admin's real claims."""
    real = jwt.decode(token_of(server, "root_admin"), options={"verify_signature": False})
    payload = {**real, **claims}
    secret = (server.data_dir / "token.secret").read_bytes() if key is None else key
    head = header or {"alg": "HS256", "typ": "JWT"}
    encode = lambda data: base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()  # noqa: E731
    signing_input = f"{encode(head)}.{encode(payload)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def users_status(server: ServerProcess, token: str) -> requests.Response:
    return requests.get(server.url + "/api/v4/users", headers=bearer(token), timeout=30)


def test_a_forged_token_with_the_real_secret_passes(auth_server: ServerProcess) -> None:
    """Guard: the forgery helper makes valid tokens, so the attacks below fail for their own reason."""
    assert users_status(auth_server, forge(auth_server)).status_code == 200


@pytest.mark.parametrize(
    "attack",
    [
        "alg_none",
        "other_secret",
        "rs256",
        "rs_header_over_hmac",
        "tampered",
        "expired",
        "not_yet_valid",
        "nbf_future",
        "no_exp",
        "garbage",
    ],
)
def test_token_attacks_get_the_v1_401(auth_server: ServerProcess, attack: str) -> None:
    now = int(time.time())
    if attack == "alg_none":
        token = forge(auth_server, header={"alg": "none", "typ": "JWT"}).rsplit(".", 1)[0] + "."
    elif attack == "other_secret":
        token = forge(auth_server, key=b"x" * 32)
    elif attack == "rs256":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        real = jwt.decode(token_of(auth_server, "root_admin"), options={"verify_signature": False})
        token = jwt.encode(real, key, algorithm="RS256")
    elif attack == "rs_header_over_hmac":
        token = forge(auth_server, header={"alg": "RS256", "typ": "JWT"})
    elif attack == "tampered":
        alice = token_of(auth_server, "alice")
        head, payload, sig = alice.split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
        claims["role"] = "admin"
        body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        token = f"{head}.{body}.{sig}"
    elif attack == "expired":
        token = forge(auth_server, iat=now - 7200, exp=now - 3600)
    elif attack == "not_yet_valid":
        token = forge(auth_server, iat=now + 3600, exp=now + 7200)
    elif attack == "nbf_future":
        token = forge(auth_server, nbf=now + 3600)
    elif attack == "no_exp":
        token = forge(auth_server)
        real = jwt.decode(token, options={"verify_signature": False})
        del real["exp"]
        token = jwt.encode(real, (auth_server.data_dir / "token.secret").read_bytes(), algorithm="HS256")
    else:
        token = "not.a.token"
    answer = users_status(auth_server, token)
    assert answer.status_code == 401
    assert error_of(answer) == UNAUTHORIZED


def test_wrong_role_in_a_forged_token_is_refused(auth_server: ServerProcess) -> None:
    """Even with the real secret, a role that is not the user's current one does not count."""
    assert error_of(users_status(auth_server, forge(auth_server, role="user"))) == UNAUTHORIZED


# Tokens that die


def test_deleted_user_changed_password_and_changed_role_void_tokens(auth_server: ServerProcess) -> None:
    admin = bearer(token_of(auth_server, "root_admin"))
    url = auth_server.url + "/api/v4/users"
    for name in ("carol", "dave", "erin"):
        added = requests.post(url, json={"username": name, "password": PW}, headers=admin, timeout=30)
        assert added.status_code == 201, added.text
        assert added.json()["role"] == "user"
    carol, dave, erin = (token_of(auth_server, n) for n in ("carol", "dave", "erin"))
    assert requests.delete(f"{url}/carol", headers=admin, timeout=30).text == "user_removed"
    changed = requests.post(
        f"{url}/dave/password", json={"password": "a new long password"}, headers=admin, timeout=30
    )
    assert changed.status_code == 200, changed.text
    promoted = requests.post(f"{url}/erin/role", json={"role": "admin"}, headers=admin, timeout=30)
    assert promoted.status_code == 200
    for token in (carol, dave, erin):
        answer = requests.get(auth_server.url + "/api/v4/license", headers=bearer(token), timeout=30)
        assert error_of(answer) == UNAUTHORIZED
    assert token_of(auth_server, "dave", "a new long password")
    assert users_status(auth_server, token_of(auth_server, "erin")).status_code == 200


def test_users_change_their_own_password_but_not_others(auth_server: ServerProcess) -> None:
    admin = bearer(token_of(auth_server, "root_admin"))
    requests.post(
        auth_server.url + "/api/v4/users",
        json={"username": "frank", "password": PW},
        headers=admin,
        timeout=30,
    )
    frank = token_of(auth_server, "frank")
    other = requests.post(
        auth_server.url + "/api/v4/users/alice/password",
        json={"password": "x" * 20},
        headers=bearer(frank),
        timeout=30,
    )
    assert other.status_code == 403
    no_old = requests.post(
        auth_server.url + "/api/v4/users/frank/password",
        json={"password": "x" * 20},
        headers=bearer(frank),
        timeout=30,
    )
    assert no_old.status_code == 400
    short = requests.get(
        auth_server.url + "/api/v4/setPassword",
        headers=bearer(frank),
        timeout=30,
        params={"passwordOld": PW, "passwordNew": "short"},
    )
    assert short.status_code == 400 and short.json()["code"] == "validation_error"
    ok = requests.get(
        auth_server.url + "/api/v4/setPassword",
        params={"passwordOld": PW, "passwordNew": "frank's new passphrase"},
        headers=bearer(frank),
        timeout=30,
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["message"] == "Password changed"
    assert users_status(auth_server, frank).status_code == 401
    assert (
        requests.get(
            auth_server.url + "/api/v4/license", headers=bearer(ok.json()["token"]), timeout=30
        ).status_code
        == 200
    )


def test_rotating_the_secret_voids_every_token(tmp_path: Path) -> None:
    seed_users(tmp_path / "data", root_admin="admin", alice="user")
    server = ServerProcess(tmp_path / "data", "--user-authentication").start()
    try:
        alice, admin = token_of(server, "alice"), token_of(server, "root_admin")
        before = (tmp_path / "data" / "token.secret").read_bytes()
        rotated = requests.post(server.url + "/api/v4/secret/rotate", headers=bearer(admin), timeout=30)
        assert rotated.status_code == 200, rotated.text
        assert (tmp_path / "data" / "token.secret").read_bytes() != before
        for token in (alice, admin):
            assert (
                error_of(requests.get(server.url + "/api/v4/license", headers=bearer(token), timeout=30))
                == UNAUTHORIZED
            )
        assert users_status(server, rotated.json()["token"]).status_code == 200
        server.wait_for_log("token secret rotated")
        assert token_of(server, "alice")
    finally:
        server.stop()


# First admin, throttling


def test_initial_admin_must_change_the_password_first(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "floatkey.yaml", initialAdminPassword="first-start-password")
    server = ServerProcess(tmp_path / "data", "--user-authentication", "--config", str(cfg)).start()
    try:
        assert login(server, "admin", "admin").status_code == 401
        first = login(server, "admin", "first-start-password").json()
        assert first["must_change_password"] is True
        answer = users_status(server, first["token"])
        assert answer.status_code == 403 and "initial password" in answer.json()["message"]
        changed = requests.get(
            server.url + "/api/v4/setPassword",
            headers=bearer(first["token"]),
            timeout=30,
            params={"passwordOld": "first-start-password", "passwordNew": PW},
        )
        assert changed.status_code == 200, changed.text
        assert users_status(server, changed.json()["token"]).status_code == 200
        assert login(server, "admin", "first-start-password").status_code == 401
        assert "first-start-password" not in server.log and PW not in server.log
    finally:
        server.stop()


@contextlib.contextmanager
def throttling_server(tmp_path: Path, **auth: Any) -> Iterator[ServerProcess]:
    """A server in authentication mode with user alice and these ``auth`` settings."""
    seed_users(tmp_path / "data", alice="user")
    cfg = write_config(tmp_path / "floatkey.yaml", throttleWindow=120, **auth)
    server = ServerProcess(tmp_path / "data", "--user-authentication", "--config", str(cfg)).start()
    try:
        yield server
    finally:
        server.stop()


def test_logins_are_throttled_with_retry_after(tmp_path: Path) -> None:
    with throttling_server(tmp_path, maxFailedLogins=3) as server:
        for _ in range(3):
            assert login(server, "alice", "wrong password!").status_code == 401
        throttled = login(server, "alice")
        assert throttled.status_code == 429
        assert throttled.json()["code"] == "too_many_requests"
        assert 1 <= int(throttled.headers["Retry-After"]) <= 120
        # The address is throttled too: another name from here is refused before its password is read.
        assert login(server, "someone-else", "whatever password").status_code == 429
        server.wait_for_log("logins throttled")


def test_behind_a_trusted_proxy_logins_are_throttled_per_forwarded_client(tmp_path: Path) -> None:
    with throttling_server(tmp_path, maxFailedLogins=2, trustedProxies=["127.0.0.1"]) as server:
        for name in ("guess-1", "guess-2"):
            assert login(server, name, "wrong password!", "198.51.100.7").status_code == 401
        assert login(server, "guess-3", "wrong password!", "198.51.100.7").status_code == 429
        # The proxy's other clients are not held to the guesser's count.
        assert login(server, "alice", PW, "198.51.100.8").status_code == 200
        # A client cannot escape its count by claiming another address left of the proxy's.
        assert login(server, "guess-4", "wrong password!", "203.0.113.1, 198.51.100.7").status_code == 429
        server.wait_for_log("logins throttled for address '198.51.100.7'")


def test_without_trusted_proxies_the_forwarded_header_is_ignored(tmp_path: Path) -> None:
    with throttling_server(tmp_path, maxFailedLogins=2) as server:
        for i, name in enumerate(("guess-1", "guess-2")):
            assert login(server, name, "wrong password!", f"198.51.100.{i}").status_code == 401
        assert login(server, "guess-3", "wrong password!").status_code == 429
        server.wait_for_log("logins throttled for address '127.0.0.1'")


def test_open_mode_stays_open(server: ServerProcess) -> None:
    assert server.get("/api/v4/license").status_code == 200
    assert server.post("/api/v4/licenses", {"product": "open"}).status_code == 201


def test_open_mode_login_gives_v1_clients_a_token_that_is_no_credential(tmp_path: Path) -> None:
    """The Node SDK registers only after ``/auth`` gave it a token, even on an open server."""
    seed_users(tmp_path / "data", root_admin="admin", alice="user")
    server = ServerProcess(tmp_path / "data").start()
    try:
        server.add_license(product="cad", floating_users=1)
        answers = [
            login(server, "anyone", "anything"),
            requests.get(server.url + "/auth", timeout=30),
            login(server, "alice", PW),
        ]
        assert [a.status_code for a in answers] == [200, 200, 200], [a.text for a in answers]
        tokens = {a.json()["token"] for a in answers}
        assert len(tokens) == 1 and all(tokens)
        token = tokens.pop()
        registered = server.post(
            "/api/v4/register", {"product": "cad", "user": "pc-1"}, headers=bearer(token)
        )
        assert registered.status_code == 200, registered.text
    finally:
        server.stop()
    # The same data directory in authentication mode: the open-mode token opens nothing.
    server = ServerProcess(tmp_path / "data", "--user-authentication").start()
    try:
        for method, path in (
            ("POST", "/api/v4/register"),
            ("GET", "/api/v4/license"),
            ("GET", "/api/v4/users"),
        ):
            answer = requests.request(
                method,
                server.url + path,
                json={"product": "cad", "user": "pc-2"},
                headers=bearer(token),
                timeout=30,
            )
            assert (answer.status_code, error_of(answer)) == (401, UNAUTHORIZED), (path, answer.text)
        refused_login = login(server, "anyone", "anything")
        assert refused_login.status_code == 401 and refused_login.json()["code"] == "authentication_failed"
        assert token_of(server, "alice") != token
    finally:
        server.stop()
