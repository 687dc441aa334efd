"""The routes of docs/api.md, with the role each needs and the schemas the OpenAPI document shows."""

from __future__ import annotations

from typing import Any

from floatkey.hardware.states import STATE_BUSY, STATE_INVALID, STATE_VALID
from floatkey.rules import policy as p
from floatkey.usage import query as usage_query
from floatkey.web import handlers as h
from floatkey.web import schemas as s
from floatkey.web.routes import ADMIN, PUBLIC, USER, V4, Route, RouteTable

STR: dict[str, Any] = {"type": "string", "maxLength": 256}
OPT_STR: dict[str, Any] = {"type": "string", "maxLength": 256, "nullable": True}
TIME: dict[str, Any] = {
    "type": "string",
    "nullable": True,
    "description": "RFC 3339 (any offset), or YYYY-MM-DD for midnight UTC; null for none",
}
TEXT: dict[str, Any] = {"type": "string"}


def body(required: list[str], **props: Any) -> dict[str, Any]:
    base = {"product": s.PRODUCT, "license_id": s.LICENSE_ID}
    return {"type": "object", "required": ["product", *required], "properties": {**base, **props}}


CLIENT = {"os_hostname": s.CLIENT_TEXT, "ip_local": s.CLIENT_TEXT, "user_info": s.USER_INFO}

FEATURE_OBJECT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "code": {"type": "string"},
        "name": {"type": "string"},
        "feature_type": {"type": "string", "enum": list(p.FEATURE_TYPES)},
        "expiry_date": TIME,
        "is_floating": {"type": "boolean"},
        "floating_users": {"type": "integer"},
        "floating_timeout": {"type": "integer"},
        "floating_in_use_devices": {"type": "integer"},
        "max_consumption": {"type": "integer"},
        "total_consumptions": {"type": "integer"},
        "allow_overages": {"type": "boolean"},
        "max_overages": {"type": "integer"},
        "allow_unlimited_consumptions": {"type": "boolean"},
        "reset_consumption": {"type": "boolean"},
        "consumption_period": {"type": "string", "nullable": True},
        "metadata": {"type": "object"},
    },
}

LICENSE_OBJECT: dict[str, Any] = {
    "type": "object",
    "required": ["id", "license_key", "product_details", "floating_users"],
    "properties": {
        "id": {"type": "integer"},
        "license_key": {"type": "string"},
        "license_type": {"type": "string"},
        "license_active": {"type": "boolean"},
        "license_enabled": {"type": "boolean"},
        "is_expired": {"type": "boolean"},
        "is_trial": {"type": "boolean"},
        "validity_period": TIME,
        "start_date": TIME,
        "is_floating": {"type": "boolean"},
        "is_floating_cloud": {"type": "boolean"},
        "floating_users": {"type": "integer"},
        "floating_timeout": {"type": "integer"},
        "floating_in_use_devices": {"type": "integer"},
        "can_borrow": {"type": "boolean"},
        "max_borrow_time": {"type": "integer"},
        "is_borrowed": {"type": "boolean"},
        "borrowed_until": TIME,
        "max_consumptions": {"type": "integer"},
        "total_consumptions": {"type": "integer"},
        "allow_unlimited_consumptions": {"type": "boolean"},
        "allow_negative_consumptions": {"type": "boolean"},
        "allow_overages": {"type": "boolean"},
        "max_overages": {"type": "integer"},
        "reset_consumption": {"type": "boolean"},
        "consumption_period": {"type": "string", "nullable": True},
        "is_hardware_key_auth": {"type": "boolean"},
        "product_details": {
            "type": "object",
            "properties": {
                "product_id": {"type": "integer"},
                "product_name": {"type": "string"},
                "short_code": {"type": "string"},
            },
        },
        "product_features": {"type": "array", "items": FEATURE_OBJECT},
        "metadata": {"type": "object"},
        "customer": {"type": "object", "nullable": True},
    },
}

SEAT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "user": {"type": "string"},
        "os_hostname": OPT_STR,
        "ip_local": OPT_STR,
        "user_info": {"type": "string", "nullable": True},
        "registered_at": TIME,
        "expires_at": TIME,
        "borrowed_until": TIME,
    },
}

