"""Usage reports through a real server process, and the vendor's verify-report on them.

No hardware key here: reports are signed by the installation key, whose public key the
vendor learns from the server's activation request (tests/web/test_usage_reports_keys.py
has the key-bound reports).
"""

from __future__ import annotations

import itertools
import json
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from floatkey.licensing import installation, report, request, signer, vendor
from floatkey.timeutil import format_time
from tests.support.server import ServerProcess, wait_until
from tests.web.test_usage import EXPECTED, use


def floatkey(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "floatkey", *args], capture_output=True, text=True, timeout=timeout
    )


def make_report(srv: ServerProcess, license_id: int, **period: str) -> dict[str, Any]:
    answer = srv.get("/api/v4/license/report", params={"license_id": license_id, **period})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def installation_keys(srv: ServerProcess) -> dict[str, Any]:
    """What the vendor learns from the server's activation request."""
    asked = srv.post("/api/v4/license/generate", {"product": "cad"})
    assert asked.status_code == 200, asked.text
    key = request.verify(json.dumps(asked.json()).encode(), None).installation_key
    assert key is not None
    return {signer.key_id(key): key}


def test_a_report_holds_the_licenses_totals_and_seat_hours(server: ServerProcess) -> None:
    started = time.time()
    lid = use(server)  # two seats held at the end, refusals and consumptions (test_usage.py)
    used = time.time()
    wait_until(lambda: time.time() - used >= 2, 5, what="two seconds with two seats held")
    asked = time.time()
    made = make_report(server, lid)
    answered = time.time()
    verified = report.open_report(made["report"], installation_keys(server), None)
    body = verified.content
    assert (body["sequence"], body["previous_hash"], made["sequence"]) == (1, None, 1)
    (shown,) = [lic for lic in server.get("/api/v4/license").json() if lic["id"] == lid]
    assert body["license"] == {
        "id": lid,
        "license_uid": None,
        "license_key": shown["license_key"],
        "product": "cad",
    }
    assert body["signer"]["type"] == "installation_key"
    assert body["hardware_id"] == server.get("/api/v4/health").json()["hardware_id"]
    totals = body["totals"]
    assert totals["consumptions"] == EXPECTED["consumptions"]
    assert totals["refusals"] == EXPECTED["denials"]
    assert totals["peak_seats"] == EXPECTED["peak"]
    assert totals["features"]["meter"]["consumptions"] == EXPECTED["feature_consumptions"]
    assert totals["features"]["fl"]["refusals"] == {"floating_not_available": 1}
    assert totals["features"]["fl"]["peak_seats"] == 1
    # Two seats from the end of use() to the report at least; never more than two since the start.
    seconds = totals["seat_hours"] * 3600
    assert 2 * (asked - used) - 0.1 <= seconds <= 2 * (answered - started) + 0.1
    period_end = datetime.fromisoformat(body["period"]["to"])
    assert abs(period_end.timestamp() - asked) < 5


def test_reports_chain_across_a_restart_and_the_vendor_verifies_the_chain(
    server: ServerProcess, tmp_path: Path
) -> None:
    lid = server.add_license(product="cad", floating_users=3)["id"]
    keys = installation_keys(server)
    folder = tmp_path / "reports"
    folder.mkdir()
    texts = []
    for n in (1, 2):
        server.post("/api/v4/register", {"product": "cad", "user": f"u{n}"})
        texts.append(make_report(server, lid)["report"])
    server.stop()
    server.start()
    made = make_report(server, lid)
    texts.append(made["report"])
    first, second, third = (report.open_report(t, keys, None) for t in texts)
    assert [r.sequence for r in (first, second, third)] == [1, 2, 3]
    assert second.previous_hash == first.hash and third.previous_hash == second.hash
    # Back to back: each period starts where the one before ended.
    assert second.content["period"]["from"] == first.content["period"]["to"]
    assert third.content["period"]["from"] == second.content["period"]["to"]
    assert made["hash"] == third.hash

    request_file = tmp_path / "request.json"
    request_file.write_text(
        json.dumps(server.post("/api/v4/license/generate", {"product": "cad"}).json()), encoding="ascii"
    )
    paths = []
    for n, text in enumerate(texts, 1):
        paths.append(folder / f"report-{n}.txt")
        paths[-1].write_text(text, encoding="ascii")
    ok = floatkey("vendor", "verify-report", str(folder), "--request", str(request_file))
    assert ok.returncode == 0, ok.stderr
    assert "report 3 of license" in ok.stdout and "every report follows the one before it" in ok.stdout
    linked = floatkey(
        "vendor", "verify-report", str(paths[2]), "--previous", str(paths[1]), "--request", str(request_file)
    )
    assert linked.returncode == 0, linked.stderr

    # A missing report: the chain shows the gap.
    gap = floatkey("vendor", "verify-report", str(paths[0]), str(paths[2]), "--request", str(request_file))
    assert gap.returncode == report_exit("chain"), gap.stderr
    assert "Missing: report 2" in gap.stderr
    # Two swapped.
    swapped = floatkey(
        "vendor", "verify-report", str(paths[1]), str(paths[0]), "--request", str(request_file)
    )
    assert swapped.returncode == report_exit("chain") and "Out of order" in swapped.stderr
    # An edited report.
    edited = tmp_path / "edited.txt"
    edited.write_text(texts[1].replace('"sequence": 2', '"sequence": 7'), encoding="ascii")
    bad = floatkey("vendor", "verify-report", str(edited), "--request", str(request_file))
    assert bad.returncode == report_exit("signature") and "edited or damaged" in bad.stderr
    # The wrong key: another server's installation key does not verify these.
    other = tmp_path / "other.pem"
    other_key = installation.load_or_create(tmp_path)
    other.write_bytes(signer.public_pem(other_key.public_key()))
    wrong = floatkey("vendor", "verify-report", str(paths[0]), "--installation-key", str(other))
    assert wrong.returncode == report_exit("unknown_signer") and "did not give" in wrong.stderr


