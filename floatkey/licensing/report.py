"""Usage reports: a license's signed totals over a period, chained per license.

A report file has the license file's shape (envelope.py): the content as readable
canonical JSON between two lines, then a detached JWS (RFC 7797, ``b64: false``) over its
exact bytes. A key-bound license's report is signed by the key's slot 9A (ES256 or RS256;
the key's certificate travels in the JWS header, ``x5c``); any other by the server's
installation key (EdDSA; ``kid`` names it). Each report carries its ``sequence`` (per
license, from 1) and the SHA-256 of the previous report's content, so a vendor holding
the reports sees one missing, replaced or out of order. :func:`open_report` verifies the
signature before anything reads the content for meaning.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from floatkey.errors import FloatkeyError
from floatkey.hardware import piv
from floatkey.licensing.claims import canonical_json
from floatkey.licensing.envelope import unwrap
from floatkey.licensing.signer import key_id
from floatkey.timeutil import format_time, parse_time

FORMAT = "floatkey-usage-report/1"
TYPE = "floatkey-usage-report"
BEGIN_CONTENT = "-----BEGIN FLOATKEY USAGE REPORT-----"
END_CONTENT = "-----END FLOATKEY USAGE REPORT-----"
BEGIN_SIGNATURE = "-----BEGIN FLOATKEY USAGE REPORT SIGNATURE-----"
END_SIGNATURE = "-----END FLOATKEY USAGE REPORT SIGNATURE-----"
#: A report is a few kilobytes (one entry per feature); larger input is not one.
MAX_REPORT_SIZE = 1 << 20
CARD_ALGORITHMS = ("ES256", "RS256")


class ReportProblem(Exception):
    """Why a report, or a chain of reports, does not hold; ``kind`` picks the exit status."""

    def __init__(self, kind: str, sentence: str) -> None:
        super().__init__(sentence)
        self.kind = kind
        self.sentence = sentence


def content(
    *,
    license: Mapping[str, Any],
    start: datetime,
    end: datetime,
    totals: Mapping[str, Any],
    sequence: int,
    previous_hash: str | None,
    hardware_id: str,
    created_at: datetime,
    signer: Mapping[str, Any],
) -> dict[str, Any]:
    """The report's content: what is signed, and what the next report's hash covers."""
    return {
        "format": FORMAT,
        "license": dict(license),
        "period": {"from": format_time(start), "to": format_time(end)},
        "totals": dict(totals),
        "sequence": sequence,
        "previous_hash": previous_hash,
        "hardware_id": hardware_id,
        "created_at": format_time(created_at),
        "signer": dict(signer),
    }


def content_hash(payload: bytes) -> str:
    """What the next report names as ``previous_hash``: the SHA-256 of the signed bytes."""
    return hashlib.sha256(payload).hexdigest()


def installation_signer(public_key: ed25519.Ed25519PublicKey) -> dict[str, Any]:
    return {"type": "installation_key", "kid": key_id(public_key)}


def key_signer(serial: str) -> dict[str, Any]:
    return {"type": "hardware_key", "serial": serial}


def seal_with_installation_key(report: Mapping[str, Any], private_key: ed25519.Ed25519PrivateKey) -> str:
    payload = canonical_json(dict(report))
    token = jwt.api_jws.encode(
        payload,
        private_key,
        algorithm="EdDSA",
        headers={"kid": key_id(private_key.public_key()), "typ": TYPE},
        is_payload_detached=True,
    )
    return _text(report, payload, token)


def seal_with_card(
    report: Mapping[str, Any], certificate: x509.Certificate, sign_digest: Callable[[bytes], bytes]
) -> str:
    """Signed by a PIV key's slot 9A: ``sign_digest`` gets the SHA-256 of the JWS signing
    input and answers the card's signature (DER ECDSA, or RSA PKCS#1 v1.5)."""
    algorithm = card_algorithm(certificate.public_key())
    if algorithm is None:
        raise ValueError("the key's certificate holds neither a P-256 EC nor an RSA key")
    header = {
        "alg": algorithm,
        "typ": TYPE,
        "x5c": [base64.b64encode(certificate.public_bytes(Encoding.DER)).decode("ascii")],
        "b64": False,
        "crit": ["b64"],
    }
    header_segment = _b64url(json.dumps(header, separators=(",", ":"), sort_keys=True).encode("ascii"))
    payload = canonical_json(dict(report))
    signature = sign_digest(hashlib.sha256(header_segment + b"." + payload).digest())
    if algorithm == "ES256":
        r, s = decode_dss_signature(signature)
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    token = (header_segment + b".." + _b64url(signature)).decode("ascii")
    return _text(report, payload, token)


