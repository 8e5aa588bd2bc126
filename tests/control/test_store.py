"""The control store's migrations and its mapping onto the entity Structs."""

from __future__ import annotations

from pathlib import Path

from adserver.control.schema import READ_ONLY, SPECS
from adserver.control.store import Store, migrations


def test_migrations_apply_once(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    versions = [r[0] for r in store.read("SELECT version FROM schema_migrations")]
    assert versions == [m[0] for m in migrations()]
    assert store.migrate() == []
    store.close()
    again = Store(str(tmp_path))
    assert again.read("PRAGMA journal_mode")[0][0] == "wal"
    again.close()


def test_tables_match_entity_structs(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    for spec in SPECS.values():
        table = {r["name"] for r in store.read(f"PRAGMA table_info({spec.name})")}
        wanted = {c.column for c in spec.columns} | set(READ_ONLY)
        scope = {"network_id"} if spec.name != "networks" else set()
        if spec.demand:
            scope.add("advertiser_id")
        assert table == wanted | scope, spec.name


def test_money_columns_are_integers(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    for spec in SPECS.values():
        types = {r["name"]: r["type"] for r in store.read(f"PRAGMA table_info({spec.name})")}
        for c in spec.columns:
            if c.kind == "money":
                assert types[c.column] == "INTEGER", (spec.name, c.column)


def test_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    try:
        with store.transaction() as db:
            db.execute(
                "INSERT INTO networks (name, time_zone, created_at, updated_at)"
                " VALUES ('n', 'UTC', 'x', 'x')"
            )
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert store.read("SELECT COUNT(*) FROM networks")[0][0] == 0
