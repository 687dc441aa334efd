"""The V1 client routes over a real socket against a real server process."""

import itertools
import json
import socket
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
import requests

from tests.support.server import ServerProcess

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    proc = ServerProcess(tmp_path_factory.mktemp("client") / "data").start()
    yield proc
    proc.stop()


_products = itertools.count(1)


@pytest.fixture
def product(srv):
    """A fresh product per test, so tests sharing the server do not see each other's seats."""
    return f"product-{next(_products)}"


def post(srv, path, body):
    return srv.post(f"/api/v4/{path}", body)


def error(response, status=400):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"status", "code", "message"} and body["status"] == status
    return body["code"]


def test_front_page_and_v2_ping(srv):
    assert srv.get("/").status_code == 200
    ping = srv.get("/api/v5/ping")
    assert ping.status_code == 404
    assert ping.json().get("message") != "pong"


def test_one_seat_license_second_user_is_refused(srv, product):
    srv.add_license(product=product, floating_users=1)
    first = post(
        srv,
        "register",
        {
            "product": product,
            "user": "alice",
            "os_hostname": "a-pc",
            "sdk_ver": "2.1",
            "registered_at": "whenever",
        },
    )
    assert first.status_code == 200
    answer = first.json()
    assert answer["floating_slots_in_use"] == 1
    assert json.loads(answer["license_json"])["product_details"]["short_code"] == product
    assert answer["registration"]["os_hostname"] == "a-pc"
    assert answer["borrowed_until"] is None and "user" not in answer
    assert error(post(srv, "register", {"product": product, "user": "bob"})) == "floating_not_available"
    again = post(srv, "register", {"product": product, "user": "alice"})
    assert again.status_code == 200 and again.json()["floating_slots_in_use"] == 1
    assert again.json()["floating_in_use"] == 1
    released = post(srv, "unregister", {"product": product, "user": "alice"})
    assert released.status_code == 200 and released.text == "user_unregistered"
    assert error(post(srv, "unregister", {"product": product, "user": "alice"})) == "registration_not_found"
    assert post(srv, "register", {"product": product, "user": "bob"}).status_code == 200


def test_loose_types_are_accepted(srv, product):
    lic = srv.add_license(
        product=product, floating_users="2", max_consumptions="10", allow_overages="true", max_overages="2"
    )
    ok = post(srv, "register", {"product": product, "user": "u", "license_id": str(lic["id"])})
    assert ok.status_code == 200
    consumed = post(
        srv,
        "add_consumption",
        {"product": product, "consumptions": "11", "allowOverages": "false", "max_overages": "0"},
    )
    assert consumed.status_code == 200, consumed.text
    assert consumed.json()["total_consumptions"] == 11
    # The client's own overage fields are ignored: the license allows 12, not more.
    assert (
        error(
            post(
                srv,
                "add_consumption",
                {"product": product, "consumptions": 2, "allow_overages": True, "max_overages": 100},
            )
        )
        == "license_not_enough_consumptions"
    )


@pytest.mark.parametrize(
    "body",
    [
        {"consumptions": "ten"},
        {"consumptions": 1.5},
        {"consumptions": True},
        {"consumptions": [1]},
        {"consumptions": 1, "allow_overages": "maybe"},
        {"consumptions": 1, "max_overages": "x"},
        {"consumptions": 1, "license_id": "abc"},
        {"consumptions": 10**30},
    ],
)
def test_wrong_types_are_validation_errors_and_change_nothing(srv, product, body):
    srv.add_license(product=product, max_consumptions=100)
    assert error(post(srv, "add_consumption", {"product": product, **body})) == "validation_error"
    [lic] = srv.get(f"/api/v4/license?product={product}").json()
    assert lic["total_consumptions"] == 0


@pytest.mark.parametrize("path", ["register", "unregister", "borrow", "featureRegister", "featureRelease"])
def test_user_is_required(srv, product, path):
    srv.add_license(product=product)
    assert error(post(srv, path, {"product": product, "feature": "f"})) == "missing_parameters"


def test_product_is_required_and_must_exist(srv):
    assert error(post(srv, "register", {"user": "u"})) == "missing_parameters"
    assert error(post(srv, "register", {"product": "never-added", "user": "u"})) == "unknown_product"