REGISTER_ANSWER: dict[str, Any] = {
    "allOf": [
        LICENSE_OBJECT,
        {
            "type": "object",
            "required": ["floating_slots_in_use", "floating_in_use", "license_json", "registration"],
            "properties": {
                "floating_slots_in_use": {
                    "type": "integer",
                    "description": "seats in use (read by the Python SDK)",
                },
                "floating_in_use": {"type": "integer", "description": "seats in use (read by the Node SDK)"},
                "license_json": {"type": "string", "description": "the license object as a JSON string"},
                "registration": SEAT,
            },
        },
    ],
}

CONSUMPTION_ANSWER: dict[str, Any] = {
    "type": "object",
    "properties": {k: {"type": "integer"} for k in ("max_consumptions", "total_consumptions", "max_overages")}
    | {
        k: {"type": "boolean"}
        for k in ("allow_overages", "reset_consumption", "allow_unlimited_consumptions")
    }
    | {"consumption_period": {"type": "string", "nullable": True}},
}

FEATURE_SEAT_ANSWER: dict[str, Any] = {
    "type": "object",
    "properties": {
        k: {"type": "string", "nullable": True}
        for k in (
            "product",
            "feature",
            "user",
            "os_hostname",
            "ip_local",
            "user_info",
            "registered_at",
            "borrowed_until",
        )
    },
}

PERIOD = s.enum(*p.PERIODS)
#: The consumption limits of a license or a feature (policy._consumption).
CONSUMPTION_POLICY: dict[str, Any] = {
    "allow_overages": s.boolean(),
    "allowOverages": s.boolean(),
    "max_overages": s.integer(0, p.MAX_LIMIT),
    "allow_unlimited_consumptions": s.boolean(),
    "allow_negative_consumptions": s.boolean(),
    "reset_consumption": s.boolean(),
    "consumption_period": PERIOD,
}
POLICY_FIELDS: dict[str, Any] = {
    "product": s.text(required=True, pattern=s.CODE_PATTERN),
    "product_name": s.text(),
    "license_key": s.text(),
    "license_type": s.enum(*p.LICENSE_TYPES),
    "floating_users": s.integer(1, p.MAX_SEATS),
    "floating_timeout": s.integer(1, p.MAX_TIMEOUT_MINUTES),
    "max_borrow_time": s.integer(0, p.MAX_BORROW_HOURS),
    "validity_period": s.time(),
    "start_date": s.time(),
    "max_consumptions": s.integer(0, p.MAX_LIMIT),
    **CONSUMPTION_POLICY,
    "license_enabled": s.boolean(),
    "is_trial": s.boolean(),
    "isHWKeyReq": s.boolean(),
    "is_hardware_key_auth": s.boolean(),
    "hardware_key_serial": s.text(20, pattern="^[0-9]{1,20}$"),
    "metadata": s.json_object(),
    "customer": s.json_object(),
}
FEATURE_POLICY: dict[str, Any] = {
    "type": "object",
    "required": ["code"],
    "properties": {
        "code": s.text(required=True, pattern=s.CODE_PATTERN),
        "name": s.text(),
        "feature_type": s.enum(*p.FEATURE_TYPES),
        "expiry_date": s.time(),
        "is_floating": s.boolean(),
        "floating_users": s.integer(0, p.MAX_SEATS),
        "floating_timeout": s.integer(0, p.MAX_TIMEOUT_MINUTES),
        "max_consumption": s.integer(0, p.MAX_LIMIT),
        **CONSUMPTION_POLICY,
        "metadata": s.json_object(),
    },
}
POLICY: dict[str, Any] = {
    "type": "object",
    "required": ["product"],
    "description": (
        "A time-limited or subscription license needs a validity_period; reset_consumption "
        "needs a consumption_period; feature codes are distinct."
    ),
    "properties": {
        **POLICY_FIELDS,
        "features": {"type": "array", "maxItems": 256, "items": FEATURE_POLICY, "nullable": True},
    },
}

