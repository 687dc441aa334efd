"""Domain errors: each carries an error code of docs/api.md, an HTTP status and a sentence."""

from __future__ import annotations

from typing import Any

#: HTTP status of every error code in docs/api.md.
STATUS_BY_CODE: dict[str, int] = {
    "invalid_json": 400,
    "malformed_request": 400,
    "validation_error": 400,
    "missing_parameters": 400,
    "unknown_product": 400,
    "license_not_found": 400,
    "license_not_active": 400,
    "license_expired": 400,
    "floating_not_available": 400,
    "registration_not_found": 400,
    "license_borrow_not_allowed": 400,
    "borrow_until_not_valid": 400,
    "license_not_enough_consumptions": 400,
    "invalid_license_feature_code": 400,
    "feature_not_floating": 400,
    "hardware_key_not_accessible": 400,
    "hardware_key_reader_busy": 400,
    "license_file_invalid": 400,
    "license_file_unknown_signer": 400,
    "license_file_wrong_hardware": 400,
    "license_file_not_yet_valid": 400,
    "license_file_expired": 400,
    "license_file_outdated": 400,
    "activation_request_used": 400,
    "clock_rolled_back": 400,
    "license_source_vendor_only": 403,
    "usage_range_not_valid": 400,
    "authentication_failed": 401,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "request_timeout": 408,
    "payload_too_large": 413,
    "uri_too_long": 414,
    "unsupported_media_type": 415,
    "host_not_allowed": 421,
    "too_many_requests": 429,
    "headers_too_large": 431,
    "internal_error": 500,
    "not_implemented": 501,
    "service_unavailable": 503,
    "http_version_not_supported": 505,
}


class FloatkeyError(Exception):
    """An error a client or operator can act on.

    ``code`` is one of docs/api.md's error codes; ``message`` is a sentence for a person.
    """

    def __init__(self, code: str, message: str, **extra: Any) -> None:
        if code not in STATUS_BY_CODE:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = STATUS_BY_CODE[code]
        self.extra = extra

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "code": self.code, "message": self.message, **self.extra}

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.code, self.message, self.extra))


def _rebuild(code: str, message: str, extra: dict[str, Any]) -> FloatkeyError:
    return FloatkeyError(code, message, **extra)


def key_not_accessible(action: str) -> FloatkeyError:
    """The exact V1 error for an action on a key-bound license without its key."""
    return FloatkeyError(
        "hardware_key_not_accessible",
        f"No available valid hardware key to perform the action: {action}",
    )


def no_license_with_id(license_id: int) -> FloatkeyError:
    """An administrator named a license id that does not exist."""
    return FloatkeyError("license_not_found", f"There is no license with id {license_id}.")


def overloaded() -> FloatkeyError:
    """A license actor did not answer within ``actorTimeout``."""
    return FloatkeyError("service_unavailable", "The license server is overloaded; try again shortly.")


def not_stored() -> FloatkeyError:
    """A write the data directory refused (``StorageError``): the log has the reason."""
    return FloatkeyError(
        "service_unavailable",
        "The server could not store the change; try again shortly. If this persists, "
        "the server's log says why (disk full, mapSize reached).",
    )


def license_removed() -> FloatkeyError:
    """The license's actor stopped between resolving the license and asking it."""
    return FloatkeyError("license_not_found", "The license was removed while the request was handled.")


class ConfigError(Exception):
    """The configuration file (or a flag) holds a value floatkey cannot use."""


class StorageError(Exception):
    """The data directory cannot be used (newer schema, not writable, ...)."""