def test_license_id_must_belong_to_the_product(srv, product):
    srv.add_license(product=product)
    other = srv.add_license(product=product + "-other")
    body = {"product": product, "user": "u", "license_id": other["id"]}
    assert error(post(srv, "register", body)) == "license_not_found"
    body["license_id"] = 10**12
    assert error(post(srv, "register", body)) == "license_not_found"


def test_disabled_and_expired_licenses(srv, product):
    srv.add_license(product=product, license_enabled=False)
    assert error(post(srv, "register", {"product": product, "user": "u"})) == "license_not_active"
    srv.add_license(
        product=product + "-old", license_type="time-limited", validity_period="2020-01-01T00:00:00+02:00"
    )
    assert error(post(srv, "register", {"product": product + "-old", "user": "u"})) == "license_expired"


def test_borrow(srv, product):
    srv.add_license(product=product, floating_users=1, max_borrow_time=24)
    answer = post(srv, "borrow", {"product": product, "user": "u", "borrowed_until": None})
    assert answer.status_code == 200
    assert answer.json()["borrowed_until"].endswith("Z")
    assert answer.json()["is_borrowed"] is True
    too_far = post(srv, "borrow", {"product": product, "user": "u", "borrowed_until": "2999-01-01"})
    assert error(too_far) == "borrow_until_not_valid"
    past = post(
        srv, "borrow", {"product": product, "user": "u", "borrowed_until": "2020-01-01T10:00:00+05:00"}
    )
    assert error(past) == "borrow_until_not_valid"
    assert (
        error(post(srv, "borrow", {"product": product, "user": "u", "borrowed_until": "soon"}))
        == "validation_error"
    )
    assert error(post(srv, "borrow", {"product": product, "user": "other"})) == "floating_not_available"
    srv.add_license(product=product + "-nb")
    assert (
        error(post(srv, "borrow", {"product": product + "-nb", "user": "u"})) == "license_borrow_not_allowed"
    )


def test_features(srv, product):
    srv.add_license(
        product=product,
        floating_users=3,
        features=[
            {"code": "render", "is_floating": True, "floating_users": 1},
            {"code": "export", "feature_type": "consumption", "max_consumption": 2},
            {"code": "plain"},
        ],
    )
    fields = {"product": product, "user": "alice", "feature": "render"}
    assert error(post(srv, "featureRegister", fields)) == "registration_not_found"
    post(srv, "register", {"product": product, "user": "alice"})
    post(srv, "register", {"product": product, "user": "bob"})
    taken = post(srv, "featureRegister", fields)
    assert taken.status_code == 200 and taken.json()["feature"] == "render"
    alias = post(srv, "check_license_feature", fields)
    assert alias.status_code == 200
    assert error(post(srv, "featureRegister", {**fields, "user": "bob"})) == "floating_not_available"
    assert error(post(srv, "featureRegister", {**fields, "feature": "plain"})) == "feature_not_floating"
    assert (
        error(post(srv, "featureRegister", {**fields, "feature": "nope"})) == "invalid_license_feature_code"
    )
    released = post(srv, "feature_release", fields)
    assert released.status_code == 200 and released.text == "feature_released"
    assert error(post(srv, "featureRelease", fields)) == "registration_not_found"
    consume = {"product": product, "feature": "export", "consumptions": 2}
    done = post(srv, "add_feature_consumption", consume)
    assert done.status_code == 200 and done.json()["total_consumptions"] == 2
    assert error(post(srv, "add_feature_consumption", consume)) == "license_not_enough_consumptions"
    assert (
        error(post(srv, "add_feature_consumption", {**consume, "feature": "nope"}))
        == "invalid_license_feature_code"
    )


def test_user_names_as_long_as_storage_keys_allow(srv, product):
    """A user becomes part of LMDB keys (511 bytes at most): the limit is in UTF-8 bytes."""
    feature = "f" * 64
    srv.add_license(
        product=product,
        floating_users=1,
        features=[{"code": feature, "is_floating": True, "floating_users": 1}],
    )
    longest = "\U0001f600" * 100
    fields = {"product": product, "user": longest, "feature": feature}
    assert post(srv, "register", fields).status_code == 200
    assert post(srv, "featureRegister", fields).status_code == 200
    too_long = {**fields, "user": "\U0001f600" * 100 + "x"}
    assert error(post(srv, "register", too_long)) == "validation_error"
    assert "400 bytes" in post(srv, "register", too_long).json()["message"]
    assert [
        s["user"] for s in srv.get("/api/v4/registrations").json()["registrations"] if s["product"] == product
    ] == [longest]
    assert post(srv, "featureRelease", fields).status_code == 200
    assert post(srv, "unregister", fields).status_code == 200


