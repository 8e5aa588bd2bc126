"""Writing, publishing, pruning and loading snapshot versions."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from adserver.control import compiler
from adserver.control.seed import Scale, seed
from adserver.control.store import Store
from adserver.snapshot import writer
from adserver.snapshot.loader import Snapshot, SnapshotError, load_current


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(str(tmp_path))
    seed(s, Scale(ads=60, products=100, users=10), progress=False)
    return s


def test_publish_moves_current_and_versions_increase(store: Store, tmp_path: Path) -> None:
    assert load_current(str(tmp_path)) is None
    v1 = compiler.compile_snapshot(store, str(tmp_path))
    v2 = compiler.compile_snapshot(store, str(tmp_path))
    assert int(v2) == int(v1) + 1
    assert writer.current_version(str(tmp_path)) == v2
    snap = load_current(str(tmp_path))
    assert snap is not None and snap.version == v2
    assert snap.manifest["counts"]["ads"] == len(snap.columns["ad_id"]) > 0
    assert not [n for n in os.listdir(tmp_path / "snapshots") if n.startswith(".tmp")]


def test_only_eligible_ads_are_compiled(store: Store, tmp_path: Path) -> None:
    ineligible = {r[0] for r in store.read(
        "SELECT a.id FROM ads a JOIN creatives c ON c.id = a.creative_id"
        " WHERE c.status != 'approved'")}
    assert ineligible
    compiler.compile_snapshot(store, str(tmp_path))
    snap = load_current(str(tmp_path))
    assert snap is not None
    assert not ineligible & set(snap.columns["ad_id"].tolist())


def test_prune_keeps_the_newest(store: Store, tmp_path: Path) -> None:
    versions = [compiler.compile_snapshot(store, str(tmp_path)) for _ in range(5)]
    removed = writer.prune(str(tmp_path), keep=3, min_age_s=0)
    assert removed == versions[:2]
    left = sorted(n for n in os.listdir(tmp_path / "snapshots") if n.isdigit())
    assert left == versions[2:]


def test_damaged_version_is_refused(store: Store, tmp_path: Path) -> None:
    v = compiler.compile_snapshot(store, str(tmp_path))
    path = tmp_path / "snapshots" / v / "fl_price.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(SnapshotError, match="fl_price.npy"):
        Snapshot(str(tmp_path), v)
    (tmp_path / "snapshots" / v / "ad_id.npy").unlink()
    with pytest.raises(SnapshotError):
        Snapshot(str(tmp_path), v)
