"""API keys and the principals they stand for.

A key reads `ak_<key_id>_<secret>` (format and digest in adserver/common/apikeys.py). Keys are accepted as `X-Api-Key` or Kevel's `X-Adzerk-ApiKey`.

Roles: `admin` (everything in its network, or everywhere when it has none), `advertiser`
(its own advertiser's campaigns, flights, creatives, ads and reports; reads its network's
inventory), `readonly` (reads what an admin of the same scope could).
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from typing import Literal

import msgspec

from adserver.common import apikeys
from adserver.control.store import Store, now

Role = Literal["admin", "advertiser", "readonly"]
BOOTSTRAP_KEY_ID = "bootstrap"
USE_EVERY_S = 60.0


class Principal(msgspec.Struct, frozen=True):
    """Who is calling: the key id and the scope the key grants."""

    key_id: str
    role: Role
    network_id: int | None = None
    advertiser_id: int | None = None

    @property
    def is_global(self) -> bool:
        return self.network_id is None and self.advertiser_id is None


class KeyInfo(msgspec.Struct, kw_only=True):
    """A stored key as listed (never with its secret)."""

    id: int
    key_id: str
    role: Role
    network_id: int | None
    advertiser_id: int | None
    name: str
    created_at: str
    created_by: str
    revoked_at: str | None
    last_used_at: str | None = None
    """When the key last authenticated a management API call (to the minute; its use as an
    explain key on the decision port is not recorded: the workers write nothing)."""


def create_key(
    db: sqlite3.Connection,
    *,
    role: Role,
    name: str,
    created_by: str,
    network_id: int | None = None,
    advertiser_id: int | None = None,
) -> tuple[str, KeyInfo]:
    """Store a new key inside the caller's transaction; returns (the key, its info)."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_bytes(16)
    cur = db.execute(
        "INSERT INTO api_keys (key_id, salt, hash, role, network_id, advertiser_id, name,"
        " created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            key_id,
            salt,
            apikeys.digest(salt, secret),
            role,
            network_id,
            advertiser_id,
            name,
            now(),
            created_by,
        ),
    )
    row = db.execute("SELECT * FROM api_keys WHERE id = ?", (cur.lastrowid,)).fetchone()
    info = key_info(row)
    _audit_key(db, created_by, "create", None, info)
    return f"ak_{key_id}_{secret}", info


def _audit_key(
    db: sqlite3.Connection, by: str, action: str, before: KeyInfo | None, after: KeyInfo
) -> None:
    """An audit row for a key's creation or revocation (never its secret)."""
    enc = msgspec.json.encode
    db.execute(
        "INSERT INTO audit (at, key_id, entity, entity_id, action, network_id, advertiser_id,"
        " before, after) VALUES (?, ?, 'keys', ?, ?, ?, ?, ?, ?)",
        (
            now(),
            by,
            after.key_id,
            action,
            after.network_id,
            after.advertiser_id,
            None if before is None else enc(before).decode(),
            enc(after).decode(),
        ),
    )


def key_info(row: sqlite3.Row) -> KeyInfo:
    return KeyInfo(**{f: row[f] for f in KeyInfo.__struct_fields__})


def list_keys(store: Store) -> list[KeyInfo]:
    return [key_info(r) for r in store.read("SELECT * FROM api_keys ORDER BY id")]


def revoke_key(db: sqlite3.Connection, key_id: str, by: str = "cli") -> KeyInfo | None:
    """Revoke by key id (or numeric id), audited as done by `by`; None when there is no
    such key."""
    row = db.execute(
        "SELECT * FROM api_keys WHERE key_id = ? OR CAST(id AS TEXT) = ?", (key_id, key_id)
    ).fetchone()
    if row is None:
        return None
    if row["revoked_at"] is None:
        before = key_info(row)
        db.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ?", (now(), row["id"]))
        row = db.execute("SELECT * FROM api_keys WHERE id = ?", (row["id"],)).fetchone()
        _audit_key(db, by, "revoke", before, key_info(row))
    return key_info(row)


class Authenticator:
    """Turns a presented key into a Principal, or None."""

    def __init__(self, store: Store, bootstrap_key: str | None = None):
        self.store = store
        self.bootstrap_key = bootstrap_key
        self._used: dict[str, float] = {}  # key id -> when its last use was written

    def authenticate(self, presented: str | None) -> Principal | None:
        if not presented:
            return None
        if apikeys.is_bootstrap(presented, self.bootstrap_key):
            return Principal(BOOTSTRAP_KEY_ID, "admin")
        parts = apikeys.split(presented)
        if parts is None:
            return None
        rows = self.store.read(
            "SELECT * FROM api_keys WHERE key_id = ? AND revoked_at IS NULL", (parts[0],)
        )
        if not rows or not apikeys.matches(parts[1], rows[0]["salt"], rows[0]["hash"]):
            return None
        row = rows[0]
        self._note_use(row["key_id"])
        return Principal(row["key_id"], row["role"], row["network_id"], row["advertiser_id"])

    def _note_use(self, key_id: str) -> None:
        """Record a key's use, at most once a minute per key (not a write per call)."""
        moment = time.monotonic()
        if moment - self._used.get(key_id, -USE_EVERY_S) < USE_EVERY_S:
            return
        self._used[key_id] = moment
        with self.store.transaction() as db:
            db.execute("UPDATE api_keys SET last_used_at = ? WHERE key_id = ?", (now(), key_id))
