"""The product catalog in the control store: batched upserts and deletes, reads, listing.

Products are keyed by (network, the retailer's product id). Every write is one transaction
with one audit row for the batch, and stamps the rows it touches with the next catalog change
number (`catalog_seq`), which is how the compiler tells that the catalog changed. A batch
keeps its good rows and reports each bad one (its position, id and fields); it never stores
half a product.
"""

from __future__ import annotations

import base64
import sqlite3
from decimal import Decimal
from typing import Annotated, Any

import msgspec
import numpy as np

from adserver.common.entities import CATEGORY_SEPARATOR, Product
from adserver.common.validation import FieldError, Invalid, convert
from adserver.control.auth import Principal
from adserver.control.repo import Forbidden, NotFound
from adserver.control.store import Store, now

MAX_BATCH = 1000
MAX_LIMIT = 1000

_audit_json = msgspec.json.Encoder(decimal_format="number")


class ProductOut(Product, kw_only=True):
    """A stored product: the written fields, the category as a list, and when it changed."""

    updated_at: str


class Rejected(msgspec.Struct):
    """A product a batch did not write: its id, line and bad fields."""

    index: int
    id: str | None
    fields: list[FieldError]


class BatchRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """POST /v1/networks/{id}/products: products to create or replace, ids to delete."""

    products: list[Any] = []
    delete: list[Annotated[str, msgspec.Meta(min_length=1, max_length=200)]] = []


class BatchResult(msgspec.Struct):
    """What a batch wrote: products upserted and deleted, and the rejected ones."""

    upserted: int
    deleted: int
    rejected: list[Rejected]


def check_product(item: Any, dim: int | None = None) -> Product:
    """A valid Product from a JSON value, or Invalid with every bad field. With `dim`, a
    supplied vector must have that many components (the embedding model's dimension)."""
    product = convert(Product, item)
    if dim is not None and product.vector is not None and len(product.vector) != dim:
        raise Invalid(
            [
                FieldError(
                    "vector", f"has {len(product.vector)} components; the embedding model has {dim}"
                )
            ]
        )
    return product


def to_row(network_id: int, p: Product, seq: int, stamp: str) -> tuple:
    vector = None if p.vector is None else np.asarray(p.vector, dtype="<f4").tobytes()
    return (
        network_id,
        p.id,
        p.title,
        p.brand,
        CATEGORY_SEPARATOR.join(p.path()),
        int(p.price * 1_000_000),
        int(p.available),
        p.image_url,
        stamp,
        p.url,
        msgspec.json.encode(p.data).decode(),
        vector,
        seq,
    )


def from_row(row: sqlite3.Row) -> ProductOut:
    vector = None
    if row["vector"] is not None:
        vector = np.frombuffer(row["vector"], dtype="<f4").astype(float).tolist()
    return ProductOut(
        id=row["id"],
        title=row["title"],
        brand=row["brand"],
        category=[c for c in row["category"].split(CATEGORY_SEPARATOR) if c],
        price=(Decimal(row["price_micros"]) / 1_000_000).normalize(),
        available=bool(row["available"]),
        image_url=row["image_url"],
        url=row["url"],
        vector=vector,
        data=msgspec.json.decode(row["data"]),
        updated_at=row["updated_at"],
    )


_UPSERT = (
    "INSERT INTO products (network_id, id, title, brand, category, price_micros, available,"
    " image_url, updated_at, url, data, vector, seq) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT (network_id, id) DO UPDATE SET title = excluded.title,"
    " brand = excluded.brand, category = excluded.category,"
    " price_micros = excluded.price_micros, available = excluded.available,"
    " image_url = excluded.image_url, updated_at = excluded.updated_at, url = excluded.url,"
    " data = excluded.data, vector = excluded.vector, seq = excluded.seq"
)