REGISTRATIONS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "registrations": {
            "type": "array",
            "items": {
                "allOf": [
                    SEAT,
                    {
                        "type": "object",
                        "properties": {
                            "license_id": {"type": "integer"},
                            "product": {"type": "string"},
                            "features": {"type": "array", "items": {"type": "object"}},
                        },
                    },
                ]
            },
        }
    },
}

HEALTH: dict[str, Any] = {
    "type": "object",
    "required": ["status", "version", "hardware_id"],
    "properties": {
        "status": {"type": "string"},
        "version": {"type": "string"},
        "hardware_id": {"type": "string"},
        "license_source": {
            "type": "string",
            "enum": ["local", "vendor"],
            "description": "local: licenses are added from a policy; vendor: only from license files",
        },
        "hardware_key": {"type": "object"},
        "storage": {
            "type": "object",
            "properties": {
                "writable": {"type": "boolean"},
                "since": {"type": "string"},
                "map_used": {"type": "number"},
            },
        },
        "clock": {
            "type": "object",
            "nullable": True,
            "properties": {"rolled_back": {"type": "boolean"}, "latest_seen": TIME},
        },
    },
}

PROBE: dict[str, Any] = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"type": "string", "enum": ["alive", "ready"]}},
}

HARDWARE_KEY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "hardware_id": {"type": "string"},
        "pcsc": {"type": "string", "enum": ["running", "unavailable"]},
        "keys": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "serial": {"type": "string"},
                    "reader": {"type": "string"},
                    "state": {"type": "string", "enum": [STATE_VALID, STATE_INVALID, STATE_BUSY]},
                    "reason": {"type": "string", "nullable": True},
                    "since": TIME,
                },
            },
        },
    },
}

DOCTOR: dict[str, Any] = {
    "type": "object",
    "required": ["pcsc", "readers", "pcscd_clients"],
    "properties": {
        "pcsc": {"type": "string", "enum": ["running", "unavailable"]},
        "pcsc_detail": {"type": "string"},
        "readers": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "card_present": {"type": "boolean"},
                    "atr": {"type": "string", "nullable": True},
                    "ignored": {"type": "boolean", "description": "listed in hardwareKey.ignoreReaders"},
                },
            },
        },
        "pcscd_clients": {
            "type": "array",
            "nullable": True,
            "items": {"type": "string"},
            "description": "processes connected to pcscd, 'pid N (name)'; null where unknown",
        },
    },
}

USAGE_POINT: dict[str, Any] = {
    "type": "object",
    "required": ["seats_in_use", "peak", "consumptions", "denials"],
    "properties": {
        "seats_in_use": {"type": "integer", "minimum": 0, "description": "seats held at the point's end"},
        "peak": {"type": "integer", "minimum": 0, "description": "most seats held at once"},
        "consumptions": {"type": "integer"},
        "denials": {
            "type": "object",
            "description": "requests the license refused, by error code",
            "additionalProperties": {"type": "integer", "minimum": 1},
        },
    },
}
USAGE_QUERY: dict[str, Any] = {
    "type": "object",
    "required": ["license_id"],
    "description": (
        f"'from' must be before 'to', and the window may hold at most {usage_query.MAX_POINTS} "
        "points of the step (usage_range_not_valid otherwise)."
    ),
    "properties": {
        "license_id": s.integer(1, 2**63 - 1, required=True),
        "from": {**s.time(), "description": "start of the window (default: one day before 'to')"},
        "to": {**s.time(), "description": "end of the window, excluded (default: now)"},
        "step": {
            "anyOf": [
                {"type": "string", "enum": [*usage_query.STEPS, ""]},
                {"type": "integer", "minimum": usage_query.MIN_STEP, "maximum": usage_query.MAX_STEP},
                {"type": "string", "pattern": "^(?:[6-9][0-9]|[1-9][0-9]{2,7})$"},
            ],
            "nullable": True,
            "description": "minute, hour, day or seconds (default: the finest named step that fits)",
        },
    },
}
USAGE: dict[str, Any] = {
    "type": "object",
    "required": ["license_id", "from", "to", "step", "buckets"],
    "properties": {
        "license_id": {"type": "integer"},
        "from": {"type": "string"},
        "to": {"type": "string"},
        "step": {"type": "integer", "description": "seconds"},
        "buckets": {
            "type": "array",
            "maxItems": usage_query.MAX_POINTS,
            "items": {
                "allOf": [
                    USAGE_POINT,
                    {
                        "type": "object",
                        "required": ["time", "features"],
                        "properties": {
                            "time": {"type": "string", "description": "start of the point, RFC 3339"},
                            "features": {"type": "object", "additionalProperties": USAGE_POINT},
                        },
                    },
                ]
            },
        },
    },
}
USAGE_CSV: dict[str, Any] = {
    "type": "string",
    "x-media-type": "text/csv",
    "description": "time,feature,seats_in_use,peak,consumptions,denied_<code>...: a row per point and series",
}

