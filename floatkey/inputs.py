"""Reading client fields the way V1 clients send them: loose about types, strict about meaning.

Numbers may arrive as numeric strings, booleans as "true"/"false", ids as strings.
Anything else is a ``validation_error`` that names the field; a required field that is
absent is ``missing_parameters``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from floatkey.errors import FloatkeyError

MAX_TEXT = 256
#: Largest magnitude of a count a client may send (well inside msgpack's 64-bit range).
MAX_COUNT = 10**15

_MISSING = object()


def missing(field: str) -> FloatkeyError:
    return FloatkeyError("missing_parameters", f"The field {field!r} is required.")


def invalid(field: str, expected: str, value: Any) -> FloatkeyError:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return FloatkeyError("validation_error", f"The field {field!r} must be {expected}, not {shown}.")


def text(
    fields: Mapping[str, Any],
    name: str,
    *,
    required: bool = False,
    max_length: int = MAX_TEXT,
    max_bytes: int | None = None,
    default: str | None = None,
) -> str | None:
    """A string field; an absent or null optional field gives ``default``.

    ``max_bytes`` bounds the UTF-8 size of a field that becomes part of a storage key:
    LMDB refuses keys over 511 bytes, and 256 characters may take 1,024.
    """
    value = fields.get(name)
    if value is None or (value == "" and not required):
        if required:
            raise missing(name)
        return default
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise invalid(name, "a string", value)
    value = str(value)
    if required and not value.strip():
        raise missing(name)
    if len(value) > max_length:
        raise invalid(name, f"at most {max_length} characters long", value)
    if "\x00" in value or any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise invalid(name, "text without NUL characters or lone surrogates", value)
    if max_bytes is not None and len(value.encode("utf-8")) > max_bytes:
        raise invalid(name, f"at most {max_bytes} bytes long in UTF-8", value)
    return value


def integer(
    fields: Mapping[str, Any],
    name: str,
    *,
    default: int | None = None,
    minimum: int = -MAX_COUNT,
    maximum: int = MAX_COUNT,
    required: bool = False,
) -> int | None:
    """A whole number, given as a JSON number or a numeric string."""
    value = fields.get(name)
    if value is None or value == "":
        if required:
            raise missing(name)
        return default
    number = _to_int(value)
    if number is None:
        raise invalid(name, "a whole number", value)
    if not minimum <= number <= maximum:
        raise invalid(name, f"between {minimum} and {maximum}", value)
    return number


def boolean(
    fields: Mapping[str, Any], name: str, *, default: bool | None = None, aliases: tuple[str, ...] = ()
) -> bool | None:
    """true/false as a JSON bool or as the strings "true"/"false" (also 1/0)."""
    value = _MISSING
    for key in (name, *aliases):
        if fields.get(key) is not None:
            value = fields[key]
            break
    if value is _MISSING or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "0", "no"):
        return False
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise invalid(name, "true or false", value)


def license_id(fields: Mapping[str, Any]) -> int | None:
    return integer(fields, "license_id", minimum=1, maximum=2**63 - 1)


def _to_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) <= MAX_COUNT else None
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.lstrip("+-").isdigit() and len(stripped) <= 20 and stripped.isascii():
            return int(stripped)
    return None