def card_algorithm(public_key: Any) -> str | None:
    """The JWS algorithm a slot-9A key of this kind signs with; None for any other key."""
    if isinstance(public_key, ec.EllipticCurvePublicKey) and isinstance(public_key.curve, ec.SECP256R1):
        return "ES256"
    if isinstance(public_key, rsa.RSAPublicKey):
        return "RS256"
    return None


def _text(report: Mapping[str, Any], payload: bytes, token: str) -> str:
    lic = report["license"]
    return (
        f"floatkey usage report {report['sequence']} of license {lic.get('license_uid') or lic['id']} "
        f"(product {lic['product']}), {report['period']['from']} to {report['period']['to']}.\n"
        "The content below is signed: any change voids the report. Send it to the vendor as it is.\n"
        f"{BEGIN_CONTENT}\n{payload.decode('ascii')}\n{END_CONTENT}\n"
        f"{BEGIN_SIGNATURE}\n{token}\n{END_SIGNATURE}\n"
    )


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


# --- the vendor's side ---------------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedReport:
    content: dict[str, Any]
    hash: str
    #: Who signed: "hardware key 123" or "installation key <kid>".
    signed_by: str

    @property
    def sequence(self) -> int:
        return int(self.content["sequence"])

    @property
    def previous_hash(self) -> str | None:
        value = self.content["previous_hash"]
        return None if value is None else str(value)

    @property
    def period(self) -> tuple[datetime, datetime]:
        """``from`` and ``to``, checked by :func:`open_report`."""
        return _period(self.content["period"])

    @property
    def license_name(self) -> str:
        lic = self.content["license"]
        return str(lic.get("license_uid") or f"license {lic['id']} of {self.content['hardware_id']}")


def open_report(
    data: bytes | str,
    installation_keys: Mapping[str, ed25519.Ed25519PublicKey],
    ca_cert: x509.Certificate | None,
) -> VerifiedReport:
    """Verify a report's signature, then read it. ``installation_keys`` (kid -> key) are the
    keys learned from activation requests; ``ca_cert`` the vendor CA that certifies keys."""
    payload, token, header = unwrap(
        data,
        (BEGIN_CONTENT, END_CONTENT, BEGIN_SIGNATURE, END_SIGNATURE),
        MAX_REPORT_SIZE,
        "usage report",
        _invalid,
    )
    if header.get("typ") != TYPE:
        raise _invalid("its signature is not a floatkey usage report signature")
    algorithm = header.get("alg")
    key: Any
    if algorithm == "EdDSA":
        kid = header.get("kid")
        key = installation_keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise ReportProblem(
                "unknown_signer",
                f"The report is signed by installation key {kid!r}, which you did not give. Pass "
                "the customer's activation request (--request FILE) or the key (--installation-key FILE).",
            )
        signed_by = f"installation key {kid}"
    elif algorithm in CARD_ALGORITHMS:
        certificate = _certificate(header, ca_cert)
        key = certificate.public_key()
        # The algorithm follows the certified key, never the header alone (an EC key under
        # RS256 made pyjwt fail with a TypeError).
        fits = card_algorithm(key)
        if fits != algorithm:
            raise _invalid(f"its signature algorithm {algorithm} does not fit its key certificate ({fits})")
        serial = _serial(certificate)
        signed_by = f"hardware key {serial}"
    else:
        raise _invalid(f"its signature algorithm {algorithm!r} is not one floatkey uses")
    try:
        jwt.api_jws.decode_complete(token, key, algorithms=[algorithm], detached_payload=payload)
    except jwt.PyJWTError:
        raise ReportProblem(
            "signature", "Its signature does not match its content: the report was edited or damaged."
        ) from None
    report = _read(payload)
    signer = report["signer"]
    if algorithm == "EdDSA" and signer != {"type": "installation_key", "kid": header.get("kid")}:
        raise _invalid("the signer named in its content is not the key that signed it")
    if algorithm != "EdDSA" and (signer.get("type") != "hardware_key" or signer.get("serial") != serial):
        raise _invalid("the hardware key named in its content is not the key that signed it")
    return VerifiedReport(report, content_hash(payload), signed_by)