EMPTY: dict[str, Any] = {"type": "string", "maxLength": 0}
HTML: dict[str, Any] = {"type": "string", "x-media-type": "text/html"}
PATH_ID: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}


def client_routes() -> list[Route]:
    seat_body = body(["user"], user=s.USER, **CLIENT)
    feature_seat = body(
        ["feature", "user"],
        feature=s.FEATURE,
        user=s.USER,
        **CLIENT,
        borrow_until=s.time(),
        borrowed_until=s.time(),
    )
    feature_release = body(["feature", "user"], feature=s.FEATURE, user=s.USER)
    consumption = body(
        ["consumptions"],
        consumptions=s.CONSUMPTIONS,
        max_overages=s.CLIENT_MAX_OVERAGES,
        allow_overages=s.boolean(),
        allowOverages=s.boolean(),
        user=s.OPTIONAL_USER,
    )
    tags = ("client",)
    return [
        Route(
            "GET",
            "/",
            h.front_page,
            PUBLIC,
            "The administrator's console (200: the server is up; docs/console.md)",
            None,
            HTML,
            tags=("docs",),
            head=True,
        ),
        Route(
            "GET",
            "/console/{name}",
            h.console_file,
            PUBLIC,
            "A static file of the console (no-cache with an ETag)",
            {"type": "object", "properties": {"name": {"type": "string", "minLength": 1}}},
            TEXT,
            tags=("docs",),
            head=True,
        ),
        Route(
            "POST",
            f"{V4}/register",
            h.register,
            USER,
            "Take or refresh a floating seat",
            seat_body,
            REGISTER_ANSWER,
            tags=tags,
        ),
        Route(
            "POST",
            f"{V4}/unregister",
            h.unregister,
            USER,
            "Release a floating seat",
            body(["user"], user=s.USER),
            {"type": "string", "enum": ["user_unregistered"]},
            tags=tags,
        ),
        Route(
            "GET",
            f"{V4}/unregister/all",
            h.unregister_all,
            ADMIN,
            "Release every seat of every license",
            None,
            EMPTY,
            tags=tags,
            changes_state=True,
        ),
        Route(
            "POST",
            f"{V4}/borrow",
            h.borrow,
            USER,
            "Borrow a seat for offline use",
            body(["user"], user=s.USER, borrowed_until=s.time(), **CLIENT),
            REGISTER_ANSWER,
            tags=tags,
        ),
        Route(
            "POST",
            f"{V4}/add_consumption",
            h.add_consumption,
            USER,
            "Add consumptions to the license",
            consumption,
            CONSUMPTION_ANSWER,
            tags=tags,
        ),
        Route(
            "POST",
            f"{V4}/add_feature_consumption",
            h.add_feature_consumption,
            USER,
            "Add consumptions to a feature",
            body(["feature", "consumptions"], feature=s.FEATURE, **consumption["properties"]),
            FEATURE_OBJECT,
            tags=tags,
        ),
        Route(
            "POST",
            f"{V4}/featureRegister",
            h.feature_register,
            USER,
            "Take or refresh a floating feature seat",
            feature_seat,
            FEATURE_SEAT_ANSWER,
            tags=tags,
        ),
        Route(
            "POST",
            f"{V4}/check_license_feature",
            h.feature_register,
            USER,
            "Alias of featureRegister",
            feature_seat,
            FEATURE_SEAT_ANSWER,
            tags=tags,
        ),
        Route(
            "POST",
            f"{V4}/featureRelease",
            h.feature_release,
            USER,
            "Release a floating feature seat",
            feature_release,
            {"type": "string", "enum": ["feature_released"]},
            tags=tags,
        ),
        Route(
            "POST",
            f"{V4}/feature_release",
            h.feature_release,
            USER,
            "Alias of featureRelease",
            feature_release,
            {"type": "string", "enum": ["feature_released"]},
            tags=tags,
        ),
        Route(
            "POST",
            f"{V4}/featureRelease/all",
            h.feature_release_all,
            ADMIN,
            "Release every feature seat",
            None,
            EMPTY,
            tags=tags,
        ),
        Route(
            "GET",
            f"{V4}/featureRelease/all",
            h.feature_release_all,
            ADMIN,
            "Release every feature seat",
            None,
            EMPTY,
            tags=tags,
            changes_state=True,
        ),
        Route(
            "POST",
            f"{V4}/feature_release/all",
            h.feature_release_all,
            ADMIN,
            "Alias of featureRelease/all",
            None,
            EMPTY,
            tags=tags,
        ),
        Route(
            "GET",
            f"{V4}/feature_release/all",
            h.feature_release_all,
            ADMIN,
            "Alias of featureRelease/all",
            None,
            EMPTY,
            tags=tags,
            changes_state=True,
        ),
        Route(
            "GET",
            f"{V4}/health",
            h.health,
            PUBLIC,
            "Server health and identity",
            None,
            HEALTH,
            tags=tags,
            head=True,
        ),
        Route(
            "GET",
            f"{V4}/health/live",
            h.live,
            PUBLIC,
            "Liveness probe: 200 while the server runs (no license is asked)",
            None,
            PROBE,
            tags=tags,
            head=True,
        ),
        Route(
            "GET",
            f"{V4}/health/ready",
            h.ready,
            PUBLIC,
            "Readiness probe: 200 when storage is writable, licenses answer and every key a "
            "license needs is valid; else 503 service_unavailable with the reasons",
            None,
            PROBE,
            tags=tags,
            head=True,
        ),
        Route(
            "GET",
            f"{V4}/license",
            h.licenses,
            USER,
            "Licenses with policy and live usage",
            {"type": "object", "properties": {"product": s.text()}},
            {"type": "array", "items": LICENSE_OBJECT},
            tags=tags,
            head=True,
        ),
    ]


