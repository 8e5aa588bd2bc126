"""The demo network generator."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgspec
import pytest

from adserver.common.validation import convert
from adserver.control.schema import SPECS, entity_of, from_row
from adserver.control.seed import Scale, SeedError, seed
from adserver.control.store import Store

SMALL = Scale(ads=300, products=500, users=200, seed=3)


def dump(path: Path) -> list[str]:
    skip = ("created_at", "updated_at", "at")
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    out = []
    for table in [*SPECS, "products", "users"]:
        for row in db.execute(f"SELECT * FROM {table} ORDER BY 1, 2"):
            out.append(repr({k: row[k] for k in row.keys() if k not in skip}))
    return out


def test_same_seed_same_network(tmp_path: Path) -> None:
    for name in ("a", "b"):
        seed(Store(str(tmp_path / name)), SMALL, progress=False)
    assert dump(tmp_path / "a/control.sqlite3") == dump(tmp_path / "b/control.sqlite3")
    seed(
        Store(str(tmp_path / "c")), Scale(ads=300, products=500, users=200, seed=4), progress=False
    )
    assert dump(tmp_path / "a/control.sqlite3") != dump(tmp_path / "c/control.sqlite3")


def test_counts_and_shape(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    counts = seed(store, SMALL, progress=False)
    assert counts["ads"] == 300 and counts["products"] == 500 and counts["users"] == 200
    assert counts["flights"] == SMALL.flights and counts["advertisers"] == SMALL.advertisers
    pages = {r[0] for r in store.read("SELECT page_type FROM zones")}
    assert pages == {"home", "search", "category", "product", "cart"}
    assert {r[0] for r in store.read("SELECT platform FROM sites")} == {"web", "ios", "android"}
    formats = {r[0] for r in store.read("SELECT format FROM ad_types")}
    assert {"sponsored_product", "display", "native"} <= formats
    rates = {r[0] for r in store.read("SELECT rate_type FROM flights")}
    assert {"cpc", "cpm"} <= rates
    assert store.read("SELECT COUNT(*) FROM flights WHERE keywords != '[]'")[0][0] > 0
    assert store.read("SELECT COUNT(*) FROM flights WHERE custom_targeting IS NOT NULL")[0][0] > 0


def test_every_seeded_entity_passes_api_validation(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    seed(store, SMALL, progress=False)
    for spec in SPECS.values():
        for row in store.read(f"SELECT * FROM {spec.name}"):
            entity = entity_of(spec, from_row(spec, row))
            assert convert(spec.struct, msgspec.to_builtins(entity)) == entity


def test_refuses_a_non_empty_store(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    seed(store, SMALL, progress=False)
    with pytest.raises(SeedError):
        seed(store, SMALL, progress=False)
