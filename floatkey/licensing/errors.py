"""Refusals of the license-file subsystem that other parts raise too."""

from __future__ import annotations

from floatkey.errors import FloatkeyError


def vendor_only() -> FloatkeyError:
    """A license from a plain policy on a server whose licenses come from the vendor."""
    return FloatkeyError(
        "license_source_vendor_only",
        "This server installs licenses only from license files signed by the vendor "
        "(licenseSource: vendor). Upload the vendor's file with POST /api/v4/license/upload "
        "or `floatkey licenses import FILE`; to get one, make an activation request "
        "(POST /api/v4/license/generate or `floatkey activation-request`) and send it to the vendor.",
    )
