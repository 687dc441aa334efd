"""``floatkey vendor``: the vendor's side of license files; needs no server.

``init`` makes the vendor's identity in one folder: the hardware-key CA (``ca.key``,
``ca.pem``; an existing one from ``floatkey ca init`` is kept) and the Ed25519
license-signing key (``license-signing.key``, owner-only, and ``license-signing.pub``).
Two key pairs, one identity: PIV certificates stay ECDSA P-256, which every PIV key and
Yubico's tools accept, while license files use EdDSA as the spec asks. ``issue`` checks an
activation request against the CA and signs a license file bound to what it proves;
``refresh`` signs a newer file (higher ``sequence``) for an installed license;
``verify-report`` checks customers' usage reports (signature, then chain) and prints them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from cryptography.hazmat.primitives.asymmetric import ed25519

from floatkey.errors import FloatkeyError
from floatkey.hardware import ca
from floatkey.licensing import envelope, report, request, signer
from floatkey.licensing.claims import LicenseClaims
from floatkey.rules.policy import policy_from_fields
from floatkey.timeutil import parse_time, utcnow

#: Files start this long before they are signed, so a server's slightly slow clock accepts them.
CLOCK_SLACK = timedelta(minutes=5)
_NOT_IN_POLICY = ("product", "isHWKeyReq", "is_hardware_key_auth", "hardware_key_serial")


def init(directory: Path) -> str:
    """Create the vendor identity in ``directory``; returns the license key's ``kid``."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    key_path = directory / signer.SIGNING_KEY_FILE
    if key_path.exists():
        raise FileExistsError(f"{key_path} already exists; not overwriting a vendor key")
    if not (directory / ca.CA_KEY_FILE).exists():
        ca.create_ca(directory)
    key = ed25519.Ed25519PrivateKey.generate()
    signer.write_private_key(key_path, key)
    (directory / signer.PUBLIC_KEY_FILE).write_bytes(signer.public_pem(key.public_key()))
    return signer.key_id(key.public_key())


def issue(
    directory: Path,
    request_data: bytes,
    policy: dict[str, Any],
    *,
    extra_keys: tuple[str, ...] = (),
    valid_until: datetime | None = None,
    license_uid: str | None = None,
    now: datetime | None = None,
) -> tuple[str, request.VerifiedRequest]:
    """The license file answering ``request_data``, and what the request proved."""
    now = now or utcnow()
    key = signer.load_private_key(directory / signer.SIGNING_KEY_FILE)
    _, ca_cert = ca.load_ca(directory)
    asked = request.verify(request_data, ca_cert)
    if asked.unproven and not asked.key_serials:
        raise FloatkeyError(
            "validation_error",
            f"The request lists hardware key {', '.join(asked.unproven)} but proves none: its "
            "signature or its certificate's chain to your CA does not hold. Certify the key "
            "with `floatkey ca issue --dir DIR` and ask for a new request.",
        )
    claims = LicenseClaims(
        license_uid=license_uid or f"L{uuid.uuid4().hex}",
        sequence=1,
        product=asked.product,
        policy=_checked_policy(policy, asked.product),
        issued_at=now,
        not_before=now - CLOCK_SLACK,
        kid=signer.key_id(key.public_key()),
        hardware_id=None if asked.key_serials else asked.hardware_id,
        key_serials=_serials(asked.key_serials + extra_keys),
        expires=valid_until,
        nonce=asked.nonce,
    )
    return envelope.seal(claims, key), asked


def refresh(
    directory: Path,
    license_data: bytes,
    policy: dict[str, Any],
    *,
    extra_keys: tuple[str, ...] = (),
    valid_until: datetime | None = None,
    now: datetime | None = None,
) -> str:
    """A newer file for the license of ``license_data`` (signed by this vendor): same id,
    same binding (plus ``extra_keys``), the new ``policy``, the next ``sequence``."""
    now = now or utcnow()
    key = signer.load_private_key(directory / signer.SIGNING_KEY_FILE)
    old = envelope.open_file(license_data, {signer.key_id(key.public_key()): key.public_key()})
    claims = replace(
        old,
        sequence=old.sequence + 1,
        policy=_checked_policy(policy, old.product),
        issued_at=now,
        not_before=now - CLOCK_SLACK,
        key_serials=_serials(old.key_serials + extra_keys),
        hardware_id=None if old.key_serials or extra_keys else old.hardware_id,
        expires=valid_until,
        nonce=None,
    )
    return envelope.seal(claims, key)


