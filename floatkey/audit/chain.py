"""The audit record, its canonical bytes, the hash chain, and its verification.

A record is a flat JSON object::

    {"seq": 7, "at": "2026-12-01T11:00:00.123456Z", "kind": "license_added",
     "actor": "alice", "route": "POST /api/v4/licenses", "outcome": "ok",
     "details": {...}, "prev": "<sha256 hex of record 6>", "hash": "<sha256 hex of this one>"}

``hash`` is the SHA-256 of the record's canonical bytes without ``hash`` (JSON, sorted keys,
no spaces, ASCII); ``prev`` is the ``hash`` of the record before (``GENESIS`` for the first
one, or the checkpoint's hash after pruning). A record edited in place no longer matches its
own hash; one re-hashed after editing breaks the next record's ``prev``; a removed record
leaves a gap in ``seq``; records swapped between keys hold another key's ``seq``; records
cut off the end no longer reach the head kept beside the chain.

Everything here is pure: no storage, no threads.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from floatkey.timeutil import format_time

GENESIS = "0" * 64

#: Details are small scalars; longer texts are cut so that no input can bloat the trail.
MAX_TEXT = 256


@dataclass(frozen=True)
class Link:
    """Where the chain stands: the last record's sequence number and hash."""

    seq: int = 0
    hash: str = GENESIS

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "hash": self.hash}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> Link:
        if raw is None:
            return cls()
        return cls(int(raw["seq"]), str(raw["hash"]))


def canonical(record: Mapping[str, Any]) -> bytes:
    """The bytes a record's hash covers: every field but ``hash``, in one fixed spelling."""
    body = {k: v for k, v in record.items() if k != "hash"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def digest(record: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(record)).hexdigest()


def clean_details(details: Mapping[str, Any]) -> dict[str, Any]:
    """Details as JSON scalars: texts cut to ``MAX_TEXT``, anything else made a text."""
    out: dict[str, Any] = {}
    for name, value in details.items():
        if value is None or isinstance(value, bool | int | float):
            out[name] = value
        else:
            out[name] = str(value)[:MAX_TEXT]
    return out


def make_record(
    head: Link,
    at: datetime,
    kind: str,
    actor: str,
    route: str,
    outcome: str,
    details: Mapping[str, Any],
) -> dict[str, Any]:
    """The record that follows ``head``, with its own hash."""
    record: dict[str, Any] = {
        "seq": head.seq + 1,
        "at": format_time(at),
        "kind": kind,
        "actor": str(actor)[:MAX_TEXT],
        "route": str(route)[:MAX_TEXT],
        "outcome": outcome,
        "details": clean_details(details),
        "prev": head.hash,
    }
    record["hash"] = digest(record)
    return record


@dataclass(frozen=True)
class Verdict:
    """The outcome of a walk along the chain: intact, or the first bad record and why."""

    ok: bool
    records: int
    head: Link
    bad_seq: int | None = None
    problem: str = ""

    def describe(self) -> str:
        if self.ok:
            return f"audit trail intact: {self.records} records, head {self.head.seq} {self.head.hash}"
        return f"audit trail broken at record {self.bad_seq}: {self.problem}"


def verify(
    entries: Iterable[tuple[int, Mapping[str, Any]]],
    start: Link | None = None,
    head: Link | None = None,
) -> Verdict:
    """Walk ``(key seq, record)`` pairs in key order from ``start`` (a pruning checkpoint).

    ``head`` is where the appender says the chain ends; records missing at the end are
    found against it.
    """
    prev = start or Link()
    count = 0
    for key_seq, record in entries:
        try:
            seq, own, link = int(record["seq"]), str(record["hash"]), str(record["prev"])
        except (KeyError, TypeError, ValueError):
            return Verdict(False, count, prev, key_seq, "the record is not an audit record (fields missing)")
        if digest(record) != own:
            return Verdict(False, count, prev, key_seq, "edited: its content no longer matches its hash")
        if seq != key_seq:
            return Verdict(
                False, count, prev, key_seq, f"reordered: the record stored as {key_seq} is record {seq}"
            )
        if seq != prev.seq + 1:
            missing = f"{prev.seq + 1}" if seq == prev.seq + 2 else f"{prev.seq + 1} to {seq - 1}"
            return Verdict(False, count, prev, seq, f"removed: record {missing} before it is missing")
        if link != prev.hash:
            return Verdict(
                False, count, prev, seq, "bad link: its prev is not the hash of the record before it"
            )
        prev = Link(seq, own)
        count += 1
    if head is not None and head != prev:
        if head.seq > prev.seq:
            return Verdict(
                False,
                count,
                prev,
                prev.seq + 1,
                f"removed: the trail ends at {prev.seq}, its head is {head.seq}",
            )
        return Verdict(False, count, prev, head.seq, "the head kept beside the chain does not match it")
    return Verdict(True, count, prev)


def in_window(record: Mapping[str, Any], start: datetime | None, end: datetime | None) -> bool:
    """Whether the record's time is within ``[start, end]`` (either open when None)."""
    at = record.get("at")
    if not isinstance(at, str):
        return False
    try:
        when = datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        return False
    return (start is None or when >= start) and (end is None or when <= end)
