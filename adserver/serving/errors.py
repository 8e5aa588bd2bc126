"""The decision server's JSON errors, one shape for every route of the port:
`{"error": {"status", "code", "message", "fields": [{"field", "message"}]}}` (Personalizer's
routes answer in Personalizer's own shape: adserver/wire/personalizer.error_body)."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.responses import Response

from adserver.common.validation import FieldError

JSON = "application/json"
encoder = msgspec.json.Encoder()


def error_body(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    fields: list[FieldError] | None = None,
) -> bytes:
    """The JSON error document every route answers with."""
    body: dict[str, Any] = {"status": status, "code": code, "message": message}
    if field:
        body["fields"] = [{"field": field, "message": message}]
    if fields:
        body["fields"] = [{"field": f.field, "message": f.message} for f in fields]
    return encoder.encode({"error": body})


def error(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    fields: list[FieldError] | None = None,
) -> Response:
    """A Starlette response of `error_body`."""
    return Response(error_body(status, code, message, field, fields), status, media_type=JSON)


def field_of(err: msgspec.ValidationError) -> tuple[str, str]:
    """(the field a typed decoder's error names, the message without msgspec's markup)."""
    text = str(err)
    if " - at `$" in text:
        text, _, at = text.partition(" - at `$")
        return at.rstrip("`").lstrip("."), text.replace("`", "")
    return "$", text.replace("`", "")