def _checked_policy(policy: dict[str, Any], product: str) -> dict[str, Any]:
    if not isinstance(policy, dict):
        raise FloatkeyError("validation_error", "The policy file must hold one JSON object.")
    named = policy.get("product")
    if named is not None and named != product:
        raise FloatkeyError(
            "validation_error",
            f"The policy is for product {named!r} but the request is for {product!r}.",
        )
    fields = {k: v for k, v in policy.items() if k not in _NOT_IN_POLICY}
    policy_from_fields({**fields, "product": product})  # refuse here what a server would
    return fields


def _serials(serials: tuple[str, ...]) -> tuple[str, ...]:
    for serial in serials:
        if not serial.isdigit() or len(serial) > 20:
            raise FloatkeyError("validation_error", f"{serial!r} is not a key serial (decimal digits).")
    return tuple(dict.fromkeys(serials))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="floatkey vendor", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    def vendor_dir(cmd: argparse.ArgumentParser) -> None:
        default = os.environ.get("FLOATKEY_VENDOR_DIR")
        cmd.add_argument(
            "--dir",
            type=Path,
            default=Path(default) if default else None,
            required=default is None,
            help="the vendor folder (default $FLOATKEY_VENDOR_DIR)",
        )

    def signing(cmd: argparse.ArgumentParser) -> None:
        vendor_dir(cmd)
        cmd.add_argument("--policy", type=Path, required=True, help="JSON file of license fields (api.md)")
        cmd.add_argument("--valid-until", help="the file's own end (RFC 3339 or YYYY-MM-DD); default none")
        cmd.add_argument(
            "--key", action="append", default=[], metavar="SERIAL", help="also bind to this key (repeatable)"
        )
        cmd.add_argument("--out", type=Path, required=True, help="the license file to write")

    vendor_dir(sub.add_parser("init", help="create the vendor's CA and license-signing key"))
    issue_cmd = sub.add_parser("issue", help="sign a license file answering an activation request")
    issue_cmd.add_argument("--request", type=Path, required=True, help="the customer's activation request")
    issue_cmd.add_argument("--license-uid", help="the license's id (default: a new random one)")
    signing(issue_cmd)
    refresh_cmd = sub.add_parser("refresh", help="sign a newer file for an issued license")
    refresh_cmd.add_argument("--license", type=Path, required=True, help="the license file to supersede")
    signing(refresh_cmd)
    verify = sub.add_parser("verify-report", help="check usage reports: signature, then chain")
    verify.add_argument(
        "reports", type=Path, nargs="+", help="report files, oldest first, or a folder of them"
    )
    verify.add_argument("--previous", type=Path, help="the report that must come right before")
    default = os.environ.get("FLOATKEY_VENDOR_DIR")
    verify.add_argument(
        "--dir",
        type=Path,
        default=Path(default) if default else None,
        help="the vendor folder, for its CA (default $FLOATKEY_VENDOR_DIR)",
    )
    verify.add_argument(
        "--ca", type=Path, help="the CA certificate that certified the keys (default DIR/ca.pem)"
    )
    verify.add_argument(
        "--request",
        type=Path,
        action="append",
        default=[],
        help="an activation request of the server: its installation key signs its reports (repeatable)",
    )
    verify.add_argument(
        "--installation-key",
        type=Path,
        action="append",
        default=[],
        help="a server's installation public key, PEM (repeatable)",
    )
    return p


#: Exit status of verify-report: a report that is not valid (damaged, edited, unknown
#: signer), and a chain that does not hold (missing, replaced or out-of-order reports).
EXIT_INVALID_REPORT = 1
EXIT_BROKEN_CHAIN = 3


def verify_reports(args: argparse.Namespace) -> int:
    """``floatkey vendor verify-report``: each report's signature, then the chain."""
    keys = {}
    for path in args.request:
        asked = request.verify(path.read_bytes(), None)
        if asked.installation_key is None:
            print(
                f"{path}: the request carries no installation key (made by an older floatkey)",
                file=sys.stderr,
            )
            continue
        keys[signer.key_id(asked.installation_key)] = asked.installation_key
    for path in args.installation_key:
        key = signer.load_public_key(path)
        keys[signer.key_id(key)] = key
    ca_cert = None
    ca_path = args.ca or (args.dir / ca.CA_CERT_FILE if args.dir else None)
    if ca_path is not None:
        ca_cert = ca.load_certificate(ca_path)
    files = []
    for path in args.reports:
        files += sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    folder = any(path.is_dir() for path in args.reports)
    status = 0
    opened: list[report.VerifiedReport] = []
    previous = None
    if args.previous is not None:
        previous = _open_report(args.previous, keys, ca_cert)
        if previous is None:
            return EXIT_INVALID_REPORT
    for path in files:
        verified = _open_report(path, keys, ca_cert)
        if verified is None:
            status = EXIT_INVALID_REPORT
            continue
        _print_report(path, verified)
        opened.append(verified)
    if status:
        return status
    # In a folder, --previous joins its license's chain: the folder's first report must follow it.
    problems = report.check_chain([previous, *opened] if previous else opened) if folder else []
    if not folder:
        for earlier, later in zip([previous, *opened], opened, strict=False):
            if earlier is None:
                continue
            try:
                report.check_link(earlier, later)
            except report.ReportProblem as problem:
                problems.append(problem.sentence)
    for sentence in problems:
        _say(f"chain broken: {sentence}", sys.stderr)
    if problems:
        return EXIT_BROKEN_CHAIN
    if len(opened) + (previous is not None) > 1:
        print("chain: every report follows the one before it")
    return 0


