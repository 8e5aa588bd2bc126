"""The management API's answers: JSON bodies (money as numbers), its error document
`{"error": {"status", "code", "message", "fields": [{"field", "message"}]}}`, and the
range-checked integer query parameter. Every control route module builds on these."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.responses import Response

from adserver.common.validation import FieldError

encoder = msgspec.json.Encoder(decimal_format="number")


class ApiError(Exception):
    """An answer other than 2xx: its status, code, message and the bad fields."""

    def __init__(self, status: int, code: str, message: str, fields: list[FieldError] = ()):  # type: ignore[assignment]
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, list(fields)


def json_response(data: Any, status: int = 200) -> Response:
    return Response(encoder.encode(data), status, media_type="application/json")


def error_response(err: ApiError) -> Response:
    body = {"status": err.status, "code": err.code, "message": err.message}
    if err.fields:
        body["fields"] = [{"field": f.field, "message": f.message} for f in err.fields]
    return json_response({"error": body}, err.status)


def int_param(raw: str, name: str, lo: int, hi: int, errors: list[FieldError]) -> int:
    """An integer query parameter from `lo` to `hi` (ASCII digits), else a FieldError in
    `errors` and `lo`."""
    digits = raw[1:] if raw[:1] == "-" else raw
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 18 or not lo <= int(raw) <= hi:
        errors.append(FieldError(name, f"must be an integer from {lo} to {hi}"))
        return lo
    return int(raw)