def test_negative_consumption(srv, product):
    srv.add_license(product=product, max_consumptions=5)
    assert error(post(srv, "add_consumption", {"product": product, "consumptions": -1})) == "validation_error"
    srv.add_license(product=product + "-neg", max_consumptions=5, allow_negative_consumptions=True)
    post(srv, "add_consumption", {"product": product + "-neg", "consumptions": 5})
    back = post(srv, "add_consumption", {"product": product + "-neg", "consumptions": -2})
    assert back.json()["total_consumptions"] == 3


def test_health_and_license_listing(srv, product):
    health = srv.get("/api/v4/health").json()
    assert health["status"] == "ok" and health["hardware_id"]
    assert health["storage"]["writable"] is True and 0 < health["storage"]["map_used"] < 0.01
    srv.add_license(product=product, floating_users=4)
    [lic] = srv.get(f"/api/v4/license?product={product}").json()
    assert lic["floating_users"] == 4 and lic["is_floating"] is True
    assert error(srv.get("/api/v4/license?product=never-added")) == "unknown_product"


@pytest.mark.parametrize(
    "raw",
    [b"{", b"[1, 2]", b'"text"', b"\xff\xfe", b"[" * 60000],
    ids=["open", "list", "string", "bytes", "deep"],
)
def test_malformed_json_is_refused(srv, raw):
    answer = srv.session.post(
        srv.url + "/api/v4/register", data=raw, headers={"Content-Type": "application/json"}, timeout=10
    )
    assert error(answer) == "invalid_json"


@pytest.mark.parametrize(
    ("route", "fields", "field"),
    [
        ("licenses", b'"metadata": {"limits": [1, 1e400]}', "metadata.limits[1]"),
        ("licenses", b'"metadata": {"x": -1e999}', "metadata.x"),
        ("licenses", b'"metadata": {"x": NaN}', "metadata.x"),
        ("licenses", b'"floating_users": Infinity', "floating_users"),
        ("licenses", b'"features": [{"code": "f", "metadata": {"x": -Infinity}}]', "features[0].metadata.x"),
        ("licenses", b'"metadata": "{\\"x\\": 1e400}"', "metadata.x"),
        ("add_consumption", b'"consumptions": NaN', "consumptions"),
    ],
    ids=["1e400", "-1e999", "NaN", "Infinity", "-Infinity in a feature", "1e400 in JSON text", "NaN count"],
)
def test_non_finite_numbers_are_refused_naming_the_field(srv, product, route, fields, field):
    """Python's JSON reader takes them; stored, they came back as tokens strict clients refuse."""
    if route == "add_consumption":
        srv.add_license(product=product, allow_unlimited_consumptions=True)
    raw = b'{"product": "%s", %s}' % (product.encode(), fields)
    answer = srv.session.post(srv.url + f"/api/v4/{route}", data=raw, timeout=10)
    assert error(answer) == "validation_error"
    assert repr(field) in answer.json()["message"]
    listed = srv.get(f"/api/v4/license?product={product}")
    if route == "licenses":
        assert error(listed) == "unknown_product"
    else:
        [lic] = json.loads(listed.text, parse_constant=pytest.fail)  # strict JSON
        assert lic["total_consumptions"] == 0


def test_metadata_msgpack_cannot_store_is_refused_and_the_server_writes_on(srv, product):
    srv.add_license(product=product)
    raw = b'{"product": "%s-2", "metadata": {"n": 1%s}}' % (product.encode(), b"0" * 100)
    answer = srv.session.post(srv.url + "/api/v4/licenses", data=raw, timeout=10)
    assert error(answer) == "validation_error" and "'metadata.n'" in answer.json()["message"]
    assert post(srv, "register", {"product": product, "user": "alice"}).status_code == 200
    assert srv.get("/api/v4/health").json()["storage"]["writable"] is True


