"""Writing, publishing, pruning and loading snapshot versions."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from adserver.control import compiler
from adserver.control.seed import Scale, seed
from adserver.control.store import Store
from adserver.serving.bound import BoundSnapshot, load_current
from adserver.snapshot import writer
from adserver.snapshot.loader import Snapshot, SnapshotError


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
    ineligible = {
        r[0]
        for r in store.read(
            "SELECT a.id FROM ads a JOIN creatives c ON c.id = a.creative_id"
            " WHERE c.status != 'approved'"
        )
    }
    assert ineligible
    compiler.compile_snapshot(store, str(tmp_path))
    snap = load_current(str(tmp_path))
    assert snap is not None
    assert not ineligible & set(snap.columns["ad_id"].tolist())


def test_prune_keeps_the_newest(store: Store, tmp_path: Path) -> None:
    versions = [compiler.compile_snapshot(store, str(tmp_path)) for _ in range(5)]
    removed = writer.prune(str(tmp_path), keep=3, min_age_s=0)
    # each compile prunes too, versions older than 30 s by the clock against the files' times:
    # on a machine whose clock and file times disagree, they went then
    assert set(removed) <= set(versions[:2])
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


@pytest.mark.parametrize(
    "column,value,message",
    [
        ("ad_flight", 10**6, "ad_flight: row 0 names flight 1000000"),
        ("fl_priority", 99, "fl_priority: flight row 0 names priority 99"),
    ],
)
def test_inconsistent_columns_are_refused_at_load(
    store: Store, tmp_path: Path, column: str, value: int, message: str
) -> None:
    """Columns whose checksums match but whose rows point nowhere (a compiler bug, a
    hand-edited file) are refused when the kernels bind them, not read out of bounds in a
    request."""
    import json

    import numpy as np

    from adserver.formats.versions import sha256_file

    v = compiler.compile_snapshot(store, str(tmp_path))
    folder = tmp_path / "snapshots" / v
    values = np.load(folder / f"{column}.npy")
    values[0] = value
    np.save(folder / f"{column}.npy", values)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["checksums"][f"{column}.npy"] = sha256_file(str(folder / f"{column}.npy"))
    (folder / "manifest.json").write_text(json.dumps(manifest))
    Snapshot(str(tmp_path), v)  # the format alone reads it: only binding the kernels refuses
    with pytest.raises(SnapshotError, match=message):
        BoundSnapshot(str(tmp_path), v)


def test_a_snapshot_used_for_decisions_is_freed_without_the_cycle_collector(
    store: Store, tmp_path: Path
) -> None:
    """Workers freeze what they loaded at start out of the cycle collector's full passes; a
    snapshot swapped out later must then be freed by reference counting alone: after
    decisions of every kind (sponsored with a query, display, explain) filled its caches,
    it holds no reference cycle."""
    import gc
    import json
    import time
    import weakref

    import numpy as np

    from adserver.control import catalog
    from adserver.formats.signing import Signer, ensure_keys
    from adserver.serving import pipeline
    from adserver.serving.stages.score import NO_MODELS
    from adserver.wire import kevel

    data = str(tmp_path)
    model = catalog.ensure_model(store, data)
    assert model is not None
    catalog.build(
        store, data, model, compiler.sponsored(compiler.read_inputs(store)), None, progress=False
    )
    compiler.compile_snapshot(store, data)
    snap = load_current(data)
    assert snap is not None and snap.products is not None
    signer = Signer(ensure_keys(data))
    bodies = [
        {
            "placements": [
                {
                    "divName": "s",
                    "networkId": 1,
                    "siteId": 1,
                    "adTypes": [1],
                    "count": 4,
                    "properties": {"page_type": "search"},
                }
            ],
            "user": {"key": "u1"},
            "searchTerm": "coffee beans",
            "includePricingData": True,
        },
        {"placements": [{"divName": "b", "networkId": 1, "siteId": 1, "adTypes": [2, 3]}]},
    ]
    filled = 0
    for explain in (False, True):
        for body in bodies:
            b = pipeline.Bundle(
                snap, NO_MODELS, signer, pipeline.Settings(), np.random.default_rng(1)
            )
            ctx = pipeline.Facts(time.time(), "http://t", explain)
            response, _ = pipeline.decide(b, kevel.decoder.decode(json.dumps(body)), ctx)
            filled += sum(1 for d in response.decisions.values() if d)
    assert filled >= 2 and snap._ads  # its caches hold something
    ref = weakref.ref(snap)
    gc.disable()
    try:
        del snap, b, ctx, response
        assert ref() is None
    finally:
        gc.enable()


def test_a_pointer_can_be_published_before_its_directory_exists(tmp_path: Path) -> None:
    """Pointing a model kind at nothing (or at a version) works on a fresh data directory."""
    from adserver.formats import versions

    root = str(tmp_path / "models" / "ctr")
    versions.publish(root, "")
    assert versions.current(root) is None
    versions.publish(root, "00000003")
    assert versions.current(root) == "00000003"
