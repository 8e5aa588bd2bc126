"""Create, read, update and archive any entity, scoped to the caller, with an audit row.

Every write runs in one transaction: validation, reference checks, the row and its audit row
commit together or not at all. Rows another tenant owns are reported as not found, never as
forbidden, so their existence does not leak.
"""

from __future__ import annotations

import base64
import sqlite3
from typing import Any

import msgspec

from adserver.common.validation import FieldError, Invalid, convert
from adserver.control.auth import Principal
from adserver.control.schema import SPECS, EntitySpec, entity_of, from_row, to_row
from adserver.control.store import Store, now

DEMAND_WRITABLE_BY_ADVERTISER = {"campaigns", "flights", "creatives", "ads"}
MAX_LIMIT = 1000


class NotFound(Exception):
    """404: no such row visible to the caller."""


class Forbidden(Exception):
    """403: the caller's role may not do this."""


_audit_json = msgspec.json.Encoder(decimal_format="number")


def scope_sql(spec: EntitySpec, who: Principal) -> tuple[str, list[Any]]:
    """A WHERE fragment limiting `spec`'s rows to what `who` may see."""
    net_col = "id" if spec.name == "networks" else "network_id"
    if who.advertiser_id is not None:
        if spec.name == "advertisers":
            return "id = ?", [who.advertiser_id]
        if spec.demand:
            return "advertiser_id = ?", [who.advertiser_id]
        return f"{net_col} = ?", [who.network_id]
    if who.network_id is not None:
        return f"{net_col} = ?", [who.network_id]
    return "1 = 1", []


def _visible(db: sqlite3.Connection, spec: EntitySpec, who: Principal, id_: int) -> sqlite3.Row:
    where, params = scope_sql(spec, who)
    row = db.execute(
        f"SELECT * FROM {spec.name} WHERE id = ? AND {where}", [id_, *params]
    ).fetchone()
    if row is None:
        raise NotFound(f"{spec.singular} {id_} not found")
    return row


def _may_write(spec: EntitySpec, who: Principal, create: bool) -> None:
    if who.role == "readonly":
        raise Forbidden("this key is read-only")
    if who.role == "advertiser" and spec.name not in DEMAND_WRITABLE_BY_ADVERTISER:
        raise Forbidden(f"an advertiser key cannot change {spec.name}")
    if spec.name == "networks" and create and not who.is_global:
        raise Forbidden("only a key without a network scope can create networks")


def _check_refs(
    db: sqlite3.Connection, spec: EntitySpec, who: Principal, obj: Any
) -> tuple[int, int | None]:
    """Check every reference; return the (network_id, advertiser_id) the row belongs to."""
    errors: list[FieldError] = []
    network_id: int | None = None
    advertiser_id: int | None = None

    def ref(field: str, target: str, id_: int) -> sqlite3.Row | None:
        tspec = SPECS[target]
        try:
            row = _visible(db, tspec, who, id_)
        except NotFound as e:
            errors.append(FieldError(field, str(e)))
            return None
        if row["archived"]:
            errors.append(FieldError(field, f"{tspec.singular} {id_} is archived"))
        return row

    if spec.parent is not None:
        field, target = spec.parent
        parent = ref(field, target, getattr(obj, field))
        if parent is not None:
            network_id = parent["id"] if target == "networks" else parent["network_id"]
            if target == "advertisers":
                advertiser_id = parent["id"]
            elif SPECS[target].demand:
                advertiser_id = parent["advertiser_id"]
    for field, target in spec.refs:
        row = ref(field, target, getattr(obj, field))
        if row is None or network_id is None:
            continue
        if row["network_id"] != network_id:
            errors.append(FieldError(field, f"{SPECS[target].singular} is in another network"))
        elif SPECS[target].demand and spec.demand and row["advertiser_id"] != advertiser_id:
            errors.append(FieldError(field, f"{SPECS[target].singular} of another advertiser"))
    for field, target in spec.list_refs:
        for i, id_ in enumerate(getattr(obj, field)):
            row = ref(f"{field}[{i}]", target, id_)
            if row is not None and network_id is not None and row["network_id"] != network_id:
                errors.append(FieldError(f"{field}[{i}]", "is in another network"))
    if errors:
        raise Invalid(errors)
    if spec.name == "networks":
        return 0, None
    assert network_id is not None
    return network_id, advertiser_id