ACTIVATION_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["format", "content", "signatures"],
    "properties": {
        "format": {"type": "string"},
        "content": {"type": "object"},
        "signatures": {"type": "array", "items": {"type": "object"}},
    },
}
INSTALLED: dict[str, Any] = {"license_uid": {"type": "string"}, "sequence": {"type": "integer"}}
REPORT_QUERY: dict[str, Any] = {
    "type": "object",
    "required": ["license_id"],
    "description": "'from' before 'to', and 'to' not later than now (else usage_range_not_valid).",
    "properties": {
        "license_id": s.integer(1, 2**63 - 1, required=True),
        "from": {**s.time(), "description": "start of the period (default: where the last report ended)"},
        "to": {**s.time(), "description": "end of the period, excluded (default: now)"},
    },
}
REPORT: dict[str, Any] = {
    "type": "object",
    "required": ["license_id", "sequence", "hash", "previous_hash", "from", "to", "report"],
    "properties": {
        "license_id": {"type": "integer"},
        "sequence": {"type": "integer", "minimum": 1, "description": "the report's place in the chain"},
        "hash": {"type": "string", "description": "SHA-256 of its signed content; the next one names it"},
        "previous_hash": {"type": "string", "nullable": True},
        "from": {"type": "string"},
        "to": {"type": "string"},
        "report": {"type": "string", "description": "the signed report file, to send to the vendor"},
    },
}


