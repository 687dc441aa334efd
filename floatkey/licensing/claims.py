"""The claims of a license file, and their one canonical, readable JSON form.

The JSON is canonical (sorted keys, two-space indent, ASCII only, LF line ends), so
that the bytes signed are the bytes a person reads, and e-mail's line-end rewriting
(CRLF) can be undone before the signature is checked.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from floatkey.errors import FloatkeyError
from floatkey.timeutil import format_time, parse_time

#: The ``format`` claim: what reads a file knows which shape it holds.
FORMAT = "floatkey-license/1"
_SERIAL = re.compile(r"[0-9]{1,20}")
_UID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")


@dataclass(frozen=True)
class LicenseClaims:
    """What a vendor grants: the license's policy and the machine or keys it is bound to."""

    license_uid: str
    sequence: int
    product: str
    #: Every field ``POST /api/v4/licenses`` takes (features included), but ``product``.
    policy: dict[str, Any]
    issued_at: datetime
    not_before: datetime
    kid: str
    hardware_id: str | None = None
    key_serials: tuple[str, ...] = ()
    #: The file's own validity (not the license's ``validity_period``); None: no end.
    expires: datetime | None = None
    #: The activation request's nonce this file answers; None in refresh files.
    nonce: str | None = None
    format: str = field(default=FORMAT)

    def to_json(self) -> bytes:
        return canonical_json(
            {
                "format": self.format,
                "license_uid": self.license_uid,
                "sequence": self.sequence,
                "product": self.product,
                "policy": self.policy,
                "hardware_id": self.hardware_id,
                "key_serials": list(self.key_serials),
                "issued_at": format_time(self.issued_at),
                "not_before": format_time(self.not_before),
                "expires": format_time(self.expires),
                "nonce": self.nonce,
                "kid": self.kid,
            }
        )

    def policy_fields(self) -> dict[str, Any]:
        """The fields of ``POST /api/v4/licenses`` this file stands for."""
        fields = {**self.policy, "product": self.product, "isHWKeyReq": bool(self.key_serials)}
        fields.pop("hardware_key_serial", None)
        return fields


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, indent=2, ensure_ascii=True, allow_nan=False).encode("ascii")


def claims_from_json(data: bytes) -> LicenseClaims:
    """Parse verified bytes into claims; anything off the shape is ``license_file_invalid``."""
    try:
        raw = json.loads(data)
    except ValueError:
        raise invalid("its claims are not JSON") from None
    if not isinstance(raw, dict):
        raise invalid("its claims are not a JSON object")
    if raw.get("format") != FORMAT:
        raise invalid(f"its format is {raw.get('format')!r}, this server reads {FORMAT!r}")
    uid = _text(raw, "license_uid")
    if not _UID.fullmatch(uid):
        raise invalid("license_uid is not a license id of letters, digits, '_', '.' or '-'")
    sequence = raw.get("sequence")
    if isinstance(sequence, bool) or not isinstance(sequence, int) or not 1 <= sequence < 2**53:
        raise invalid("sequence is not a whole number from 1")
    policy = raw.get("policy")
    if not isinstance(policy, dict):
        raise invalid("policy is not an object")
    serials = raw.get("key_serials")
    if not isinstance(serials, list) or not all(isinstance(s, str) and _SERIAL.fullmatch(s) for s in serials):
        raise invalid("key_serials is not a list of key serials (decimal digits)")
    hardware_id = raw.get("hardware_id")
    if hardware_id is not None and not isinstance(hardware_id, str):
        raise invalid("hardware_id is not a string")
    if not serials and not hardware_id:
        raise invalid("it is bound to neither a hardware ID nor a hardware key")
    nonce = raw.get("nonce")
    if nonce is not None and not isinstance(nonce, str):
        raise invalid("nonce is not a string")
    issued_at, not_before = _time(raw, "issued_at"), _time(raw, "not_before")
    if issued_at is None or not_before is None:
        raise invalid("issued_at and not_before must both be set")
    return LicenseClaims(
        license_uid=uid,
        sequence=sequence,
        product=_text(raw, "product"),
        policy=policy,
        issued_at=issued_at,
        not_before=not_before,
        kid=_text(raw, "kid"),
        hardware_id=hardware_id,
        key_serials=tuple(serials),
        expires=_time(raw, "expires"),
        nonce=nonce,
    )


def invalid(why: str) -> FloatkeyError:
    return FloatkeyError(
        "license_file_invalid",
        f"This is not a valid floatkey license file: {why}. Import the file exactly as the "
        "vendor sent it, or ask the vendor for a new one.",
    )


def _text(raw: dict[str, Any], name: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value:
        raise invalid(f"{name} is missing or not a string")
    return value


def _time(raw: dict[str, Any], name: str) -> datetime | None:
    try:
        return parse_time(raw.get(name), name)
    except FloatkeyError:
        raise invalid(f"{name} is not an RFC 3339 time") from None