def _certificate(header: Mapping[str, Any], ca_cert: x509.Certificate | None) -> x509.Certificate:
    chain = header.get("x5c")
    if not isinstance(chain, list) or not chain or not isinstance(chain[0], str):
        raise _invalid("its signature carries no key certificate")
    try:
        certificate = x509.load_der_x509_certificate(base64.b64decode(chain[0], validate=True))
    except ValueError:
        raise _invalid("its key certificate is damaged") from None
    if ca_cert is None:
        raise ReportProblem(
            "unknown_signer",
            "The report is signed by a hardware key; give the CA that certified your customers' "
            "keys (--dir VENDOR_DIR, or --ca ca.pem) to check it.",
        )
    try:
        piv.check_chain(certificate, ca_cert)
    except piv.InvalidKey:
        raise ReportProblem(
            "unknown_signer",
            "The report is signed by a hardware key your CA did not certify: "
            "it is not from a key you issued.",
        ) from None
    return certificate


def _serial(certificate: x509.Certificate) -> str | None:
    named = certificate.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    return str(named[0].value) if named else None


def _read(payload: bytes) -> dict[str, Any]:
    """The verified content, checked for the shape the chain and the totals need.

    Only the exact bytes floatkey writes are read: a signed payload that is not canonical
    JSON (duplicate keys, NaN, other spacing, deep nesting) could mean one thing to this
    reader and another to the next, and a customer holds the installation key that signs.
    """
    try:
        report = json.loads(payload)
        canonical = canonical_json(report) == payload
    except (ValueError, RecursionError):
        canonical = False
    if not canonical:
        raise _invalid("its content is not the canonical JSON floatkey writes")
    if not isinstance(report, dict) or report.get("format") != FORMAT:
        raise _invalid(f"its format is not {FORMAT} (a newer floatkey may read it)")
    sequence = report.get("sequence")
    if not isinstance(sequence, int) or isinstance(sequence, bool) or sequence < 1:
        raise _invalid("its sequence is not a positive whole number")
    previous = report.get("previous_hash")
    if not (previous is None if sequence == 1 else isinstance(previous, str)):
        raise _invalid("its previous_hash does not fit its sequence")
    for name in ("license", "period", "totals", "signer"):
        if not isinstance(report.get(name), dict):
            raise _invalid(f"its {name} is missing")
    if not isinstance(report["license"].get("id"), int) or not isinstance(report.get("hardware_id"), str):
        raise _invalid("it does not name its license and server")
    try:
        start, end = _period(report["period"])
    except (FloatkeyError, TypeError):
        raise _invalid("its period is not two times") from None
    if start >= end:
        raise _invalid("its period ends before it starts")
    features = report["totals"].get("features", {})
    if not isinstance(features, dict) or not all(
        _is_totals(t) for t in [report["totals"], *features.values()]
    ):
        raise _invalid("its totals are not numbers")
    return report


def _period(period: Mapping[str, Any]) -> tuple[datetime, datetime]:
    start, end = parse_time(period.get("from"), "from"), parse_time(period.get("to"), "to")
    if start is None or end is None:
        raise TypeError("a period needs both ends")
    return start, end


def _is_totals(totals: Any) -> bool:
    if not isinstance(totals, dict):
        return False
    numbers = [totals.get(name) for name in ("consumptions", "peak_seats", "seat_hours")]
    refusals = totals.get("refusals")
    return (
        all(isinstance(n, int | float) and not isinstance(n, bool) for n in numbers)
        and isinstance(refusals, dict)
        and all(isinstance(n, int) for n in refusals.values())
    )