# what a shopper sees of a creative: a change to any of these sends it back to review
CREATIVE_CONTENT = (
    "kind",
    "ad_type_id",
    "click_url",
    "image_url",
    "title",
    "body",
    "template",
    "data",
    "product_id",
)


def _creative_status_rule(spec: EntitySpec, who: Principal, obj: Any, before: Any) -> None:
    """Only an admin approves, rejects or writes a review's reason; a creative whose content
    changes after its review goes back to review (pending), so nothing unreviewed serves."""
    if spec.name != "creatives" or who.role == "admin":
        return
    if obj.status in ("approved", "rejected") and (before is None or before.status != obj.status):
        raise Forbidden("only an admin key can approve or reject a creative")
    if obj.review_reason != (before.review_reason if before is not None else ""):
        raise Forbidden("only an admin key writes a review's reason")
    if (
        before is not None
        and before.status in ("approved", "rejected")
        and any(getattr(obj, f) != getattr(before, f) for f in CREATIVE_CONTENT)
    ):
        obj.status = "pending"


def _audit(
    db: sqlite3.Connection,
    who: Principal,
    spec: EntitySpec,
    action: str,
    before: Any,
    after: Any,
    row: sqlite3.Row,
) -> None:
    enc = _audit_json.encode
    db.execute(
        "INSERT INTO audit (at, key_id, entity, entity_id, action, network_id, advertiser_id,"
        " before, after) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            now(),
            who.key_id,
            spec.name,
            str(row["id"]),
            action,
            row["id"] if spec.name == "networks" else row["network_id"],
            row["advertiser_id"] if "advertiser_id" in row.keys() else None,
            None if before is None else enc(before).decode(),
            enc(after).decode(),
        ),
    )


def _insert(db: sqlite3.Connection, spec: EntitySpec, values: dict[str, Any]) -> int:
    cols = ", ".join(f'"{c}"' for c in values)
    marks = ", ".join("?" for _ in values)
    cur = db.execute(f"INSERT INTO {spec.name} ({cols}) VALUES ({marks})", list(values.values()))
    assert cur.lastrowid is not None
    return cur.lastrowid


def _scope_columns(spec: EntitySpec, network_id: int, advertiser_id: int | None) -> dict[str, Any]:
    fields = spec.struct.__struct_fields__
    extra: dict[str, Any] = {}
    if spec.name != "networks" and "network_id" not in fields:
        extra["network_id"] = network_id
    if spec.demand and "advertiser_id" not in fields:
        extra["advertiser_id"] = advertiser_id
    return extra


