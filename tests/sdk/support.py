"""What the tests of both official SDKs share."""

from __future__ import annotations

from tests.support.server import ServerProcess


def add_sdk_license(srv: ServerProcess, code: str) -> str:
    """A product with one floating seat, borrowing, metering and a one-seat floating feature."""
    srv.add_license(
        product=code,
        floating_users=1,
        max_borrow_time=24,
        license_type="consumption",
        max_consumptions=100,
        features=[
            {"code": "render", "name": "Render", "is_floating": True, "floating_users": 1},
            {"code": "export", "name": "Export", "feature_type": "consumption", "max_consumption": 10},
        ],
    )
    return code