def test_what_happens_between_two_reports_is_in_the_second_once(server: ServerProcess) -> None:
    lid = server.add_license(product="cad", floating_users=1, max_consumptions=100)["id"]
    keys = installation_keys(server)

    def act(n: int) -> None:
        for _ in range(n):
            assert server.post("/api/v4/add_consumption", {"product": "cad", "consumptions": 1}).ok
        server.post("/api/v4/register", {"product": "cad", "user": "holder"})
        refused = server.post("/api/v4/register", {"product": "cad", "user": f"other{n}"})
        assert refused.json()["code"] == "floating_not_available"

    act(2)
    first = report.open_report(make_report(server, lid)["report"], keys, None).content["totals"]
    act(3)  # most likely in the minute the first report ended in
    second = report.open_report(make_report(server, lid)["report"], keys, None).content["totals"]
    assert (first["consumptions"], second["consumptions"]) == (2, 3)
    assert first["refusals"] == second["refusals"] == {"floating_not_available": 1}


def report_exit(kind: str) -> int:
    from floatkey.licensing.vendor import EXIT_BROKEN_CHAIN, EXIT_INVALID_REPORT

    return EXIT_BROKEN_CHAIN if kind == "chain" else EXIT_INVALID_REPORT


def test_the_installation_key_is_owner_only_travels_in_requests_and_is_backed_up(
    server: ServerProcess, tmp_path: Path
) -> None:
    path = server.data_dir / installation.FILE_NAME
    assert not path.exists()  # made on first need
    asked = server.post("/api/v4/license/generate", {"product": "cad"}).json()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = installation.load_or_create(server.data_dir)
    assert asked["content"]["installation_key"] == signer.public_pem(key.public_key()).decode()
    assert installation.FILE_NAME not in server.log and "PRIVATE KEY" not in server.log
    copy = tmp_path / "backup"
    done = floatkey("backup", "--data-dir", str(server.data_dir), str(copy))
    assert done.returncode == 0, done.stderr
    assert (copy / installation.FILE_NAME).read_bytes() == path.read_bytes()
    assert stat.S_IMODE((copy / installation.FILE_NAME).stat().st_mode) == 0o600


def test_bad_report_requests_are_refused_and_store_nothing(server: ServerProcess) -> None:
    lid = server.add_license(product="cad")["id"]
    now = datetime.now(UTC)
    cases = [
        ({"license_id": 999}, "license_not_found"),
        ({"license_id": lid, "from": "yesterday"}, "validation_error"),
        ({"license_id": lid, "from": format_time(now), "to": format_time(now - timedelta(hours=1))},
         "usage_range_not_valid"),
        ({"license_id": lid, "to": format_time(now + timedelta(hours=1))}, "usage_range_not_valid"),
    ]  # fmt: skip
    for params, code in cases:
        answer = server.get("/api/v4/license/report", params=params)
        assert (answer.status_code, answer.json()["code"]) == (400, code), params
        assert answer.json()["message"]
    assert make_report(server, lid)["sequence"] == 1  # none of them moved the chain
    head = server.session.head(server.url + "/api/v4/license/report", params={"license_id": lid})
    assert head.status_code == 405


