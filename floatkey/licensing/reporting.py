"""The server's side of usage reports: gather the totals, sign, and move the chain on.

The imperative shell around report.py and floatkey.usage.totals: it asks the license's
actor for its buckets, has the hardware-key actor's slot 9A sign when the license is
key-bound (else the installation key), and stores the chain's new head through the
storage writer before the report is handed out, so that an acknowledged report is never
followed by one with the same sequence. One report at a time per process (a lock):
two at once would otherwise both take the same sequence.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pykka
from cryptography import x509

from floatkey.actors import license as lic
from floatkey.errors import FloatkeyError, key_not_accessible, overloaded
from floatkey.hardware.gate import KeyChecker
from floatkey.licensing import installation, report
from floatkey.licensing.claims import canonical_json
from floatkey.storage import Storage, records
from floatkey.timeutil import as_utc, format_time
from floatkey.usage.totals import Reported, SeriesTotals, reported_cells, totals

if TYPE_CHECKING:
    from floatkey.actors.directory import LicenseEntry
    from floatkey.actors.hardware_key import HardwareKeyProxy

logger = logging.getLogger(__name__)

T = TypeVar("T")
REPORT_ACTION = "making a usage report"
#: The period when neither ``from`` nor an earlier report says where it starts, and the
#: license has no history yet.
DEFAULT_SPAN = timedelta(days=1)
_lock = threading.Lock()


@dataclass(frozen=True)
class Signing:
    """What signs: the hardware keys (key-bound licenses) or the installation key."""

    keys: KeyChecker
    key_actor: HardwareKeyProxy | None
    data_dir: Path
    timeout: float


def make_report(
    storage: Storage,
    entry: LicenseEntry,
    signing: Signing,
    *,
    since: Any,
    until: Any,
    clock: Callable[[], datetime],
    hardware_id: str,
) -> dict[str, Any]:
    """The next report of ``entry``'s license over ``[since, until)``, stored in its chain.

    The clock is read and the buckets are taken under the lock: a report that read them
    before another report ended would start after its own end (refused) or miss what
    happened meanwhile.
    """
    with _lock:
        return _make_report(storage, entry, signing, since, until, clock(), hardware_id)


def _make_report(
    storage: Storage,
    entry: LicenseEntry,
    signing: Signing,
    since: Any,
    until: Any,
    now: datetime,
    hardware_id: str,
) -> dict[str, Any]:
    end = as_utc(until, "to") or now
    if end > now:
        raise FloatkeyError(
            "usage_range_not_valid",
            f"'to' ({format_time(end)}) is later than now ({format_time(now)}): a report covers "
            "only what has happened. Leave it out to report up to now.",
        )
    license_object = lic.ask(entry.ref, lic.LicenseObject(), signing.timeout)
    places = lic.ask(entry.ref, lic.UsageBuckets(), signing.timeout)
    chain = records.load_report_chain(storage, entry.license_id)
    start = as_utc(since, "from") or _default_start(chain, places, end)
    if start >= end:
        raise FloatkeyError(
            "usage_range_not_valid",
            f"'from' ({format_time(start)}) must be before 'to' ({format_time(end)}).",
        )
    sequence = 1 if chain is None else int(chain["sequence"]) + 1
    # Back to back: the buckets both reports touch count here for what the last one did not.
    follows = chain is not None and as_utc(chain["to"], "to") == start
    reported = cells_from_record(chain.get("cells", []) if follows and chain else [])
    features = [f["code"] for f in license_object.get("product_features", [])]
    body = report.content(
        license=_license(storage, entry.license_id, license_object),
        start=start,
        end=end,
        totals=_totals(places, start, end, now, features, reported),
        sequence=sequence,
        previous_hash=None if chain is None else chain["hash"],
        hardware_id=hardware_id,
        created_at=now,
        signer={},
    )
    text, signed_by = _sign(body, entry, signing)
    digest = report.content_hash(canonical_json(body))
    cells = reported_cells(places, end.timestamp(), now.timestamp(), reported)
    head = records.report_chain_record(sequence, digest, end, now, cells_record(cells))
    storage.wait(storage.write(records.report_chain_ops(entry.license_id, head)), signing.timeout)
    logger.info(
        "usage report %d of license %d made (%s to %s), signed by %s",
        sequence,
        entry.license_id,
        format_time(start),
        format_time(end),
        signed_by,
    )
    return {
        "license_id": entry.license_id,
        "sequence": sequence,
        "hash": digest,
        "previous_hash": body["previous_hash"],
        "from": body["period"]["from"],
        "to": body["period"]["to"],
        "report": text,
    }


def _default_start(chain: Mapping[str, Any] | None, places: Mapping[Any, Any], end: datetime) -> datetime:
    """Where the previous report ended, else where the license's history begins."""
    if chain is not None:
        start = as_utc(chain["to"], "to")
        assert start is not None
        return start
    if places:
        return datetime.fromtimestamp(min(start for _, _, start in places), UTC)
    return end - DEFAULT_SPAN


