"""JSON schemas of request fields, each saying what the server accepts and nothing more.

The readers are ``floatkey/inputs.py`` (text, integers, booleans), ``floatkey/timeutil.py``
(timestamps) and ``floatkey/rules/policy.py`` (codes, ranges, enums); the OpenAPI document
is generated from these, and the schema-driven fuzzer checks both directions: what the
schema allows is accepted, what it forbids is refused.

What a schema cannot say is in its ``description``: a user name's 400-byte UTF-8 bound,
and the rules between fields of a policy (``reset_consumption`` needs a
``consumption_period``, a time-limited license a ``validity_period``, feature codes are
distinct).
"""

from __future__ import annotations

from typing import Any

from floatkey import inputs

#: No NUL anywhere (inputs.text refuses it; lone surrogates cannot be sent as UTF-8).
_NO_NUL = r"^[^\u0000]*$"
#: Not blank once stripped (str.strip strips \x1c-\x1f too), and no NUL.
_NOT_BLANK = r"^[^\u0000]*[^\s\u0000\u001c-\u001f][^\u0000]*$"
#: A product or feature code (policy._CODE).
CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
_BOOL_WORDS = "[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|[Yy][Ee][Ss]|[Nn][Oo]|[01]"


def text(
    max_length: int = inputs.MAX_TEXT,
    *,
    required: bool = False,
    pattern: str | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    """A field read with ``inputs.text``: a string, or a whole number taken as its digits.

    An optional field may be null or "" (both mean absent); a required one may not be
    blank.
    """
    string: dict[str, Any] = {"type": "string", "maxLength": max_length}
    string["pattern"] = pattern or (_NOT_BLANK if required else _NO_NUL)
    number: dict[str, Any] = {"type": "integer"}
    if pattern is not None:  # a code or serial of digits: no sign, no more digits than the pattern
        number.update(minimum=0, maximum=10 ** min(max_length, 64) - 1)
    if not required and pattern is not None:
        string["pattern"] = f"^(?:{pattern.removeprefix('^').removesuffix('$')})?$"
    schema: dict[str, Any] = {"anyOf": [string, number]}
    if not required:
        schema["nullable"] = True
    if description:
        schema["description"] = description
    return schema


def integer(low: int, high: int, *, required: bool = False) -> dict[str, Any]:
    """A field read with ``inputs.integer``: a JSON whole number or its decimal string.

    The string form is described up to the largest all-nines number within ``high``.
    """
    digits = len(str(high)) - (0 if str(high).strip("9") == "" else 1)
    if low >= 1:
        body = rf"\+?0*[1-9][0-9]{{0,{digits - 1}}}"
    elif low == 0:
        body = rf"\+?[0-9]{{1,{digits}}}"
    else:
        body = rf"[+-]?[0-9]{{1,{digits}}}"
    string_pattern = f"^{body}$" if required else f"^(?:{body})?$"
    schema: dict[str, Any] = {
        "anyOf": [
            {"type": "integer", "minimum": low, "maximum": high},
            {"type": "string", "pattern": string_pattern, "maxLength": 20},
        ]
    }
    if not required:
        schema["nullable"] = True
    return schema


def boolean() -> dict[str, Any]:
    """A field read with ``inputs.boolean``: true/false, 0/1, or true/false/yes/no/1/0 as text."""
    return {
        "anyOf": [
            {"type": "boolean"},
            {"type": "integer", "enum": [0, 1]},
            {"type": "string", "pattern": rf"^(?:[ \t]*(?:{_BOOL_WORDS})[ \t]*)?$"},
        ],
        "nullable": True,
    }


def time() -> dict[str, Any]:
    """A timestamp read with ``timeutil.parse_time``; null, "" or the zero time mean none.

    The pattern keeps to dates that exist in every month (days 01-28) and years from 1000;
    the server also takes the rest of the calendar.
    """
    date = r"[1-9][0-9]{3}-(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])"
    clock = r"(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{1,6})?)?"
    offset = r"(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])?"
    return {
        "type": "string",
        "nullable": True,
        "pattern": rf"^(?:{date}(?:T{clock}{offset})?|0001-01-01T00:00:00Z)?$",
        "description": "RFC 3339 (any offset), or YYYY-MM-DD for midnight UTC; null for none",
    }


def enum(*values: str) -> dict[str, Any]:
    """A text field with a fixed set of values; "" and null mean the default."""
    return {"type": "string", "enum": [*values, "", None], "nullable": True}


def json_object(max_kib: int = 16) -> dict[str, Any]:
    """An object field of a policy (metadata, customer); null means none."""
    return {"type": "object", "nullable": True, "description": f"at most {max_kib} KiB as JSON"}


#: Required and optional text fields of the client routes.
PRODUCT = text(required=True)
FEATURE = text(required=True)
USER = text(required=True, description="at most 400 bytes in UTF-8")
OPTIONAL_USER = text(description="at most 256 characters; not used by this route")
CLIENT_TEXT = text()
USER_INFO = text(4096)
LICENSE_ID = integer(1, 2**63 - 1)
CONSUMPTIONS = integer(-inputs.MAX_COUNT, inputs.MAX_COUNT, required=True)
CLIENT_MAX_OVERAGES = integer(0, inputs.MAX_COUNT)
