"""Reading client fields the way V1 clients send them: loose about types, strict about meaning.

Numbers may arrive as numeric strings, booleans as "true"/"false", ids as strings.
Anything else is a ``validation_error`` that names the field; a required field that is
absent is ``missing_parameters``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from floatkey.errors import FloatkeyError

MAX_TEXT = 256
#: Largest magnitude of a count a client may send (well inside msgpack's 64-bit range).
MAX_COUNT = 10**15
#: The range of an integer floatkey stores: msgpack and every strict JSON client take it.
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
#: A user's name is part of a seat's storage key: the license id (8 bytes), the feature
#: code (up to 64) and a separator come before it, inside LMDB's 511-byte key limit.
USER_MAX_BYTES = 400
#: Bounds of a JSON-like value an administrator stores (license or feature metadata).
MAX_DEPTH = 16
MAX_JSON_BYTES = 16 * 1024

_MISSING = object()
#: Lone surrogates: Python strings may hold them, UTF-8 (so msgpack) cannot.
_UNSTORABLE = re.compile("[\ud800-\udfff]")


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
    if "\x00" in value or (not value.isascii() and _UNSTORABLE.search(value)):
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


def user(value: Any, name: str = "user") -> str:
    """A user's name as the rules take it: a string that fits a seat's storage key."""
    if not isinstance(value, str):
        raise invalid(name, "a string", value)
    text({name: value}, name, required=True, max_bytes=USER_MAX_BYTES)
    return value


def optional_text(value: Any, name: str, max_length: int = MAX_TEXT) -> str | None:
    """A string or None, as the rules take it (no conversion): bounded, storable text."""
    if value is not None and not isinstance(value, str):
        raise invalid(name, "a string or null", value)
    text({name: value}, name, max_length=max_length)
    return value


def count(value: Any, name: str = "consumptions") -> int:
    """A whole number of consumptions of at most ``MAX_COUNT`` either way (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(name, "a whole number", value)
    if not -MAX_COUNT <= value <= MAX_COUNT:
        raise invalid(name, f"between {-MAX_COUNT} and {MAX_COUNT}", value)
    return value


def finite_numbers(value: Any) -> None:
    """Refuse NaN and the infinities anywhere in a parsed JSON body, naming the field.

    Python's JSON reader takes ``NaN``, ``Infinity`` and numbers too large for a float
    (``1e400``); stored, they come back out as tokens no strict JSON client reads.
    Iterative: a body may nest as deep as the JSON reader allowed.
    """
    pending: list[tuple[str, Any]] = [("", value)]
    while pending:
        name, item = pending.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                raise invalid(name or "body", "a finite number", item)
        elif isinstance(item, dict):
            pending.extend((f"{name}.{k}" if name else str(k), v) for k, v in item.items())
        elif isinstance(item, list):
            pending.extend((f"{name}[{i}]", v) for i, v in enumerate(item))


def storable(value: Any, name: str, *, times: bool = False) -> None:
    """Refuse what msgpack and strict JSON clients cannot take, naming where it is.

    Accepts None, booleans, integers within int64, finite floats, text without lone
    surrogates, aware datetimes when ``times`` (a stored record; never in metadata,
    which answers carry as JSON), and lists, tuples and string-keyed dicts of those,
    nested at most ``MAX_DEPTH`` deep.
    """
    _storable(value, name, MAX_DEPTH, times)


def _storable(value: Any, name: str, depth: int, times: bool) -> None:
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise invalid(name, f"an integer between {INT64_MIN} and {INT64_MAX}", value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise invalid(name, "a finite number", value)
    elif isinstance(value, str):
        if not value.isascii() and _UNSTORABLE.search(value):
            raise invalid(name, "text without lone surrogates", value)
    elif isinstance(value, datetime) and times:
        if value.tzinfo is None:
            raise invalid(name, "a time with a time zone", value)
    elif isinstance(value, (list, tuple, dict)):
        if depth <= 0:
            raise invalid(name, f"nested at most {MAX_DEPTH} levels deep", value)
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise invalid(name, "an object whose keys are strings", value)
                _storable(key, f"{name}.{key}", depth - 1, times)
                _storable(item, f"{name}.{key}", depth - 1, times)
        else:
            for i, item in enumerate(value):
                _storable(item, f"{name}[{i}]", depth - 1, times)
    else:
        raise invalid(name, "JSON-like data (null, true/false, numbers, text, lists, objects)", value)


def json_object(value: Any, name: str) -> dict[str, Any] | None:
    """An administrator's JSON object (metadata, customer): given as an object or as its
    JSON text; storable and at most ``MAX_JSON_BYTES`` once written as JSON."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            raise invalid(name, "a JSON object", value) from None
    if not isinstance(value, dict):
        raise invalid(name, f"a JSON object of at most {MAX_JSON_BYTES // 1024} KiB", value)
    storable(value, name)
    if len(json.dumps(value)) > MAX_JSON_BYTES:
        raise invalid(name, f"a JSON object of at most {MAX_JSON_BYTES // 1024} KiB", value)
    return value