def _license(storage: Storage, license_id: int, license_object: Mapping[str, Any]) -> dict[str, Any]:
    uid = next(
        (
            records.vendor_license_key_text(key)
            for key, r in storage.items(records.VENDOR_LICENSES)
            if r["license_id"] == license_id
        ),
        None,
    )
    return {
        "id": license_id,
        "license_uid": uid,
        "license_key": license_object.get("license_key"),
        "product": license_object.get("product_details", {}).get("short_code"),
    }


def cells_record(cells: Reported) -> list[list[Any]]:
    """The cells a report ended in, as stored with the chain's head."""
    return [
        [series, step, begin, sums.consumptions, sums.refusals, sums.seat_seconds]
        for series, by_cell in cells.items()
        for (step, begin), sums in by_cell.items()
    ]


def cells_from_record(record: list[list[Any]]) -> dict[str, dict[tuple[int, int], SeriesTotals]]:
    cells: dict[str, dict[tuple[int, int], SeriesTotals]] = {}
    for series, step, begin, consumptions, refusals, seat_seconds in record:
        sums = SeriesTotals(consumptions=consumptions, refusals=dict(refusals), seat_seconds=seat_seconds)
        cells.setdefault(series, {})[(step, begin)] = sums
    return cells


def _totals(
    places: Mapping[Any, Any],
    start: datetime,
    end: datetime,
    now: datetime,
    features: list[str],
    reported: Reported,
) -> dict[str, Any]:
    series = totals(places, start.timestamp(), end.timestamp(), now.timestamp(), reported)
    answer = series.pop("", SeriesTotals()).as_json()
    answer["features"] = {
        code: series.get(code, SeriesTotals()).as_json() for code in sorted({*features, *series})
    }
    return answer


def _sign(body: dict[str, Any], entry: LicenseEntry, signing: Signing) -> tuple[str, str]:
    """The report's text and who signed it; a key-bound license needs one of its keys now."""
    if entry.requires_key:
        serial = signing.keys.check(entry.wanted_keys, REPORT_ACTION)
        if signing.key_actor is None:
            raise key_not_accessible(REPORT_ACTION)
        actor = signing.key_actor
        der = _get(actor.key_certificate(serial, REPORT_ACTION), signing.timeout)
        body["signer"] = report.key_signer(serial)

        def sign(digest: bytes) -> bytes:
            return _get(actor.sign_with_key(serial, digest, REPORT_ACTION), signing.timeout)

        certificate = x509.load_der_x509_certificate(der)
        return report.seal_with_card(body, certificate, sign), f"hardware key {serial}"
    key = installation.load_or_create(signing.data_dir)
    body["signer"] = report.installation_signer(key.public_key())
    return report.seal_with_installation_key(body, key), f"installation key {body['signer']['kid']}"


def _get(future: pykka.Future[T], timeout: float) -> T:
    try:
        return future.get(timeout=timeout)
    except pykka.Timeout:
        raise overloaded() from None
