"""Console forms generated from the entity Structs (adserver/common/entities.py): every field
the API has, as the control its type calls for (a checkbox for a flag, a list for a choice
or a reference, a number for money, a local date and time in the network's time zone, JSON
for lists and objects), and the form's strings back into the API's JSON body. The API checks
the values; a value the form cannot even read (a date, JSON) is named here, at its field."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import typing
import zoneinfo
from typing import Any

import msgspec

from adserver.control.schema import READ_ONLY, EntitySpec, _unwrap


@dataclasses.dataclass(frozen=True)
class Field:
    """One form control: the field, its label, the control's kind, and its choices."""

    name: str
    label: str
    kind: str  # bool | choice | ref | money | time | int | float | text | long | json
    required: bool
    optional: bool  # the API takes null (an empty control sends it)
    choices: tuple[str, ...] = ()
    ref: str | None = None  # the entity a ref field names


def _label(name: str) -> str:
    text = (name[:-4] + "s" if name.endswith("_ids") else name.removesuffix("_id")).replace(
        "_", " "
    )
    return text[:1].upper() + text[1:]


def _optional(tp: Any) -> bool:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return type(None) in typing.get_args(tp)


def _long(tp: Any) -> bool:
    for meta in typing.get_args(tp)[1:] if typing.get_origin(tp) is typing.Annotated else ():
        if getattr(meta, "max_length", None) and meta.max_length > 500:
            return True
    return False


_FIELDS: dict[str, list[Field]] = {}


def fields(spec: EntitySpec) -> list[Field]:
    """The writable fields of an entity kind as form controls, in the Struct's order."""
    if spec.name in _FIELDS:
        return _FIELDS[spec.name]
    refs = dict(spec.refs)
    if spec.parent:
        refs[spec.parent[0]] = spec.parent[1]
    out = []
    for f in msgspec.structs.fields(spec.struct):
        if f.name in READ_ONLY:
            continue
        core = _unwrap(f.type)
        origin = typing.get_origin(core) or core
        required = f.required
        optional = _optional(f.type)
        choices: tuple[str, ...]
        if core is bool:
            kind, choices = "bool", ()
        elif origin is typing.Literal:
            kind, choices = "choice", tuple(str(a) for a in typing.get_args(core))
        elif f.name in refs:
            kind, choices = "ref", ()
        elif core is decimal.Decimal:
            kind, choices = "money", ()
        elif core is dt.datetime:
            kind, choices = "time", ()
        elif core is int:
            kind, choices = "int", ()
        elif core is float:
            kind, choices = "float", ()
        elif core is str:
            kind, choices = ("long" if _long(f.type) else "text"), ()
        else:
            kind, choices = "json", ()
        out.append(
            Field(f.name, _label(f.name), kind, required, optional, choices, refs.get(f.name))
        )
    _FIELDS[spec.name] = out
    return out


def to_body(
    spec: EntitySpec, form: dict[str, str], tz: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """The API body of a submitted form, and the fields the form itself could not read."""
    body: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for f in fields(spec):
        raw = form.get(f.name)
        if f.kind == "bool":
            body[f.name] = raw == "on"
            continue
        raw = (raw or "").strip() if f.kind not in ("long", "text") else (raw or "")
        if raw == "":
            if f.optional:
                body[f.name] = None
            elif f.required:
                body[f.name] = "" if f.kind in ("text", "long") else None
            continue  # else: the API's default
        try:
            body[f.name] = _value(f, raw, tz)
        except ValueError as e:
            errors[f.name] = str(e)
    return body, errors


def _value(f: Field, raw: str, tz: str) -> Any:
    if f.kind in ("ref", "int"):
        try:
            return int(raw)
        except ValueError:
            raise ValueError("must be a whole number") from None
    if f.kind == "float":
        try:
            return float(raw)
        except ValueError:
            raise ValueError("must be a number") from None
    if f.kind == "money":
        return raw  # a decimal string: the API checks it exactly
    if f.kind == "time":
        try:
            local = dt.datetime.fromisoformat(raw)
        except ValueError:
            raise ValueError("must be a date and time") from None
        if local.tzinfo is None:
            local = local.replace(tzinfo=zoneinfo.ZoneInfo(tz))
        return local.isoformat()
    if f.kind == "json":
        try:
            return msgspec.json.decode(raw)
        except msgspec.DecodeError as e:
            raise ValueError(f"not valid JSON: {e}") from None
    return raw


def form_value(f: Field, value: Any, tz: str) -> str:
    """A field's stored value as its control shows it."""
    if value is None:
        return ""
    if f.kind == "time":
        return local_time(value, tz)
    if f.kind == "json":
        return msgspec.json.encode(value).decode()
    return str(value)


def local_time(value: str | None, tz: str) -> str:
    """An RFC 3339 time as a local `YYYY-MM-DDTHH:MM` in the time zone `tz`."""
    if not value:
        return ""
    try:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return t.astimezone(zoneinfo.ZoneInfo(tz)).strftime("%Y-%m-%dT%H:%M")


def errors_by_field(api_fields: list[dict[str, Any]]) -> dict[str, str]:
    """An API error's fields, by the form control they belong to (`keywords[0].bid` is the
    keywords control's)."""
    out: dict[str, str] = {}
    for item in api_fields:
        path = item.get("field") or ""
        name = path.split("[", 1)[0].split(".", 1)[0]
        message = item.get("message", "")
        if path != name:
            message = f"{path}: {message}"
        out[name] = f"{out[name]}; {message}" if name in out else message
    return out
