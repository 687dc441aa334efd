"""Switches for the benchmark alone: leave out a feature's work, to measure what it costs.

``python -m bench.run --only features`` runs the register mix on servers that differ by
one feature each (bench/features.py). Metrics have a real setting (``metrics.enabled``);
usage history, the audit trail's request origin and the request log have none, since an
operator has no reason to lose them, so the benchmark leaves them out through the
``FLOATKEY_BENCH_WITHOUT`` environment variable (comma-separated names) instead. A server
started with it says so in a warning; an unknown name stops it (a typo would measure
nothing).
"""

from __future__ import annotations

import os

from floatkey.errors import ConfigError

ENV = "FLOATKEY_BENCH_WITHOUT"
#: No usage history is noted (floatkey/usage): seats, consumptions and refusals per minute.
USAGE = "usage"
#: Requests are not named as the origin of audit records (web/audit.py); admin actions
#: are then recorded as ``embedding``. The origin is worked out only for a record, so on
#: the register mix this is a control: it leaves out nothing the mix does.
AUDIT = "audit"
#: No request id, bound log fields or per-request DEBUG line (web/request_log.py).
REQUEST_LOG = "requestLog"
KNOWN = (USAGE, AUDIT, REQUEST_LOG)


def left_out() -> frozenset[str]:
    """The features ``FLOATKEY_BENCH_WITHOUT`` names; ConfigError for a name not in ``KNOWN``."""
    names = frozenset(name.strip() for name in os.environ.get(ENV, "").split(",") if name.strip())
    unknown = sorted(names - set(KNOWN))
    if unknown:
        raise ConfigError(
            f"{ENV} names {', '.join(unknown)}, which the benchmark cannot leave out; "
            f"use {', '.join(KNOWN)}, or unset it."
        )
    return names


def without(feature: str) -> bool:
    """Whether the benchmark left ``feature`` out (an invalid variable leaves nothing out:
    ``floatkey serve`` refuses it at start-up)."""
    try:
        return feature in left_out()
    except ConfigError:
        return False
