"""How each entity maps onto its table, and how rows are scoped to tenants.

One EntitySpec per resource; the repository, the API routes and the OpenAPI document are all
generated from these, so adding an entity means a Struct, a migration and one line here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import json
import types
import typing
from typing import Any

import msgspec

from adserver.common import entities as e

MICROS = decimal.Decimal(1_000_000)
READ_ONLY = ("id", "archived", "created_at", "updated_at")


@dataclasses.dataclass(frozen=True)
class Column:
    """How one entity field is stored: its column, kind (scalar, bool, money, json, ...) and
    reference."""

    field: str
    column: str
    kind: str  # "scalar" | "money" | "json" | "time" | "bool"


@dataclasses.dataclass(frozen=True)
class EntitySpec:
    """An entity kind's table, Structs (in and out), columns, parent and scope rules."""

    name: str  # URL segment and table name
    singular: str
    struct: type[e.Entity]
    parent: tuple[str, str] | None  # (field, entity name) that scopes this row
    refs: tuple[tuple[str, str], ...] = ()  # other references checked on write
    list_refs: tuple[tuple[str, str], ...] = ()  # list fields of ids of another entity
    demand: bool = False  # rows belong to an advertiser

    @property
    def columns(self) -> list[Column]:
        return _columns(self.struct)

    @property
    def out(self) -> type[msgspec.Struct]:
        return _out_struct(self.struct)


def _unwrap(tp: Any) -> Any:
    """The core type of an annotation: strip Annotated and `| None`."""
    while True:
        if typing.get_origin(tp) is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            tp = args[0]
        else:
            return tp


_COLUMNS: dict[type, list[Column]] = {}
_OUTS: dict[type, type[msgspec.Struct]] = {}


def _columns(struct: type) -> list[Column]:
    if struct not in _COLUMNS:
        cols = []
        for f in msgspec.structs.fields(struct):
            tp = _unwrap(f.type)
            origin = typing.get_origin(tp) or tp
            if tp is decimal.Decimal:
                cols.append(Column(f.name, f"{f.name}_micros", "money"))
            elif tp is dt.datetime:
                cols.append(Column(f.name, f.name, "time"))
            elif tp is bool:
                cols.append(Column(f.name, f.name, "bool"))
            elif origin in (list, dict) or (
                isinstance(tp, type) and issubclass(tp, msgspec.Struct)
            ):
                cols.append(Column(f.name, f.name, "json"))
            else:
                cols.append(Column(f.name, f.name, "scalar"))
        _COLUMNS[struct] = cols
    return _COLUMNS[struct]


def _out_struct(struct: type) -> type[msgspec.Struct]:
    """The read model: the entity's fields plus id, archived and timestamps."""
    if struct not in _OUTS:
        _OUTS[struct] = msgspec.defstruct(
            struct.__name__ + "Out",
            [("id", int), ("archived", bool), ("created_at", str), ("updated_at", str)],
            bases=(struct,),
            kw_only=True,
        )
    return _OUTS[struct]


def to_micros(value: decimal.Decimal | None) -> int | None:
    return None if value is None else int(value * MICROS)


def from_micros(value: int | None) -> decimal.Decimal | None:
    return None if value is None else (decimal.Decimal(value) / MICROS).normalize()


def utc_text(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


_json = msgspec.json.Encoder()  # Decimal inside JSON columns is written as an exact string


def to_row(spec: EntitySpec, obj: e.Entity) -> dict[str, Any]:
    """Column values of an entity."""
    row: dict[str, Any] = {}
    for col in spec.columns:
        value = getattr(obj, col.field)
        if col.kind == "money":
            value = to_micros(value)
        elif col.kind == "time":
            value = utc_text(value)
        elif col.kind == "json":
            value = None if value is None else _json.encode(value).decode()
        elif col.kind == "bool":
            value = int(value)
        row[col.column] = value
    return row


def from_row(spec: EntitySpec, row: Any) -> msgspec.Struct:
    """The read model of a table row."""
    data: dict[str, Any] = {k: row[k] for k in READ_ONLY}
    for col in spec.columns:
        value = row[col.column]
        if value is not None:
            if col.kind == "money":
                value = from_micros(value)
            elif col.kind == "json":
                value = json.loads(value)
        data[col.field] = value
    return msgspec.convert(data, spec.out, strict=False)


def entity_of(spec: EntitySpec, out: msgspec.Struct) -> e.Entity:
    """The writable part of a read model."""
    return spec.struct(**{f: getattr(out, f) for f in spec.struct.__struct_fields__})


SPECS: dict[str, EntitySpec] = {
    s.name: s
    for s in [
        EntitySpec("networks", "network", e.Network, None),
        EntitySpec("sites", "site", e.Site, ("network_id", "networks")),
        EntitySpec("zones", "zone", e.Zone, ("site_id", "sites")),
        EntitySpec("ad_types", "ad type", e.AdType, ("network_id", "networks")),
        EntitySpec(
            "channels",
            "channel",
            e.Channel,
            ("network_id", "networks"),
            list_refs=(("site_ids", "sites"),),
        ),
        EntitySpec("priorities", "priority", e.Priority, ("channel_id", "channels")),
        EntitySpec("advertisers", "advertiser", e.Advertiser, ("network_id", "networks")),
        EntitySpec(
            "campaigns", "campaign", e.Campaign, ("advertiser_id", "advertisers"), demand=True
        ),
        EntitySpec(
            "flights",
            "flight",
            e.Flight,
            ("campaign_id", "campaigns"),
            refs=(("priority_id", "priorities"),),
            list_refs=(("site_ids", "sites"), ("zone_ids", "zones")),
            demand=True,
        ),
        EntitySpec(
            "creatives",
            "creative",
            e.Creative,
            ("advertiser_id", "advertisers"),
            refs=(("ad_type_id", "ad_types"),),
            demand=True,
        ),
        EntitySpec(
            "ads",
            "ad",
            e.Ad,
            ("flight_id", "flights"),
            refs=(("creative_id", "creatives"),),
            demand=True,
        ),
    ]
}