def _open_report(path: Path, keys: dict[str, Any], ca_cert: Any) -> report.VerifiedReport | None:
    try:
        with path.open("rb") as file:
            data = file.read(report.MAX_REPORT_SIZE + 1)
        return report.open_report(data, keys, ca_cert)
    except report.ReportProblem as problem:
        _say(f"{path}: not valid: {problem.sentence}", sys.stderr)
    except OSError as exc:
        _say(f"{path}: cannot be read: {exc.strerror}", sys.stderr)
    return None


def _print_report(path: Path, verified: report.VerifiedReport) -> None:
    body = verified.content
    lic = body["license"]
    period = body["period"]
    _say(
        f"{path}: valid, signed by {verified.signed_by}: report {verified.sequence} of "
        f"{verified.license_name} (product {lic.get('product')}, key {lic.get('license_key')}), "
        f"{period.get('from')} to {period.get('to')}, made {body.get('created_at')} on {body['hardware_id']}"
    )
    totals = body["totals"]
    _say(f"  license: {_shown(totals)}")
    for code, feature in sorted(totals.get("features", {}).items()):
        _say(f"  feature {code}: {_shown(feature)}")


def _say(line: str, file: TextIO | None = None) -> None:
    """Print one line with what a report says in it, its control characters escaped: a
    signed report may still carry ANSI escapes or a bidi override in a name, which would
    repaint or reorder the vendor's terminal (a forged "valid" line, hidden text)."""
    shown = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in line)
    print(shown, file=file or sys.stdout)


def _shown(totals: dict[str, Any]) -> str:
    refusals = ", ".join(f"{code} {n}" for code, n in totals.get("refusals", {}).items()) or "none"
    estimated = " (estimated)" if totals.get("seat_hours_estimated") else ""
    return (
        f"consumptions {totals.get('consumptions')}, peak seats {totals.get('peak_seats')}, "
        f"seat-hours {totals.get('seat_hours')}{estimated}, refusals: {refusals}"
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "init":
            kid = init(args.dir)
            print(
                f"vendor identity written to {args.dir}: {signer.PUBLIC_KEY_FILE} (kid {kid}) and "
                f"{ca.CA_CERT_FILE} go to customers; {signer.SIGNING_KEY_FILE} and {ca.CA_KEY_FILE} "
                "stay here (owner-only)"
            )
            return 0
        if args.command == "verify-report":
            return verify_reports(args)
        policy = json.loads(args.policy.read_text(encoding="utf-8"))
        valid_until = parse_time(args.valid_until, "--valid-until")
        extra = tuple(args.key)
        if args.command == "issue":
            text, asked = issue(
                args.dir,
                args.request.read_bytes(),
                policy,
                extra_keys=extra,
                valid_until=valid_until,
                license_uid=args.license_uid,
            )
            bound = ", ".join(asked.key_serials + extra) or f"hardware ID {asked.hardware_id}"
            if asked.unproven:
                print(f"not bound to unproven key {', '.join(asked.unproven)}", file=sys.stderr)
            if asked.installation_key is not None:
                print(
                    f"the server's installation key is {signer.key_id(asked.installation_key)}: keep "
                    f"{args.request} to verify its usage reports (verify-report --request)"
                )
        else:
            text = refresh(
                args.dir, args.license.read_bytes(), policy, extra_keys=extra, valid_until=valid_until
            )
            bound = "as before"
        args.out.write_text(text, encoding="ascii")
        print(f"license file written to {args.out} (bound to {bound})")
        return 0
    except FloatkeyError as exc:
        print(f"floatkey vendor: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    except (OSError, ValueError, TypeError) as exc:
        print(f"floatkey vendor: {exc}", file=sys.stderr)
        return 1
