"""Usage reports without threads or a server: totals, signing, verification, the chain."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from floatkey.hardware import ca
from floatkey.licensing import report, request, signer
from floatkey.licensing.claims import canonical_json
from floatkey.usage.buckets import HOUR, MINUTE, Bucket, compact
from floatkey.usage.totals import reported_cells, totals

MONTH = timedelta(days=30)
T0 = 1_780_000_000 - 1_780_000_000 % HOUR  # an hour's start


def test_totals_count_the_buckets_of_the_period_and_carry_the_seats_between_them() -> None:
    places = {
        (0, "", T0 - MINUTE): Bucket(2, 2, 1, seat_seconds=120.0),  # before: only its seats carry in
        (0, "", T0 + 10 * MINUTE): Bucket(3, 4, 5, {"floating_not_available": 2}, seat_seconds=150.0),
        (0, "f", T0 + 10 * MINUTE): Bucket(1, 1, 0, seat_seconds=30.0),
        (0, "", T0 + HOUR): Bucket(0, 3, 7, seat_seconds=10.0),  # after the period: not counted
    }
    series = totals(places, T0, T0 + HOUR)
    lic = series[""]
    assert (lic.consumptions, lic.peak_seats, lic.refusals) == (5, 4, {"floating_not_available": 2})
    # 2 seats for 10 minutes, the bucket's own 150 s, then 3 seats for the 49 minutes left.
    assert lic.seat_seconds == 2 * 600 + 150 + 3 * 49 * 60
    assert series["f"].seat_seconds == 30 + 49 * 60
    assert lic.as_json()["seat_hours"] == round(lic.seat_seconds / 3600, 6)


def test_a_bucket_the_period_cuts_counts_pro_rata_and_old_buckets_are_estimated() -> None:
    places = {(1, "", T0): Bucket(2, 2, 9, seat_seconds=3600.0)}  # an hour: one seat on average
    half = totals(places, T0 + HOUR // 2, T0 + HOUR)[""]
    assert half.seat_seconds == 1800.0
    assert half.consumptions == 0  # counts go with the period the bucket starts in
    legacy = totals({(1, "", T0): Bucket(2, 2, 9, seat_seconds=None)}, T0, T0 + HOUR)[""]
    assert (legacy.seat_seconds, legacy.estimated) == (2 * HOUR, True)
    assert legacy.as_json()["seat_hours_estimated"] is True


def body(
    sequence: int = 1, previous: str | None = None, signer_: dict[str, Any] | None = None
) -> dict[str, Any]:
    return report.content(
        license={"id": 3, "license_uid": "Labc", "license_key": "K-1", "product": "cad"},
        start=datetime(2026, 3, 1, tzinfo=UTC) + (sequence - 1) * MONTH,  # back to back
        end=datetime(2026, 3, 1, tzinfo=UTC) + sequence * MONTH,
        totals={"consumptions": 4, "peak_seats": 2, "seat_hours": 1.5, "refusals": {}, "features": {}},
        sequence=sequence,
        previous_hash=previous,
        hardware_id="hw-1",
        created_at=datetime(2026, 4, 1, 0, 5, tzinfo=UTC),
        signer=signer_ or {},
    )


def sealed(key: ed25519.Ed25519PrivateKey, sequence: int = 1, previous: str | None = None) -> str:
    return report.seal_with_installation_key(
        body(sequence, previous, report.installation_signer(key.public_key())), key
    )


def chain(key: ed25519.Ed25519PrivateKey, n: int) -> list[str]:
    texts, previous = [], None
    for sequence in range(1, n + 1):
        content = body(sequence, previous, report.installation_signer(key.public_key()))
        texts.append(report.seal_with_installation_key(content, key))
        previous = report.content_hash(canonical_json(content))
    return texts


def trusted(key: ed25519.Ed25519PrivateKey) -> dict[str, ed25519.Ed25519PublicKey]:
    return {signer.key_id(key.public_key()): key.public_key()}


def test_an_installation_key_report_verifies_and_any_edit_voids_it() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    text = sealed(key)
    verified = report.open_report(text.encode(), trusted(key), None)
    assert verified.content["totals"]["consumptions"] == 4
    assert verified.signed_by == f"installation key {signer.key_id(key.public_key())}"
    edited = text.replace('"consumptions": 4', '"consumptions": 3')
    with pytest.raises(report.ReportProblem) as problem:
        report.open_report(edited, trusted(key), None)
    assert problem.value.kind == "signature"
    other = ed25519.Ed25519PrivateKey.generate()
    with pytest.raises(report.ReportProblem) as problem:
        report.open_report(text, trusted(other), None)
    assert problem.value.kind == "unknown_signer"
    with pytest.raises(report.ReportProblem) as problem:
        report.open_report(b"x" * (report.MAX_REPORT_SIZE + 1), trusted(key), None)
    assert problem.value.kind == "invalid"


def test_a_report_signed_by_another_key_under_the_same_kid_fails() -> None:
    key, forger = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    content = body(1, None, report.installation_signer(key.public_key()))
    forged = report.seal_with_installation_key(content, forger)  # header names the forger's kid
    with pytest.raises(report.ReportProblem):
        report.open_report(forged, trusted(key), None)


def card_signer(private_key: ec.EllipticCurvePrivateKey) -> Any:
    """What the hardware-key actor does: slot 9A signs a SHA-256 digest, DER ECDSA."""
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

    def sign(digest: bytes) -> bytes:
        return private_key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))

    return sign


def test_a_key_report_verifies_against_the_ca_that_certified_the_key_only() -> None:
    ca_key, ca_cert = ca.make_ca()
    card = ec.generate_private_key(ec.SECP256R1())
    certificate = ca.issue(ca_key, ca_cert, card.public_key(), 1234)
    text = report.seal_with_card(body(signer_=report.key_signer("1234")), certificate, card_signer(card))
    verified = report.open_report(text, {}, ca_cert)
    assert verified.signed_by == "hardware key 1234"
    with pytest.raises(report.ReportProblem) as problem:
        report.open_report(text, {}, ca.make_ca("another vendor")[1])
    assert problem.value.kind == "unknown_signer"
    liar = report.seal_with_card(body(signer_=report.key_signer("999")), certificate, card_signer(card))
    with pytest.raises(report.ReportProblem, match="not the key that signed it"):
        report.open_report(liar, {}, ca_cert)


def test_a_chain_holds_and_each_break_is_named() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    one, two, three, four = (report.open_report(t, trusted(key), None) for t in chain(key, 4))
    assert report.check_chain([three, one, four, two]) == []  # a folder: any order
    report.check_link(one, two)
    (gap,) = report.check_chain([one, two, four])
    assert "Missing: report 3" in gap
    with pytest.raises(report.ReportProblem, match="Out of order"):
        report.check_link(three, two)
    with pytest.raises(report.ReportProblem, match="Missing: report 2 to 3"):
        report.check_link(one, four)
    # A report 2 of another history (same key, other previous hash) does not follow report 1.
    stranger = report.open_report(sealed(key, 2, "0" * 64), trusted(key), None)
    with pytest.raises(report.ReportProblem, match="does not follow"):
        report.check_link(one, stranger)
    (fork,) = [p for p in report.check_chain([one, two, stranger]) if "carry sequence 2" in p]
    assert "Two different reports" in fork


def test_an_activation_request_carries_the_installation_key() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    pem = signer.public_pem(key.public_key()).decode()
    content = request.content("cad", "hw-1", [], "n1", datetime(2026, 1, 1, tzinfo=UTC), pem)
    verified = request.verify(request.assemble(content, {}), None)
    assert verified.installation_key is not None
    assert signer.key_id(verified.installation_key) == signer.key_id(key.public_key())
    older = request.content("cad", "hw-1", [], "n1", datetime(2026, 1, 1, tzinfo=UTC))
    assert request.verify(request.assemble(older, {}), None).installation_key is None
    damaged = {**content, "installation_key": "not a key"}
    with pytest.raises(Exception, match="installation_key"):
        request.verify(request.assemble(damaged, {}), None)


def test_a_report_with_a_bad_shape_is_refused_after_its_signature_holds() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    content = {**body(2, None, report.installation_signer(key.public_key()))}  # 2 needs a previous
    text = report.seal_with_installation_key(content, key)
    with pytest.raises(report.ReportProblem, match="previous_hash"):
        report.open_report(text, trusted(key), None)


def test_a_signed_report_whose_totals_are_not_numbers_is_refused_not_printed() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    content = body(1, None, report.installation_signer(key.public_key()))
    content["totals"]["features"] = {"f": "lots"}  # signed by a customer's own installation key
    text = report.seal_with_installation_key(content, key)
    with pytest.raises(report.ReportProblem, match="totals are not numbers"):
        report.open_report(text, trusted(key), None)


def test_back_to_back_reports_count_the_minute_and_the_hour_they_meet_in_once() -> None:
    split = T0 + 10 * MINUTE + 20  # report 1 ends 20 s into a minute
    minute = T0 + 10 * MINUTE
    # At report 1: that minute so far holds 2 consumptions and 1 seat since its start.
    at_first = {(0, "", minute): Bucket(1, 1, 2, seat_seconds=20.0)}
    first = totals(at_first, T0, split, now=split)[""]
    cells = reported_cells(at_first, split, split)
    assert (first.consumptions, first.seat_seconds) == (2, 20.0)
    # The minute goes on: 3 more consumptions and a refusal; the seat is held to its end.
    later = {(0, "", minute): Bucket(1, 1, 5, {"floating_not_available": 1}, seat_seconds=60.0)}
    second = totals(later, split, T0 + HOUR, reported=cells)[""]
    assert (second.consumptions, second.refusals) == (3, {"floating_not_available": 1})
    assert second.seat_seconds == 40.0 + 49 * 60  # the rest of the minute, then the hour
    # Three days on, the minutes are an hour bucket: the hour counts for what report 1 left.
    _, compacted = compact(later, T0 + 3 * 86400)
    third = totals(compacted, split, T0 + HOUR, reported=cells)[""]
    assert (third.consumptions, third.refusals) == (3, {"floating_not_available": 1})
    assert third.seat_seconds == second.seat_seconds


def signed_content(key: ed25519.Ed25519PrivateKey, payload: bytes) -> str:
    """A report whose content is exactly ``payload``, validly signed (a customer holds the key)."""
    import jwt

    headers = {"kid": signer.key_id(key.public_key()), "typ": report.TYPE}
    token = jwt.api_jws.encode(payload, key, algorithm="EdDSA", headers=headers, is_payload_detached=True)
    return (
        f"{report.BEGIN_CONTENT}\n{payload.decode('ascii')}\n{report.END_CONTENT}\n"
        f"{report.BEGIN_SIGNATURE}\n{token}\n{report.END_SIGNATURE}\n"
    )


@pytest.mark.parametrize(
    ("name", "edit"),
    [
        # Two readers of the same signed bytes must not see two reports: first or last key wins?
        (
            "duplicate key",
            lambda p: p.replace(b'"consumptions": 4', b'"consumptions": 4,\n    "consumptions": 400'),
        ),
        ("NaN", lambda p: p.replace(b'"seat_hours": 1.5', b'"seat_hours": NaN')),
        ("Infinity", lambda p: p.replace(b'"peak_seats": 2', b'"peak_seats": Infinity')),
        ("not canonical", lambda p: json.dumps(json.loads(p)).encode()),
        (
            "deeply nested",
            lambda p: p.replace(b'"refusals": {}', b'"refusals": ' + b"[" * 100_000 + b"]" * 100_000),
        ),
    ],
)
def test_signed_content_that_floatkey_never_writes_is_refused_not_read(name: str, edit: Any) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    payload = canonical_json(body(1, None, report.installation_signer(key.public_key())))
    assert report.open_report(signed_content(key, payload), trusted(key), None).sequence == 1
    with pytest.raises(report.ReportProblem) as problem:
        report.open_report(signed_content(key, edit(payload)), trusted(key), None)
    assert problem.value.kind == "invalid", name
    assert "canonical JSON" in problem.value.sentence


def test_verify_report_prints_control_characters_of_a_report_escaped(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from floatkey.licensing import vendor

    key = ed25519.Ed25519PrivateKey.generate()
    pem = tmp_path / "server.pem"
    pem.write_bytes(signer.public_pem(key.public_key()))
    files = []
    previous = None
    for sequence in (1, 3):  # a gap, so that the chain's sentence names the license too
        content = body(sequence, previous, report.installation_signer(key.public_key()))
        # JSON carries them as \u001b: signed, valid, and an escape sequence once parsed.
        content["license"] |= {
            "product": "\x1b[2J\x1b[Hcad",
            "license_uid": "L\x1b]0;ok\x07",
            "license_key": "\u202ek",
        }
        content["totals"]["features"] = {"f\x1b[8m": content["totals"] | {"features": None}}
        del content["totals"]["features"]["f\x1b[8m"]["features"]
        content["hardware_id"] = "hw\r\n"
        path = tmp_path / f"{sequence}.report"
        path.write_text(report.seal_with_installation_key(content, key))
        files.append(str(path))
        previous = report.content_hash(canonical_json(content))
    status = vendor.main(["verify-report", *files, "--installation-key", str(pem)])
    out, err = capsys.readouterr()
    assert status == vendor.EXIT_BROKEN_CHAIN
    assert "valid, signed by" in out and "Missing: report 2" in err
    for text in (out, err):
        assert not any(c in text for c in "\x1b\x07\r\u202e"), text
    assert "\\x1b[2J\\x1b[Hcad" in out and "\\u202ek" in out and "L\\x1b]0;ok\\x07" in err


def test_verify_report_checks_a_folder_against_the_previous_report_given(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from floatkey.licensing import vendor

    key = ed25519.Ed25519PrivateKey.generate()
    pem = tmp_path / "server.pem"
    pem.write_bytes(signer.public_pem(key.public_key()))
    one, two, three, four = chain(key, 4)
    (tmp_path / "1.report").write_text(one)
    folder = tmp_path / "april"
    folder.mkdir()
    (folder / "3.report").write_text(three)
    (folder / "4.report").write_text(four)
    given = ["verify-report", str(folder), "--installation-key", str(pem), "--previous"]
    assert vendor.main([*given, str(tmp_path / "1.report")]) == vendor.EXIT_BROKEN_CHAIN
    assert "Missing: report 2 of Labc" in capsys.readouterr().err
    (tmp_path / "2.report").write_text(two)
    assert vendor.main([*given, str(tmp_path / "2.report")]) == 0
    assert "chain: every report follows the one before it" in capsys.readouterr().out


def test_a_chain_is_signed_by_one_kind_of_key_and_one_installation_key() -> None:
    ca_key, ca_cert = ca.make_ca()
    card = ec.generate_private_key(ec.SECP256R1())
    certificate = ca.issue(ca_key, ca_cert, card.public_key(), 1234)
    first = body(1, None, report.key_signer("1234"))
    one = report.open_report(report.seal_with_card(first, certificate, card_signer(card)), {}, ca_cert)
    # The key-bound license's next report, signed without the key by the installation key
    # (which the customer holds, so it could say anything), names report 1 as it should.
    key = ed25519.Ed25519PrivateKey.generate()
    text = report.seal_with_installation_key(
        body(2, one.hash, report.installation_signer(key.public_key())), key
    )
    unkeyed = report.open_report(text, trusted(key), ca_cert)
    with pytest.raises(report.ReportProblem, match=r"signed by installation key .* report 1 by hardware key"):
        report.check_link(one, unkeyed)
    # Another installation continuing a chain (a copy of the data directory without its key).
    own = report.open_report(chain(key, 1)[0], trusted(key), None)
    other = ed25519.Ed25519PrivateKey.generate()
    text = report.seal_with_installation_key(
        body(2, own.hash, report.installation_signer(other.public_key())), other
    )
    copied = report.open_report(text, trusted(other), None)
    (problem,) = report.check_chain([own, copied])
    assert "signed by installation key" in problem and "another installation" in problem, problem
    # Two keys of a key-bound license's set take turns: the chain holds.
    spare = ec.generate_private_key(ec.SECP256R1())
    spare_cert = ca.issue(ca_key, ca_cert, spare.public_key(), 5678)
    second = body(2, one.hash, report.key_signer("5678"))
    two = report.open_report(report.seal_with_card(second, spare_cert, card_signer(spare)), {}, ca_cert)
    report.check_link(one, two)


def test_reports_that_leave_time_out_or_count_it_twice_break_the_chain() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    signer_ = report.installation_signer(key.public_key())

    def made(sequence: int, previous: str | None, start: str, end: str) -> report.VerifiedReport:
        content = body(sequence, previous, signer_)
        content["period"] = {"from": start, "to": end}
        return report.open_report(report.seal_with_installation_key(content, key), trusted(key), None)

    march = made(1, None, "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z")
    april = made(2, march.hash, "2026-04-01T00:00:00Z", "2026-05-01T00:00:00Z")
    report.check_link(march, april)
    # Report 2 skips a busy week: sequence and hash hold, but that week is in no report.
    skipped = made(2, march.hash, "2026-04-08T00:00:00Z", "2026-05-01T00:00:00Z")
    with pytest.raises(
        report.ReportProblem, match=r"Not reported: 2026-04-01T00:00:00Z to 2026-04-08T00:00:00Z of Labc"
    ):
        report.check_link(march, skipped)
    twice = made(2, march.hash, "2026-03-20T00:00:00Z", "2026-05-01T00:00:00Z")
    with pytest.raises(
        report.ReportProblem,
        match=r"Counted twice or back in time: report 2 of Labc starts at 2026-03-20T00:00:00Z",
    ):
        report.check_link(march, twice)
    content = body(1, None, signer_)
    content["period"] = {"from": "2026-04-01T00:00:00Z", "to": "soon"}
    with pytest.raises(report.ReportProblem, match="period"):
        report.open_report(report.seal_with_installation_key(content, key), trusted(key), None)


def test_a_header_algorithm_that_does_not_fit_the_certificate_key_is_refused_not_a_crash() -> None:
    import base64
    import json as json_

    ca_key, ca_cert = ca.make_ca()
    card = ec.generate_private_key(ec.SECP256R1())
    certificate = ca.issue(ca_key, ca_cert, card.public_key(), 1234)
    text = report.seal_with_card(body(signer_=report.key_signer("1234")), certificate, card_signer(card))
    token = text.split(report.BEGIN_SIGNATURE + "\n")[1].split("\n")[0]
    header, _, signature = token.split(".")
    fields = json_.loads(base64.urlsafe_b64decode(header + "=="))
    forged = base64.urlsafe_b64encode(json_.dumps({**fields, "alg": "RS256"}).encode()).rstrip(b"=")
    with pytest.raises(report.ReportProblem) as problem:  # an EC key under RS256: was a TypeError
        report.open_report(text.replace(token, f"{forged.decode()}..{signature}"), {}, ca_cert)
    assert problem.value.kind == "invalid"
    assert "RS256" in problem.value.sentence and "ES256" in problem.value.sentence