class Catalog:
    """Catalog operations for the management API, each one transaction."""

    def __init__(self, store: Store, vector_dim: Any = lambda network_id: None):
        self.store = store
        self.vector_dim = vector_dim  # network id -> the embedding model's dimension, or None

    @staticmethod
    def _network(db: sqlite3.Connection, who: Principal, network_id: int, write: bool) -> None:
        if who.network_id is not None and who.network_id != network_id:
            raise NotFound(f"network {network_id} not found")
        row = db.execute("SELECT archived FROM networks WHERE id = ?", (network_id,)).fetchone()
        if row is None:
            raise NotFound(f"network {network_id} not found")
        if write:
            if who.role != "admin" or who.advertiser_id is not None:
                raise Forbidden("only an admin key can change the catalog")
            if row["archived"]:
                raise Invalid([FieldError("network_id", f"network {network_id} is archived")])

    def _next_seq(self, db: sqlite3.Connection) -> int:
        db.execute("UPDATE catalog_seq SET n = n + 1")
        return db.execute("SELECT n FROM catalog_seq").fetchone()[0]

    def _audit(
        self,
        db: sqlite3.Connection,
        who: Principal,
        network_id: int,
        action: str,
        entity_id: str,
        before: Any,
        after: Any,
    ) -> None:
        enc = _audit_json.encode
        db.execute(
            "INSERT INTO audit (at, key_id, entity, entity_id, action, network_id,"
            " advertiser_id, before, after) VALUES (?, ?, 'products', ?, ?, ?, NULL, ?, ?)",
            (
                now(),
                who.key_id,
                entity_id,
                action,
                network_id,
                None if before is None else enc(before).decode(),
                enc(after).decode(),
            ),
        )

    def batch(
        self, who: Principal, network_id: int, upsert: list[Any], delete: list[str]
    ) -> BatchResult:
        """Upsert the valid products of `upsert` and delete the ids in `delete` (missing ids
        are not an error: the catalog ends up without them either way)."""
        if len(upsert) + len(delete) > MAX_BATCH:
            raise Invalid(
                [FieldError("products", f"at most {MAX_BATCH} products and deletes per request")]
            )
        dim = self.vector_dim(network_id)
        good: dict[str, Product] = {}
        rejected = []
        for i, item in enumerate(upsert):
            try:
                p = check_product(item, dim)
            except Invalid as e:
                pid = item.get("id") if isinstance(item, dict) else None
                rejected.append(Rejected(i, pid if isinstance(pid, str) else None, e.errors))
                continue
            good[p.id] = p  # the last of repeated ids wins, as in a file read top to bottom
        with self.store.transaction() as db:
            self._network(db, who, network_id, write=True)
            seq, stamp = self._next_seq(db), now()
            db.executemany(_UPSERT, [to_row(network_id, p, seq, stamp) for p in good.values()])
            deleted = 0
            for pid in delete:
                deleted += db.execute(
                    "DELETE FROM products WHERE network_id = ? AND id = ?", (network_id, pid)
                ).rowcount
            if good or deleted:
                ids = list(good)
                self._audit(
                    db,
                    who,
                    network_id,
                    "upsert" if good else "delete",
                    ids[0] if len(ids) == 1 and not delete else f"{len(ids)} products",
                    None,
                    {
                        "upserted": len(ids),
                        "deleted": deleted,
                        "ids": ids[:100],
                        "deleted_ids": delete[:100],
                    },
                )
        return BatchResult(len(good), deleted, rejected)

    def put(
        self, who: Principal, network_id: int, product_id: str, body: Any
    ) -> tuple[ProductOut, bool]:
        """Create or replace one product; returns it and whether it was created."""
        if isinstance(body, dict) and body.get("id", product_id) != product_id:
            raise Invalid([FieldError("id", "differs from the product id in the path")])
        p = check_product(
            {**body, "id": product_id} if isinstance(body, dict) else body,
            self.vector_dim(network_id),
        )
        with self.store.transaction() as db:
            self._network(db, who, network_id, write=True)
            before = db.execute(
                "SELECT * FROM products WHERE network_id = ? AND id = ?", (network_id, product_id)
            ).fetchone()
            db.execute(_UPSERT, to_row(network_id, p, self._next_seq(db), now()))
            row = db.execute(
                "SELECT * FROM products WHERE network_id = ? AND id = ?", (network_id, product_id)
            ).fetchone()
            out = from_row(row)
            self._audit(
                db,
                who,
                network_id,
                "update" if before else "create",
                product_id,
                None if before is None else from_row(before),
                out,
            )
        return out, before is None

    def delete(self, who: Principal, network_id: int, product_id: str) -> ProductOut:
        with self.store.transaction() as db:
            self._network(db, who, network_id, write=True)
            row = db.execute(
                "SELECT * FROM products WHERE network_id = ? AND id = ?", (network_id, product_id)
            ).fetchone()
            if row is None:
                raise NotFound(f"product {product_id!r} not found")
            self._next_seq(db)
            db.execute(
                "DELETE FROM products WHERE network_id = ? AND id = ?", (network_id, product_id)
            )
            out = from_row(row)
            self._audit(db, who, network_id, "delete", product_id, out, {"deleted": True})
        return out

    def get(self, who: Principal, network_id: int, product_id: str) -> ProductOut:
        with self.store.lock:
            db = self.store.conn
            self._network(db, who, network_id, write=False)
            row = db.execute(
                "SELECT * FROM products WHERE network_id = ? AND id = ?", (network_id, product_id)
            ).fetchone()
        if row is None:
            raise NotFound(f"product {product_id!r} not found")
        return from_row(row)

    def list(
        self,
        who: Principal,
        network_id: int,
        limit: int,
        cursor: str | None,
        brand: str | None = None,
        category: str | None = None,
    ) -> tuple[list[ProductOut], str | None]:
        """A page in product id order and the next page's cursor (None at the end).
        `category` matches any level of the path."""
        clauses, params = ["network_id = ?"], list[Any]([network_id])
        if cursor:
            clauses.append("id > ?")
            params.append(_decode_cursor(cursor))
        if brand is not None:
            clauses.append("brand = ?")
            params.append(brand)
        if category is not None:
            clauses.append(
                f"('{CATEGORY_SEPARATOR}' || category || '{CATEGORY_SEPARATOR}') LIKE ? ESCAPE '\\'"
            )
            like = category.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            params.append(f"%{CATEGORY_SEPARATOR}{like}{CATEGORY_SEPARATOR}%")
        with self.store.lock:
            self._network(self.store.conn, who, network_id, write=False)
            rows = self.store.conn.execute(
                f"SELECT * FROM products WHERE {' AND '.join(clauses)} ORDER BY id LIMIT ?",
                [*params, limit + 1],
            ).fetchall()
        items = [from_row(r) for r in rows[:limit]]
        return items, (_encode_cursor(rows[limit - 1]["id"]) if len(rows) > limit else None)


def _encode_cursor(last: str) -> str:
    return base64.urlsafe_b64encode(f"pid:{last}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        text = ""
    if not text.startswith("pid:"):
        raise Invalid([FieldError("cursor", "not a cursor this API returned")])
    return text[4:]
