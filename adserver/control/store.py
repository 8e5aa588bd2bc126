"""The control store: SQLite in WAL mode, numbered migrations, one transaction per change.

The control process is the store's writer. Connections are opened here only; `transaction()`
wraps a unit of work in BEGIN IMMEDIATE ... COMMIT so a request never leaves a partial write.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
import threading
from collections.abc import Iterator
from importlib import resources

FILENAME = "control.sqlite3"


def now() -> str:
    """The current time as stored: RFC 3339 in UTC with microseconds."""
    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")


def migrations() -> list[tuple[int, str, str]]:
    """(number, name, sql) of every migration shipped with the package, in order."""
    found = []
    for entry in resources.files("adserver.control.migrations").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), name, entry.read_text("utf-8")))
    return sorted(found)


class Store:
    """One SQLite connection shared by the control process's threads behind a lock."""

    def __init__(self, data_dir: str):
        os.makedirs(data_dir, exist_ok=True)
        self.path = os.path.join(data_dir, FILENAME)
        self.conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30
        )
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")  # money lives here: fsync every commit
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.lock = threading.RLock()
        self.migrate()

    def migrate(self) -> list[str]:
        """Apply the migrations not applied yet, each in its own transaction."""
        applied = []
        with self.transaction() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations"
                " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            done = {r[0] for r in db.execute("SELECT version FROM schema_migrations")}
        for number, name, sql in migrations():
            if number in done:
                continue
            with self.transaction() as db:
                for statement in _statements(sql):
                    db.execute(statement)
                db.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", (number, name, now()))
            applied.append(name)
        return applied

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE; commit on success, roll back on any exception."""
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def read(self, sql: str, params: tuple | list = ()) -> list[sqlite3.Row]:
        with self.lock:
            return self.conn.execute(sql, params).fetchall()

    def close(self) -> None:
        with self.lock:
            self.conn.close()


def _statements(sql: str) -> Iterator[str]:
    """Split a migration into statements (executescript would commit our transaction)."""
    buf = ""
    for line in sql.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        buf += line
        if sqlite3.complete_statement(buf):
            yield buf.strip()
            buf = ""
    if buf.strip():
        yield buf.strip()
