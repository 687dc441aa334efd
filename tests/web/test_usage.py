"""GET /api/v4/usage and /api/v4/usage.csv against a real server process, real LMDB."""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from floatkey.timeutil import format_time
from tests.support.server import ServerProcess


@pytest.fixture
def srv(tmp_path):
    proc = ServerProcess(tmp_path / "data").start()
    yield proc
    proc.stop()


def window() -> dict[str, str]:
    now = datetime.now(UTC)
    return {"from": format_time(now - timedelta(hours=1)), "to": format_time(now + timedelta(minutes=5))}


def totals(answer: dict) -> dict:
    """What the window holds, whatever minute each request fell in."""
    points = answer["buckets"]
    denials: dict[str, int] = {}
    for p in points:
        for code, n in p["denials"].items():
            denials[code] = denials.get(code, 0) + n
    return {
        "seats_now": points[-1]["seats_in_use"],
        "peak": max(p["peak"] for p in points),
        "consumptions": sum(p["consumptions"] for p in points),
        "denials": denials,
        "feature_consumptions": sum(p["features"]["meter"]["consumptions"] for p in points),
        "feature_denials": sum(sum(p["features"]["fl"]["denials"].values()) for p in points),
    }


def use(srv: ServerProcess) -> int:
    lic = srv.add_license(
        product="cad",
        floating_users=2,
        max_consumptions=100,
        features=[
            {"code": "fl", "is_floating": True, "floating_users": 1},
            {"code": "meter", "feature_type": "consumption", "max_consumption": 50},
        ],
    )
    for user in ("a", "b"):
        srv.post("/api/v4/register", {"product": "cad", "user": user})
    assert (
        srv.post("/api/v4/register", {"product": "cad", "user": "d"}).json()["code"]
        == "floating_not_available"
    )
    assert srv.post("/api/v4/unregister", {"product": "cad", "user": "a"}).status_code == 200
    assert srv.post("/api/v4/register", {"product": "cad", "user": "c"}).status_code == 200
    assert srv.post("/api/v4/add_consumption", {"product": "cad", "consumptions": 7}).status_code == 200
    over = srv.post("/api/v4/add_consumption", {"product": "cad", "consumptions": 500})
    assert over.json()["code"] == "license_not_enough_consumptions"
    srv.post("/api/v4/featureRegister", {"product": "cad", "feature": "fl", "user": "b"})
    taken = srv.post("/api/v4/featureRegister", {"product": "cad", "feature": "fl", "user": "c"})
    assert taken.json()["code"] == "floating_not_available"
    srv.post("/api/v4/add_feature_consumption", {"product": "cad", "feature": "meter", "consumptions": 4})
    return int(lic["id"])


EXPECTED = {
    "seats_now": 2,
    "peak": 2,
    "consumptions": 7,
    "denials": {"floating_not_available": 1, "license_not_enough_consumptions": 1},
    "feature_consumptions": 4,
    "feature_denials": 1,
}


def test_registers_refusals_and_consumptions_show_in_the_history_and_survive_a_restart(srv):
    lid = use(srv)
    query = {"license_id": lid, **window(), "step": "minute"}
    answer = srv.get("/api/v4/usage", params=query)
    assert answer.status_code == 200, answer.text
    # "d" was refused a license seat (2 held), "c" the one seat of the feature "fl".
    assert totals(answer.json()) == EXPECTED
    assert answer.json()["step"] == 60 and len(answer.json()["buckets"]) == 66
    srv.stop()
    srv.start()
    again = srv.get("/api/v4/usage", params=query)
    assert totals(again.json()) == EXPECTED
    assert again.json()["buckets"] == answer.json()["buckets"]


def test_csv_holds_what_the_json_holds(srv):
    lid = use(srv)
    query = {"license_id": lid, **window(), "step": "600"}
    answer = srv.get("/api/v4/usage", params=query).json()
    got = srv.get("/api/v4/usage.csv", params=query)
    assert got.status_code == 200 and got.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(got.text)))
    expected = []
    for p in answer["buckets"]:
        for feature, series in [("", p), *p["features"].items()]:
            expected.append(
                (
                    p["time"],
                    feature,
                    series["seats_in_use"],
                    series["peak"],
                    series["consumptions"],
                    series["denials"],
                )
            )
    codes = sorted({c for *_, d in expected for c in d})
    assert [k for k in rows[0] if k.startswith("denied_")] == [f"denied_{c}" for c in codes]
    assert [
        (
            r["time"],
            r["feature"],
            int(r["seats_in_use"]),
            int(r["peak"]),
            int(r["consumptions"]),
            {c: int(r[f"denied_{c}"]) for c in codes if int(r[f"denied_{c}"])},
        )
        for r in rows
    ] == expected


def test_bad_queries_get_a_clear_400_and_change_nothing(srv):
    lid = use(srv)
    before = srv.get("/api/v4/usage", params={"license_id": lid}).json()
    cases = [
        ({}, "missing_parameters"),
        ({"license_id": "x"}, "validation_error"),
        ({"license_id": lid, "step": "week"}, "validation_error"),
        ({"license_id": lid, "step": "30"}, "validation_error"),
        ({"license_id": lid, "from": "2026-13-01"}, "validation_error"),
        ({"license_id": lid, "from": "2030-01-02", "to": "2030-01-01"}, "usage_range_not_valid"),
        ({"license_id": lid, "from": "2020-01-01", "step": "minute"}, "usage_range_not_valid"),
        ({"license_id": 999}, "license_not_found"),
    ]
    for params, code in cases:
        for path in ("/api/v4/usage", "/api/v4/usage.csv"):
            got = srv.get(path, params=params)
            assert (got.status_code, got.json()["code"]) == (400, code), (params, got.text)
            assert got.json()["message"]
    assert srv.get("/api/v4/usage", params={"license_id": lid}).json()["buckets"] == before["buckets"]


def test_the_openapi_document_has_both_routes_for_admins(srv):
    paths = srv.get("/api/v4/openapi.json").json()["paths"]
    assert paths["/api/v4/usage"]["get"]["x-role"] == "admin"
    assert "text/csv" in paths["/api/v4/usage.csv"]["get"]["responses"]["200"]["content"]
