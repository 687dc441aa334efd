"""Reading an uploaded file: the raw body, or the one file field of a multipart form.

``POST /api/v4/license/upload`` takes a license file either way (V1 clients post a form);
what the file says is for floatkey.licensing to judge.
"""

from __future__ import annotations

from email.parser import BytesParser
from email.policy import HTTP

from floatkey.errors import FloatkeyError


def file_from_body(raw: bytes, content_type: str | None) -> bytes:
    """The uploaded file's bytes: the body, or the first file field of a multipart body."""
    if not raw.strip():
        raise FloatkeyError(
            "missing_parameters",
            "Send the license file as the request body, or as a file field of a multipart form "
            "(curl -F file=@FILE).",
        )
    if content_type is None or not content_type.lower().startswith("multipart/form-data"):
        return raw
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", "replace")
    message = BytesParser(policy=HTTP).parsebytes(head + raw)
    parts = [p for p in message.iter_parts()] if message.is_multipart() else []
    files = [p for p in parts if p.get_filename() is not None] or parts
    for part in files:
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes) and payload.strip():
            return payload
    raise FloatkeyError(
        "missing_parameters",
        "The multipart form holds no file: add the license file as a file field (curl -F file=@FILE).",
    )
