"""The audit record format, its hash chain and verification: pure, no storage, no threads."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from floatkey.audit.chain import GENESIS, Link, digest, in_window, make_record, verify
from floatkey.audit.events import Audit, outcome_of
from floatkey.audit.origin import Origin, acting_as, current
from floatkey.errors import FloatkeyError, StorageError

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def chain(n: int, start: Link | None = None) -> list[dict]:
    head, out = start or Link(), []
    for i in range(n):
        record = make_record(head, T0.replace(minute=i), "license_added", "root", "cli", "ok", {"i": i})
        out.append(record)
        head = Link(record["seq"], record["hash"])
    return out


def pairs(records: list[dict]) -> list[tuple[int, dict]]:
    return [(r["seq"], r) for r in records]


def test_records_link_to_the_one_before_and_hash_their_own_canonical_bytes():
    first, second = chain(2)
    assert first["seq"] == 1 and first["prev"] == GENESIS and second["prev"] == first["hash"]
    assert first["hash"] == digest(first) == digest({**first, "hash": "anything"})
    assert first["at"] == "2026-12-01T10:00:00Z"
    assert verify(pairs(chain(5)), head=Link(5, chain(5)[-1]["hash"])).ok


def test_details_are_scalars_and_long_texts_are_cut():
    record = make_record(Link(), T0, "user_added", "x" * 1000, "r", "ok", {"n": 1, "t": "y" * 1000, "o": [1]})
    assert len(record["actor"]) == 256 and len(record["details"]["t"]) == 256
    assert record["details"]["o"] == "[1]" and record["details"]["n"] == 1


@pytest.mark.parametrize(
    ("tamper", "bad_seq", "problem"),
    [
        (lambda rs: rs[2].update(actor="mallory"), 3, "edited"),
        (lambda rs: rs.pop(2), 4, "removed: record 3 before it is missing"),
        (lambda rs: rs.__setitem__(slice(2, 4), [rs[3], rs[2]]), 3, "reordered"),
    ],
)
def test_verify_names_the_first_bad_record(tamper, bad_seq, problem):
    records = chain(6)
    keys = [r["seq"] for r in records]
    tamper(records)
    # Swapped records keep their keys: the key says where a record was stored.
    entries = list(zip(keys, records, strict=False)) if problem == "reordered" else pairs(records)
    verdict = verify(entries)
    assert not verdict.ok and verdict.bad_seq == bad_seq and verdict.problem.startswith(problem)
    assert f"record {bad_seq}" in verdict.describe()


def test_a_record_rehashed_after_an_edit_breaks_the_next_link():
    records = chain(4)
    records[1]["outcome"] = "forbidden"
    records[1]["hash"] = digest(records[1])
    verdict = verify(pairs(records))
    assert (verdict.ok, verdict.bad_seq) == (False, 3) and verdict.problem.startswith("bad link")


def test_records_cut_off_the_end_are_found_against_the_head():
    records = chain(4)
    head = Link(4, records[-1]["hash"])
    verdict = verify(pairs(records[:3]), head=head)
    assert (verdict.ok, verdict.bad_seq) == (False, 4) and verdict.problem.startswith("removed")


def test_a_pruned_chain_verifies_from_its_checkpoint():
    records = chain(6)
    checkpoint = Link(3, records[2]["hash"])
    assert verify(pairs(records[3:]), checkpoint, Link(6, records[-1]["hash"])).ok
    assert not verify(pairs(records[3:])).ok  # without the checkpoint the start is missing


def test_time_window():
    record = chain(1)[0]
    assert in_window(record, None, None) and in_window(record, T0, T0)
    assert not in_window(record, T0.replace(minute=1), None)
    assert not in_window({"at": "garbage"}, None, None)


class Recorder:
    def __init__(self) -> None:
        self.appended: list[tuple] = []

    def append(self, kind, actor, route, outcome, details):
        self.appended.append((kind, actor, route, outcome, dict(details)))
        return {}


def test_audited_records_the_outcome_and_the_current_origin():
    recorder = Recorder()
    audit = Audit(recorder)
    assert audit.audited("license_removed", lambda: 7, license_id=1) == 7
    with acting_as(Origin("alice", "DELETE /x")), pytest.raises(FloatkeyError):
        audit.audited("license_removed", lambda: (_ for _ in ()).throw(FloatkeyError("not_found", "no")))
    assert current() == Origin("embedding", "embedding")
    assert recorder.appended == [
        ("license_removed", "embedding", "embedding", "ok", {"license_id": 1}),
        ("license_removed", "alice", "DELETE /x", "not_found", {}),
    ]
    with pytest.raises(ValueError, match="unknown audit event kind"):
        audit.record("made_up")
    assert outcome_of(StorageError("full")) == "service_unavailable"
    assert outcome_of(RuntimeError()) == "internal_error"


class FullDisk:
    def append(self, kind, actor, route, outcome, details):
        raise StorageError("the change could not be stored: disk full")


def test_a_refusal_still_answers_when_its_record_cannot_be_stored(caplog):
    audit = Audit(FullDisk())
    bad_input = FloatkeyError("validation_error", "floating_users must be at least 1")
    with pytest.raises(FloatkeyError) as raised:
        audit.audited("license_added", lambda: (_ for _ in ()).throw(bad_input))
    assert raised.value is bad_input  # a 400, not the 503 of the lost record
    assert "the license_added record (validation_error) could not be stored" in caplog.text
    with pytest.raises(StorageError):  # a change that succeeded is not acknowledged unrecorded
        audit.audited("license_added", lambda: None)


def test_helpers_for_the_vendor_license_work():
    recorder = Recorder()
    audit = Audit(recorder)
    audit.license_event("license_imported", 4, "cad", file_sha256="ab")
    audit.license_event("license_refreshed", 4, "cad")
    audit.clock_rolled_back("2026-12-01T10:00:00Z", "2026-11-30T10:00:00Z")
    assert [a[0] for a in recorder.appended] == ["license_imported", "license_refreshed", "clock_rolled_back"]
    assert recorder.appended[0][4] == {"license_id": 4, "product": "cad", "file_sha256": "ab"}
    assert recorder.appended[2][1:3] == ("floatkey", "system")
    with pytest.raises(ValueError, match="not a license event"):
        audit.license_event("user_added", 4, "cad")
