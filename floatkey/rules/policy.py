"""A license's policy: what an administrator decided when the license was added.

The policy never changes while the license lives; usage (seats, consumptions) is state
beside it. ``policy_from_fields`` turns the fields of ``POST /api/v4/licenses`` or the
query of ``addProduct`` into a Policy, refusing anything inconsistent.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from floatkey import inputs
from floatkey.errors import FloatkeyError
from floatkey.timeutil import parse_time

LICENSE_TYPES = ("perpetual", "time-limited", "subscription", "consumption")
FEATURE_TYPES = ("activation", "consumption")
PERIODS = ("daily", "weekly", "monthly", "annually")
MAX_SEATS = 1_000_000
MAX_TIMEOUT_MINUTES = 60 * 24 * 365
MAX_BORROW_HOURS = 24 * 366 * 10
MAX_LIMIT = 2**62
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")


@dataclass(frozen=True, slots=True)
class ConsumptionPolicy:
    """Limits of a consumption counter (of the license or of one feature)."""

    max_consumptions: int = 0
    allow_overages: bool = False
    max_overages: int = 0
    allow_unlimited_consumptions: bool = False
    allow_negative_consumptions: bool = False
    reset_consumption: bool = False
    consumption_period: str | None = None


@dataclass(frozen=True, slots=True)
class FeaturePolicy:
    code: str
    name: str
    feature_type: str = "activation"
    expiry_date: datetime | None = None
    is_floating: bool = False
    floating_users: int = 0
    floating_timeout: int = 0
    consumption: ConsumptionPolicy = field(default_factory=ConsumptionPolicy)
    metadata: dict[str, Any] = field(default_factory=dict)

    def timeout_minutes(self, license_timeout: int) -> int:
        """A feature without its own timeout uses the license's."""
        return self.floating_timeout or license_timeout