def _invalid(why: str) -> ReportProblem:
    return ReportProblem(
        "invalid",
        f"This is not a valid floatkey usage report: {why}. Ask for the file exactly as floatkey wrote it.",
    )


# --- the chain -------------------------------------------------------------------------------


def chain_key(report: VerifiedReport) -> tuple[str, int]:
    """Reports chain per license of one server."""
    return report.content["hardware_id"], int(report.content["license"]["id"])


def check_link(previous: VerifiedReport, report: VerifiedReport) -> None:
    """``report`` must be the one right after ``previous``; a ``chain`` problem if not."""
    if chain_key(previous) != chain_key(report):
        raise ReportProblem(
            "chain",
            f"The reports are of different licenses ({previous.license_name}, {report.license_name}).",
        )
    _check_signers(previous, report)
    if previous.sequence >= report.sequence:
        raise ReportProblem(
            "chain",
            f"Out of order: report {previous.sequence} is given before report {report.sequence}, "
            "which is not after it (were two reports swapped?).",
        )
    if previous.sequence + 1 < report.sequence:
        missing = _span(previous.sequence + 1, report.sequence - 1)
        raise ReportProblem(
            "chain",
            f"Missing: report {missing} of {report.license_name} is not here, between "
            f"reports {previous.sequence} and {report.sequence}; ask the customer for it.",
        )
    if report.previous_hash != previous.hash:
        raise ReportProblem(
            "chain",
            f"Report {report.sequence} does not follow the report {previous.sequence} given: it names "
            "another previous report (one of them was replaced, or they are of two installations).",
        )
    # Sequence and hash hold, and yet a report may leave time out of every report or count it again.
    (_, previous_end), (start, _) = previous.period, report.period
    if start > previous_end:
        raise ReportProblem(
            "chain",
            f"Not reported: {format_time(previous_end)} to {format_time(start)} of {report.license_name} "
            f"is in no report: report {report.sequence} starts later than report {previous.sequence} "
            "ended (made with --from?); ask the customer for that period.",
        )
    if start < previous_end:
        raise ReportProblem(
            "chain",
            f"Counted twice or back in time: report {report.sequence} of {report.license_name} starts "
            f"at {format_time(start)}, before report {previous.sequence} ended "
            f"({format_time(previous_end)}); usage in both periods is in both reports.",
        )


def _check_signers(previous: VerifiedReport, report: VerifiedReport) -> None:
    """One license's reports are signed alike: by keys of its set (any of them, in turns),
    or by one installation key. An installation-key report in a key-bound license's chain
    was made without the key, and the customer holds that key; another installation key
    is another installation continuing the chain."""
    kinds = previous.content["signer"].get("type"), report.content["signer"].get("type")
    if kinds[0] == kinds[1] and (kinds[0] != "installation_key" or previous.signed_by == report.signed_by):
        return
    other = "another installation's key" if kinds[0] == kinds[1] else "another kind of key"
    raise ReportProblem(
        "chain",
        f"Report {report.sequence} of {report.license_name} is signed by {report.signed_by}, "
        f"report {previous.sequence} by {previous.signed_by}: {other} signs it now. If you did "
        "not rebind the license, the report was not made where the license lives.",
    )


def check_chain(reports: list[VerifiedReport]) -> list[str]:
    """Every break in the chains of ``reports`` (any order, several licenses): one sentence each."""
    problems = []
    chains: dict[tuple[str, int], dict[int, VerifiedReport]] = {}
    for report in reports:
        mine = chains.setdefault(chain_key(report), {})
        other = mine.get(report.sequence)
        if other is not None and other.hash != report.hash:
            problems.append(
                f"Two different reports of {report.license_name} carry sequence {report.sequence}: "
                "one of them is not the server's own chain."
            )
        mine[report.sequence] = report
    for mine in chains.values():
        ordered = [mine[s] for s in sorted(mine)]
        for previous, report in itertools.pairwise(ordered):
            try:
                check_link(previous, report)
            except ReportProblem as problem:
                problems.append(problem.sentence)
    return problems


def _span(first: int, last: int) -> str:
    return str(first) if first == last else f"{first} to {last}"
