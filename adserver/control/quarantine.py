"""Quarantine: what the aggregator cannot count and what the pacer cannot pace is kept here,
whole, and skipped, so that one bad record or flight never stops anyone else's ledger or
pacing. Operators see it at `GET /v1/quarantine` (scoped like every read) and in the
control process's `adserver_quarantined_total` metric."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
from typing import Any

import msgspec

from adserver import clock
from adserver.control.store import Store

log = logging.getLogger("adserver.quarantine")


class Poison(Exception):
    """A record or flight that will not be processed: out of range or malformed."""


# Errors that say "this record" (or "this flight"), not "this machine": the aggregator
# replays a pass failing with one of them record by record to find and quarantine the
# record; the pacer quarantines the flight. Anything else (a locked database, a full disk)
# is retried as it is.
DATA_ERRORS = (Poison, KeyError, TypeError, ValueError, OverflowError, IndexError,
               AttributeError, ArithmeticError, sqlite3.IntegrityError, msgspec.MsgspecError)
COLUMNS = ("id", "key", "at", "source", "network_id", "reason", "record")


def stamp() -> str:
    return dt.datetime.fromtimestamp(clock.now(), dt.UTC).isoformat().replace("+00:00", "Z")


def add(db: Any, key: str, source: str, network_id: int | None, reason: str,
        record: str) -> bool:
    """Keep one item (once per key) in the open transaction `db`; True when it is new."""
    new = db.execute("INSERT OR IGNORE INTO quarantine (key, at, source, network_id, reason,"
                     " record) VALUES (?, ?, ?, ?, ?, ?)",
                     (key, stamp(), source, network_id, reason[:1000], record)).rowcount
    if new:
        log.error("quarantined %s (%s): %s", key, source, reason)
    return bool(new)


def flight(store: Store, flight_id: int, network_id: int | None, error: Exception) -> None:
    """A flight the pacer could not process (it is held back until it is fixed: the key
    names its id and last update, so a corrected flight is paced again)."""
    row = store.read("SELECT * FROM flights WHERE id = ?", (flight_id,))
    record = json.dumps(dict(row[0]), default=repr) if row else "{}"
    updated = row[0]["updated_at"] if row else ""
    with store.transaction() as db:
        add(db, f"flight:{flight_id}@{updated}", "pacing", network_id,
            f"{type(error).__name__}: {error}", record)


def listing(store: Store, network_id: int | None, limit: int, after: int) -> list[dict]:
    """Newest last, after id `after`; only `network_id`'s when given."""
    where, args = ["id > ?"], [after]
    if network_id is not None:
        where.append("network_id = ?")
        args.append(network_id)
    rows = store.read(f"SELECT {', '.join(COLUMNS)} FROM quarantine WHERE {' AND '.join(where)}"
                      " ORDER BY id LIMIT ?", (*args, limit))
    return [dict(zip(COLUMNS, r)) for r in rows]


def count(store: Store) -> int:
    return int(store.read("SELECT COUNT(*) FROM quarantine")[0][0])