def test_oversized_body_is_refused_and_changes_nothing(srv, product):
    srv.add_license(product=product)
    body = {"product": product, "user": "u", "user_info": "x" * 70000}
    assert error(post(srv, "register", body), 413) == "payload_too_large"
    chunked = srv.session.post(
        srv.url + "/api/v4/register", timeout=10, data=iter([json.dumps(body).encode()])
    )
    assert error(chunked, 413) == "payload_too_large"
    [lic] = srv.get(f"/api/v4/license?product={product}").json()
    assert lic["floating_in_use_devices"] == 0


def raw_exchange(srv, head: bytes, body_pieces) -> tuple[int, dict]:
    """Send a request piece by piece on a bare socket and read the answer up to the close."""
    parts = urlsplit(srv.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(head)
        for piece in body_pieces:
            sock.sendall(piece)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head_part, _, payload = answer.partition(b"\r\n\r\n")
    assert b"connection: close" in head_part.lower()
    return int(head_part.split()[1]), json.loads(payload)


def test_oversized_body_still_sent_gets_its_answer(srv, product):
    """The server reads a refused body before it closes; a client still sending would
    otherwise be cut off with a broken pipe instead of reading the 413."""
    body = json.dumps({"product": product, "user": "u", "user_info": "x" * 2_000_000}).encode()
    head = (
        b"POST /api/v4/register HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    pieces = [body[i : i + 16384] for i in range(0, len(body), 16384)]
    status, answer = raw_exchange(srv, head, pieces)
    assert (status, answer["code"]) == (413, "payload_too_large")


def test_body_past_the_drain_limit_is_refused_at_once(srv):
    head = (
        b"POST /api/v4/register HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100000000\r\n\r\n"
    )
    status, answer = raw_exchange(srv, head, [])
    assert (status, answer["code"]) == (413, "payload_too_large")


def test_odd_unicode_and_long_strings(srv, product):
    srv.add_license(product=product, floating_users=3)
    ok = post(srv, "register", {"product": product, "user": "用户 🎫 \u202e"})
    assert ok.status_code == 200
    assert ok.json()["registration"]["user"] == "用户 🎫 \u202e"
    assert error(post(srv, "register", {"product": product, "user": "x" * 300})) == "validation_error"
    assert error(post(srv, "register", {"product": product, "user": "a\u0000b"})) == "validation_error"
    assert error(post(srv, "register", {"product": product, "user": {"id": 1}})) == "validation_error"


def test_unknown_route_and_wrong_method(srv):
    assert error(srv.get("/api/v4/nothing-here"), 404) == "not_found"
    wrong = srv.get("/api/v4/register")
    assert error(wrong, 405) == "method_not_allowed"
    assert "POST" in wrong.headers["Allow"]


def test_keep_alive_connection_survives_errors(srv, product):
    srv.add_license(product=product)
    with requests.Session() as session:
        for _ in range(3):
            assert (
                session.post(srv.url + "/api/v4/register", data=b"{", headers=JSON, timeout=10).status_code
                == 400
            )
            # Refused before its body is read (web/guards.py): the next request must not see it.
            not_json = session.post(srv.url + "/api/v4/register", data=b'{"a": 1}' * 1000, timeout=10)
            assert not_json.status_code == 415
            assert (
                session.post(
                    srv.url + "/api/v4/register", timeout=10, json={"product": product, "user": "u"}
                ).status_code
                == 200
            )


PAST_9999_IN_UTC = "9999-12-31T23:59:59-05:00"


def test_dates_past_year_9999_in_utc_are_client_errors_that_change_nothing(srv, product):
    lic = srv.add_license(
        product=product, floating_users=1, max_borrow_time=24, features=[{"code": "f", "is_floating": True}]
    )
    refused = post(srv, "borrow", {"product": product, "user": "u", "borrowed_until": PAST_9999_IN_UTC})
    assert error(refused) == "validation_error" and "borrowed_until" in refused.json()["message"]
    assert srv.get(f"/api/v4/registrations?license_id={lic['id']}").json()["registrations"] == []
    assert post(srv, "register", {"product": product, "user": "u"}).status_code == 200
    for name in ("borrow_until", "borrowed_until"):
        fields = {"product": product, "user": "u", "feature": "f", name: PAST_9999_IN_UTC}
        refused = post(srv, "featureRegister", fields)
        assert error(refused) == "validation_error" and name in refused.json()["message"]
    seats = srv.get(f"/api/v4/registrations?license_id={lic['id']}").json()["registrations"]
    assert [s["features"] for s in seats] == [[]]
    for name in ("validity_period", "start_date"):
        refused = srv.post("/api/v4/licenses", {"product": product + "-x", name: PAST_9999_IN_UTC})
        assert error(refused) == "validation_error" and name in refused.json()["message"]
        refused = srv.get("/api/v4/addProduct", params={"product": product + "-x", name: PAST_9999_IN_UTC})
        assert error(refused) == "validation_error" and name in refused.json()["message"]
    feature = {"code": "g", "expiry_date": PAST_9999_IN_UTC}
    refused = srv.post("/api/v4/licenses", {"product": product + "-x", "features": [feature]})
    assert error(refused) == "validation_error" and "expiry_date" in refused.json()["message"]
    assert error(srv.get("/api/v4/license", params={"product": product + "-x"})) == "unknown_product"


def test_a_feature_borrow_holds_the_license_seat_it_rests_on(srv, product):
    """The license seat of a user who borrows a feature lives as long as that borrow: when it
    timed out it took the borrowed feature seat with it (the slow, real-time check of the
    same is tests/fault/test_feature_borrow.py)."""
    lic = srv.add_license(
        product=product,
        floating_timeout=1,
        max_borrow_time=24,
        features=[{"code": "f", "is_floating": True, "floating_users": 1}],
    )
    assert post(srv, "register", {"product": product, "user": "u"}).status_code == 200
    fields = {"product": product, "user": "u", "feature": "f", "borrow_until": None}
    borrowed = post(srv, "featureRegister", {**fields, "borrow_until": "2099-01-01"})
    assert error(borrowed) == "borrow_until_not_valid"
    taken = post(srv, "featureRegister", {**fields, "borrow_until": _in_hours(2)})
    assert taken.status_code == 200, taken.text
    until = taken.json()["borrowed_until"]
    [seat] = srv.get(f"/api/v4/registrations?license_id={lic['id']}").json()["registrations"]
    assert seat["borrowed_until"] == seat["expires_at"] == until
    assert seat["features"][0]["borrowed_until"] == until


def _in_hours(hours):
    return (datetime.now(UTC) + timedelta(hours=hours)).replace(microsecond=0).isoformat()


def test_a_borrow_ends_with_the_license_and_start_date_must_come_before_its_end(srv, product):
    ends = _in_hours(2)
    srv.add_license(product=product, license_type="time-limited", validity_period=ends, max_borrow_time=24)
    longest = post(srv, "borrow", {"product": product, "user": "u", "borrowed_until": None})
    assert longest.status_code == 200, longest.text
    expected = ends.replace("+00:00", "Z")
    assert longest.json()["borrowed_until"] == longest.json()["validity_period"] == expected
    asked = post(srv, "borrow", {"product": product, "user": "u", "borrowed_until": _in_hours(20)})
    assert asked.status_code == 200 and asked.json()["borrowed_until"] == expected
    backwards = {"product": product + "-b", "start_date": "2031-01-01", "validity_period": "2030-01-01"}
    refused = srv.post("/api/v4/licenses", backwards)
    assert error(refused) == "validation_error" and "start_date" in refused.json()["message"]
    assert error(srv.get("/api/v4/addProduct", params=backwards)) == "validation_error"
    assert error(srv.get("/api/v4/license", params={"product": product + "-b"})) == "unknown_product"


def test_license_json_agrees_with_the_answer_it_is_in(srv, product):
    srv.add_license(product=product, max_borrow_time=24)
    for path in ("borrow", "register"):  # a register after a borrow still holds the borrow
        answer = post(srv, path, {"product": product, "user": "u", "borrowed_until": None}).json()
        inner = json.loads(answer["license_json"])
        assert inner["is_borrowed"] is True and inner["borrowed_until"] is not None
        assert {key: answer[key] for key in inner} == inner, path