@dataclass(frozen=True, slots=True)
class Policy:
    product: str
    product_name: str
    license_key: str
    license_type: str = "perpetual"
    floating_users: int = 1
    floating_timeout: int = 30
    max_borrow_time: int = 0
    start_date: datetime | None = None
    validity_period: datetime | None = None
    license_enabled: bool = True
    is_trial: bool = False
    consumption: ConsumptionPolicy = field(default_factory=ConsumptionPolicy)
    features: tuple[FeaturePolicy, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    customer: dict[str, Any] | None = None
    is_hardware_key_auth: bool = False
    #: Serial of the key the license is bound to (set when it was added).
    hardware_key_serial: str | None = None

    def feature(self, code: str) -> FeaturePolicy | None:
        for feature in self.features:
            if feature.code == code:
                return feature
        return None


def policy_from_fields(fields: Mapping[str, Any]) -> Policy:
    """Validate an administrator's request into a Policy (``hardware_key_serial`` left to the caller)."""
    product = inputs.text(fields, "product", required=True)
    assert product is not None
    if not _CODE.fullmatch(product):
        raise inputs.invalid("product", "a short code of letters, digits, '_', '.' or '-'", product)
    license_type = inputs.text(fields, "license_type", default="perpetual")
    if license_type not in LICENSE_TYPES:
        raise inputs.invalid("license_type", "one of " + ", ".join(LICENSE_TYPES), license_type)
    validity = parse_time(fields.get("validity_period"), "validity_period")
    if license_type in ("time-limited", "subscription") and validity is None:
        raise FloatkeyError(
            "missing_parameters", f"A {license_type} license needs a validity_period (its end date)."
        )
    key = inputs.text(fields, "license_key") or _new_license_key()
    features = _features(fields.get("features"))
    codes = [f.code for f in features]
    if len(set(codes)) != len(codes):
        raise inputs.invalid("features", "a list of features with distinct codes", codes)
    return Policy(
        product=product,
        product_name=inputs.text(fields, "product_name", default=product) or product,
        license_key=key,
        license_type=license_type,
        floating_users=_int(fields, "floating_users", 1, 1, MAX_SEATS),
        floating_timeout=_int(fields, "floating_timeout", 30, 1, MAX_TIMEOUT_MINUTES),
        max_borrow_time=_int(fields, "max_borrow_time", 0, 0, MAX_BORROW_HOURS),
        start_date=parse_time(fields.get("start_date"), "start_date"),
        validity_period=validity,
        license_enabled=_bool(fields, "license_enabled", True),
        is_trial=_bool(fields, "is_trial", False),
        consumption=_consumption(fields, "max_consumptions"),
        features=features,
        metadata=_mapping(fields, "metadata") or {},
        customer=_mapping(fields, "customer"),
        is_hardware_key_auth=_bool(fields, "isHWKeyReq", False, aliases=("is_hardware_key_auth",)),
    )


def _features(raw: Any) -> tuple[FeaturePolicy, ...]:
    if raw is None or raw == "":
        return ()
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise inputs.invalid("features", "a JSON list of feature objects", raw) from None
    if not isinstance(raw, list) or len(raw) > 256:
        raise inputs.invalid("features", "a list of at most 256 feature objects", raw)
    return tuple(_feature(item, i) for i, item in enumerate(raw))


def _feature(raw: Any, index: int) -> FeaturePolicy:
    where = f"features[{index}]"
    if not isinstance(raw, dict):
        raise inputs.invalid(where, "an object", raw)
    code = inputs.text(raw, "code", required=True)
    assert code is not None
    if not _CODE.fullmatch(code):
        raise inputs.invalid(f"{where}.code", "a code of letters, digits, '_', '.' or '-'", code)
    feature_type = inputs.text(raw, "feature_type", default="activation")
    if feature_type not in FEATURE_TYPES:
        raise inputs.invalid(f"{where}.feature_type", "activation or consumption", feature_type)
    is_floating = _bool(raw, "is_floating", False)
    return FeaturePolicy(
        code=code,
        name=inputs.text(raw, "name", default=code) or code,
        feature_type=feature_type,
        expiry_date=parse_time(raw.get("expiry_date"), f"{where}.expiry_date"),
        is_floating=is_floating,
        floating_users=_int(raw, "floating_users", 1 if is_floating else 0, 0, MAX_SEATS),
        floating_timeout=_int(raw, "floating_timeout", 0, 0, MAX_TIMEOUT_MINUTES),
        consumption=_consumption(raw, "max_consumption"),
        metadata=_mapping(raw, "metadata") or {},
    )


def _consumption(fields: Mapping[str, Any], max_name: str) -> ConsumptionPolicy:
    reset = _bool(fields, "reset_consumption", False)
    period = inputs.text(fields, "consumption_period")
    if period is not None and period not in PERIODS:
        raise inputs.invalid("consumption_period", "one of " + ", ".join(PERIODS), period)
    if reset and period is None:
        raise FloatkeyError("missing_parameters", "reset_consumption needs a consumption_period to reset on.")
    return ConsumptionPolicy(
        max_consumptions=_int(fields, max_name, 0, 0, MAX_LIMIT),
        allow_overages=_bool(fields, "allow_overages", False, aliases=("allowOverages",)),
        max_overages=_int(fields, "max_overages", 0, 0, MAX_LIMIT),
        allow_unlimited_consumptions=_bool(fields, "allow_unlimited_consumptions", False),
        allow_negative_consumptions=_bool(fields, "allow_negative_consumptions", False),
        reset_consumption=reset,
        consumption_period=period,
    )


def _int(fields: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = inputs.integer(fields, name, default=default, minimum=low, maximum=high)
    assert value is not None
    return value


def _bool(fields: Mapping[str, Any], name: str, default: bool, aliases: tuple[str, ...] = ()) -> bool:
    value = inputs.boolean(fields, name, default=default, aliases=aliases)
    assert value is not None
    return value


def _mapping(fields: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    value = fields.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise inputs.invalid(name, "a JSON object", value) from None
    if not isinstance(value, dict) or len(json.dumps(value)) > 16 * 1024:
        raise inputs.invalid(name, "a JSON object of at most 16 KiB", value)
    if not _storable(value):
        raise inputs.invalid(
            name, "a JSON object of whole numbers within 64 bits and text without lone surrogates", value
        )
    return value


def _storable(value: Any) -> bool:
    """Whether msgpack can store ``value``: it has no integers past 64 bits nor lone surrogates."""
    if isinstance(value, dict):
        return all(_storable(k) and _storable(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_storable(item) for item in value)
    if isinstance(value, str):
        return not any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, int) and not isinstance(value, bool):
        return -(2**63) <= value < 2**64
    return True


def _new_license_key() -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    groups = ("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(4))
    return "-".join(groups)


def policy_to_record(policy: Policy) -> dict[str, Any]:
    """Plain data for storage (datetimes stay datetimes; msgpack keeps them)."""
    return asdict(policy)


def policy_from_record(record: dict[str, Any]) -> Policy:
    fields = dict(record)
    fields["consumption"] = ConsumptionPolicy(**fields["consumption"])
    fields["features"] = tuple(
        FeaturePolicy(**{**f, "consumption": ConsumptionPolicy(**f["consumption"])})
        for f in fields["features"]
    )
    return Policy(**fields)
