"""May this server install these (verified) claims now? Pure: every fact is passed in.

Checks run in a fixed order and the first failure answers: the file's own validity, the
binding (hardware ID or keys), the sequence, then the activation request's nonce.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from floatkey.errors import FloatkeyError
from floatkey.licensing.claims import LicenseClaims
from floatkey.timeutil import format_time


@dataclass(frozen=True)
class Installation:
    """What the server knows when a file arrives."""

    now: datetime
    #: The hardware IDs that stand for this server: the machine's, and the key's while it is.
    hardware_ids: Collection[str]
    #: Serials of the keys present and valid now.
    valid_keys: Collection[str]
    #: The sequence installed for this file's ``license_uid``, or None if it is new here.
    installed_sequence: int | None
    #: Nonces of activation requests made here and not yet answered.
    open_nonces: Collection[str]


def check(claims: LicenseClaims, here: Installation) -> None:
    """Raise the refusal for ``claims`` on this installation, or return."""
    if here.now < claims.not_before:
        raise FloatkeyError(
            "license_file_not_yet_valid",
            f"The license file is valid from {format_time(claims.not_before)} on; import it "
            "then, or check this machine's clock.",
        )
    if claims.expires is not None and here.now >= claims.expires:
        raise FloatkeyError(
            "license_file_expired",
            f"The license file expired at {format_time(claims.expires)}; ask the vendor for a new one.",
        )
    check_binding(claims, here.hardware_ids, here.valid_keys)
    if here.installed_sequence is not None and claims.sequence <= here.installed_sequence:
        raise FloatkeyError(
            "license_file_outdated",
            f"License {claims.license_uid} is installed at sequence {here.installed_sequence}; "
            f"this file has sequence {claims.sequence}. Import the vendor's newest file.",
        )
    if here.installed_sequence is None:
        if claims.nonce is None:
            raise FloatkeyError(
                "license_file_invalid",
                f"This is a refresh file for license {claims.license_uid}, which is not installed "
                "here. Import the license file that answered this server's activation request first.",
            )
        if claims.nonce not in here.open_nonces:
            raise FloatkeyError(
                "activation_request_used",
                "The license file answers an activation request that this server did not make "
                "or that is already answered. Make a new request (POST /api/v4/license/generate "
                "or `floatkey activation-request`) and send it to the vendor.",
            )


def check_binding(claims: LicenseClaims, hardware_ids: Collection[str], valid_keys: Collection[str]) -> None:
    """``license_file_wrong_hardware`` unless the file's machine or one of its keys is here."""
    if claims.key_serials:
        if not set(claims.key_serials) & set(valid_keys):
            raise FloatkeyError(
                "license_file_wrong_hardware",
                "The license file is bound to hardware key "
                f"{', '.join(claims.key_serials)}, and none of them is plugged in and valid. "
                "Plug the key in (see GET /api/v4/hardware_key), then import the file again.",
            )
    elif claims.hardware_id not in hardware_ids:
        raise FloatkeyError(
            "license_file_wrong_hardware",
            f"The license file is bound to hardware ID {claims.hardware_id}, not to this server "
            f"({', '.join(sorted(hardware_ids))}). Import it on the server that made the request.",
        )