class Repository:
    """Entity operations for the management API, each one transaction."""

    def __init__(self, store: Store):
        self.store = store

    def create(self, spec: EntitySpec, who: Principal, body: Any) -> msgspec.Struct:
        _may_write(spec, who, create=True)
        obj = convert(spec.struct, body)
        _creative_status_rule(spec, who, obj, None)
        with self.store.transaction() as db:
            network_id, advertiser_id = _check_refs(db, spec, who, obj)
            stamp = now()
            values = {**to_row(spec, obj), **_scope_columns(spec, network_id, advertiser_id)}
            values.update(created_at=stamp, updated_at=stamp)
            row_id = _insert(db, spec, values)
            row = db.execute(f"SELECT * FROM {spec.name} WHERE id = ?", (row_id,)).fetchone()
            out = from_row(spec, row)
            _audit(db, who, spec, "create", None, out, row)
        return out

    def update(self, spec: EntitySpec, who: Principal, id_: int, patch: Any) -> msgspec.Struct:
        _may_write(spec, who, create=False)
        if not isinstance(patch, dict):
            raise Invalid([FieldError("$", "expected a JSON object")])
        with self.store.transaction() as db:
            row = _visible(db, spec, who, id_)
            before = from_row(spec, row)
            if before.archived:  # type: ignore[attr-defined]
                raise Invalid(
                    [
                        FieldError(
                            "$",
                            f"{spec.singular} {id_} is archived: restore it"
                            f" first (POST /v1/{spec.name}/{id_}/restore)",
                        )
                    ]
                )
            errors = [
                FieldError(k, "read-only")
                for k in patch
                if k in ("id", "archived", "created_at", "updated_at")
            ]
            if (
                spec.parent
                and spec.parent[0] in patch
                and patch[spec.parent[0]] != getattr(before, spec.parent[0])
            ):
                errors.append(FieldError(spec.parent[0], "cannot be changed"))
            if errors:
                raise Invalid(errors)
            merged = msgspec.to_builtins(entity_of(spec, before)) | patch
            obj = convert(spec.struct, merged)
            _creative_status_rule(spec, who, obj, before)
            _check_refs(db, spec, who, obj)
            values = to_row(spec, obj) | {"updated_at": now()}
            sets = ", ".join(f'"{c}" = ?' for c in values)
            db.execute(f"UPDATE {spec.name} SET {sets} WHERE id = ?", [*values.values(), id_])
            row = db.execute(f"SELECT * FROM {spec.name} WHERE id = ?", (id_,)).fetchone()
            out = from_row(spec, row)
            _audit(db, who, spec, "update", before, out, row)
        return out

    def archive(
        self, spec: EntitySpec, who: Principal, id_: int, archived: bool = True
    ) -> msgspec.Struct:
        """Archive (or, `archived=False`, restore) an entity; doing it twice changes nothing.
        A restore needs what the entity refers to to be live (restore a campaign before its
        flights)."""
        _may_write(spec, who, create=False)
        with self.store.transaction() as db:
            row = _visible(db, spec, who, id_)
            before = from_row(spec, row)
            if bool(row["archived"]) != archived:
                if not archived:
                    _check_refs(db, spec, who, entity_of(spec, before))
                db.execute(
                    f"UPDATE {spec.name} SET archived = ?, updated_at = ? WHERE id = ?",
                    (int(archived), now(), id_),
                )
                row = db.execute(f"SELECT * FROM {spec.name} WHERE id = ?", (id_,)).fetchone()
                _audit(
                    db,
                    who,
                    spec,
                    "archive" if archived else "restore",
                    before,
                    from_row(spec, row),
                    row,
                )
            return from_row(spec, row)

    def get(self, spec: EntitySpec, who: Principal, id_: int) -> msgspec.Struct:
        with self.store.lock:
            return from_row(spec, _visible(self.store.conn, spec, who, id_))

    def list(
        self,
        spec: EntitySpec,
        who: Principal,
        filters: dict[str, Any],
        limit: int = 100,
        cursor: str | None = None,
    ) -> tuple[list[msgspec.Struct], str | None]:
        """A page of rows in id order, and the cursor of the next page (None at the end)."""
        where, params = scope_sql(spec, who)
        clauses = [where]
        for column, value in filters.items():
            clauses.append(f'"{column}" = ?')
            params.append(value)
        if cursor:
            clauses.append("id > ?")
            params.append(decode_cursor(cursor))
        sql = f"SELECT * FROM {spec.name} WHERE {' AND '.join(clauses)} ORDER BY id LIMIT ?"
        rows = self.store.read(sql, [*params, limit + 1])
        items = [from_row(spec, r) for r in rows[:limit]]
        next_cursor = encode_cursor(rows[limit - 1]["id"]) if len(rows) > limit else None
        return items, next_cursor


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = text.partition(":")
        if kind != "id":
            raise ValueError(kind)
        return int(value)
    except (ValueError, UnicodeDecodeError):
        raise Invalid([FieldError("cursor", "not a cursor this API returned")]) from None