def test_licenses_report_command_through_the_server_and_on_the_data_directory(
    server: ServerProcess, tmp_path: Path
) -> None:
    lid = server.add_license(product="cad")["id"]
    out = tmp_path / "r1.txt"
    made = floatkey("licenses", "report", "--url", server.url, "--license-id", str(lid), "-o", str(out))
    assert made.returncode == 0, made.stderr
    assert f"usage report 1 of license {lid}" in made.stdout
    unknown = floatkey("licenses", "report", "--url", server.url, "--license-id", "999")
    assert unknown.returncode == 1 and "license_not_found" in unknown.stderr
    server.stop()
    config = server.data_dir.parent / f"{server.data_dir.name}-no-keys.yaml"
    direct = floatkey(
        "licenses", "report", "--direct", "--config", str(config), "--data-dir", str(server.data_dir),
        "--license-id", str(lid),
    )  # fmt: skip
    assert direct.returncode == 0, direct.stderr
    keys = {}
    key = installation.load_or_create(server.data_dir)
    keys[signer.key_id(key.public_key())] = key.public_key()
    first = report.open_report(out.read_text(), keys, None)
    second = report.open_report(direct.stdout, keys, None)
    report.check_link(first, second)


def test_a_vendor_licenses_report_names_its_uid_and_verifies_with_the_request(tmp_path: Path) -> None:
    acme = tmp_path / "acme"
    vendor.init(acme)
    config = tmp_path / "floatkey.yaml"
    config.write_text(
        f"hardwareKey:\n  enabled: false\nvendor:\n  publicKeys: [{acme / signer.PUBLIC_KEY_FILE}]\n"
    )
    srv = ServerProcess(tmp_path / "data", "--config", str(config)).start()
    try:
        asked = tmp_path / "req.json"
        asked.write_text(json.dumps(srv.post("/api/v4/license/generate", {"product": "cad"}).json()))
        text, _ = vendor.issue(acme, asked.read_bytes(), {"floating_users": 2})
        installed = srv.session.post(srv.url + "/api/v4/license/upload", data=text.encode(), timeout=30)
        assert installed.status_code == 201, installed.text
        made = make_report(srv, installed.json()["id"])
    finally:
        srv.stop()
    path = tmp_path / "report.txt"
    path.write_text(made["report"], encoding="ascii")
    checked = floatkey("vendor", "verify-report", str(path), "--request", str(asked))
    assert checked.returncode == 0, checked.stderr
    assert f"report 1 of {installed.json()['license_uid']} (product cad" in checked.stdout


def test_a_damaged_installation_key_refuses_reports_and_requests_and_is_never_replaced(
    server: ServerProcess,
) -> None:
    lid = server.add_license(product="cad")["id"]
    path = server.data_dir / installation.FILE_NAME
    for damaged in (b"", b"-----BEGIN PRIVATE KEY-----\ncut short by a crash"):
        path.write_bytes(damaged)  # e.g. a disk that filled up, or a crash while it was written
        for answer in (
            server.get("/api/v4/license/report", params={"license_id": lid}),
            server.post("/api/v4/license/generate", {"product": "cad"}),
        ):
            assert answer.status_code == 503, answer.text
            assert answer.json()["code"] == "service_unavailable"
            message = answer.json()["message"]
            assert installation.FILE_NAME in message and "backup" in message, message
        assert path.read_bytes() == damaged  # a new key would break the vendor's trust
    assert "installation key" in server.log and "cannot be read" in server.log
    assert "cut short" not in server.log  # what the file holds is never logged
    path.unlink()
    assert make_report(server, lid)["sequence"] == 1  # the refusals moved nothing


def test_reports_made_at_once_take_distinct_sequences_in_one_chain(
    server: ServerProcess, tmp_path: Path
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from tests.support.server import sdk_session

    lid = server.add_license(product="cad")["id"]
    keys = installation_keys(server)

    def one(_: int) -> dict[str, Any]:
        with sdk_session() as session:  # a connection each: the requests really overlap
            answer = session.get(
                server.url + "/api/v4/license/report", params={"license_id": lid}, timeout=60
            )
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    with ThreadPoolExecutor(6) as pool:
        made = list(pool.map(one, range(6)))
    assert sorted(m["sequence"] for m in made) == [1, 2, 3, 4, 5, 6]
    opened = [report.open_report(m["report"], keys, None) for m in made]
    assert report.check_chain(opened) == []
    by_sequence = sorted(opened, key=lambda r: r.sequence)
    for earlier, later in itertools.pairwise(by_sequence):
        report.check_link(earlier, later)


def test_a_report_lost_to_a_crash_shows_as_a_broken_link_not_a_reused_number(
    server: ServerProcess,
) -> None:
    lid = server.add_license(product="cad")["id"]
    keys = installation_keys(server)
    first = report.open_report(make_report(server, lid)["report"], keys, None)
    make_report(server, lid)  # report 2: stored, but say the answer never reached anyone
    server.kill()
    server.start()
    third = report.open_report(make_report(server, lid)["report"], keys, None)
    assert third.sequence == 3  # the stored head survived the kill: no number is used twice
    problems = report.check_chain([first, third])
    assert len(problems) == 1 and "Missing: report 2" in problems[0]