def admin_routes() -> list[Route]:
    tags = ("admin",)
    query_policy = {**POLICY, "properties": {**POLICY_FIELDS, "features": POLICY["properties"]["features"]}}
    return [
        Route(
            "POST",
            f"{V4}/licenses",
            h.add_license,
            ADMIN,
            "Add a license from its policy",
            POLICY,
            LICENSE_OBJECT,
            status=201,
            tags=tags,
        ),
        Route(
            "GET",
            f"{V4}/addProduct",
            h.add_license,
            ADMIN,
            "Add a license (V1 shape: policy as query parameters)",
            query_policy,
            LICENSE_OBJECT,
            tags=tags,
            changes_state=True,
        ),
        Route(
            "DELETE",
            f"{V4}/licenses/{{license_id}}",
            h.remove_license,
            ADMIN,
            "Remove a license and its seats",
            {"type": "object", "properties": {"license_id": PATH_ID}},
            EMPTY,
            tags=tags,
        ),
        Route(
            "GET",
            f"{V4}/removeProduct",
            h.remove_product,
            ADMIN,
            "Remove a license (V1 shape)",
            {
                "type": "object",
                "required": ["product"],
                "properties": {"product": s.PRODUCT, "license_id": s.LICENSE_ID},
            },
            {"type": "string", "enum": ["product_removed"]},
            tags=tags,
            changes_state=True,
        ),
        Route(
            "GET",
            f"{V4}/registrations",
            h.registrations,
            ADMIN,
            "Who holds which seat",
            {"type": "object", "properties": {"license_id": s.LICENSE_ID}},
            REGISTRATIONS,
            tags=tags,
            head=True,
        ),
        Route(
            "DELETE",
            f"{V4}/registrations/{{license_id}}/{{user}}",
            h.force_release,
            ADMIN,
            "Force-release one seat",
            {
                "type": "object",
                "properties": {"license_id": PATH_ID, "user": {"type": "string", "minLength": 1}},
            },
            EMPTY,
            tags=tags,
        ),
        Route(
            "POST",
            f"{V4}/license/generate",
            h.activation_request,
            ADMIN,
            "Make an activation request for the vendor (docs/licensing.md)",
            {"type": "object", "required": ["product"], "properties": {"product": POLICY_FIELDS["product"]}},
            ACTIVATION_REQUEST,
            tags=tags,
        ),
        Route(
            "POST",
            f"{V4}/license/upload",
            h.upload_license,
            ADMIN,
            "Install a vendor license file or refresh file (raw body, or a multipart file field)",
            None,
            {**LICENSE_OBJECT, "properties": {**LICENSE_OBJECT["properties"], **INSTALLED}},
            status=201,
            tags=tags,
            file_body=True,
        ),
        Route(
            "GET",
            f"{V4}/license/report",
            h.usage_report,
            ADMIN,
            "The license's next signed usage report for the vendor (docs/licensing.md); "
            "it moves the license's chain of reports on",
            REPORT_QUERY,
            REPORT,
            tags=tags,
            changes_state=True,
        ),
        Route(
            "GET",
            f"{V4}/usage",
            h.usage,
            ADMIN,
            "Usage history of a license: seats, consumptions and refusals over time",
            USAGE_QUERY,
            USAGE,
            tags=tags,
            head=True,
        ),
        Route(
            "GET",
            f"{V4}/usage.csv",
            h.usage_csv,
            ADMIN,
            "The usage history as CSV (same query and points)",
            USAGE_QUERY,
            USAGE_CSV,
            tags=tags,
            head=True,
        ),
        Route(
            "GET",
            f"{V4}/hardware_key",
            h.hardware_key,
            ADMIN,
            "The hardware-key subsystem",
            None,
            HARDWARE_KEY,
            tags=tags,
            head=True,
        ),
        Route(
            "GET",
            f"{V4}/hardware_key/doctor",
            h.hardware_doctor,
            ADMIN,
            "What floatkey doctor finds without touching a card: PC/SC, readers, who holds pcscd",
            None,
            DOCTOR,
            tags=tags,
            head=True,
        ),
    ]


def build_table(extra: list[Route] | None = None) -> RouteTable:
    """Every route of the server; ``extra`` adds routes of other subsystems (authentication)."""
    return RouteTable(client_routes() + admin_routes() + (extra or []))
