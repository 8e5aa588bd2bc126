"""The product index: HNSW recall against brute force, reuse between versions, embedding
models dropped into the inbox, and vector dimensions checked where they are written."""

from __future__ import annotations

import os

import numpy as np
import pytest

from adserver.common.validation import Invalid
from adserver.control import catalog
from adserver.control.auth import Principal
from adserver.control.products import Catalog
from adserver.control.store import Store
from adserver.learn import embed
from adserver.snapshot import products as px
from tests.learn.test_embed import write_static

ADMIN = Principal(key_id="test", role="admin")
DIM = 32


def clustered(n: int, clusters: int, seed: int = 0) -> np.ndarray:
    """Unit vectors around `clusters` centres (real embeddings are clustered, not uniform)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, DIM))
    v = centres[rng.integers(0, clusters, n)] + 0.35 * rng.standard_normal((n, DIM))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def world(tmp_path: str, vectors: np.ndarray) -> tuple[Store, str, embed.Model]:
    data = str(tmp_path)
    store = Store(data)
    with store.transaction() as db:
        db.execute(
            "INSERT INTO networks (id, name, time_zone, archived, created_at,"
            " updated_at) VALUES (1, 'n', 'UTC', 0, 'x', 'x')"
        )
    items = [
        {
            "id": f"P{i:06d}",
            "title": f"product {i}",
            "price": 1,
            "category": ["Shop", f"C{i % 7}"],
            "vector": v.tolist(),
        }
        for i, v in enumerate(vectors)
    ]
    cat = Catalog(store)
    for start in range(0, len(items), 1000):
        assert not cat.batch(ADMIN, 1, items[start : start + 1000], []).rejected
    src = write_static(os.path.join(data, "src"), ["word"], np.ones((1, DIM), np.float32))
    m, w, v = embed.read_static(src)
    embed.publish(data, embed.write(data, "static", m, w, {}, v))
    return store, data, catalog.ensure_model(store, data)  # type: ignore[return-value]


def test_hnsw_recall_at_10_against_brute_force(tmp_path: str) -> None:
    both = clustered(20300, 40)
    vectors, queries = both[:20000], both[20000:]  # queries from the same clusters
    store, data, model = world(tmp_path, vectors)
    sponsored = {1: {f"P{i:06d}" for i in range(0, 20000, 2)}}  # half the catalog has ads
    version = catalog.build(store, data, model, sponsored)
    index = px.ProductIndex(data, version)
    assert len(index) == 20000 and index.manifest["graphs"]["1"]["count"] == 10000
    spons_rows = np.array(sorted(index.row(1, pid) for pid in sponsored[1]))
    hits = narrow = 0
    for q in queries:
        rows, sims = index.search(1, q, 10)
        exact = spons_rows[np.argsort(-(index.vectors[spons_rows] @ q))[:10]]
        hits += len(set(rows.tolist()) & set(exact.tolist()))
        assert sims.tolist() == sorted(sims.tolist(), reverse=True)
        assert sims == pytest.approx(index.vectors[rows] @ q, abs=1e-4)
        # ADSERVER_HNSW_EF: a search never narrower than k; a narrow one finds less
        narrow += len(set(index.search(1, q, 10, ef=1)[0].tolist()) & set(exact.tolist()))
        assert index.graphs[1].ef == 10
    recall = hits / (10 * len(queries))
    assert recall >= 0.95, recall
    assert narrow < hits
    # every result is a sponsored product of the network
    assert set(index.search(1, queries[0], 50)[0].tolist()) <= set(spons_rows.tolist())
    assert index.search(2, queries[0], 10)[0].shape == (0,)
    p = index.product(index.row(1, "P000007"))
    assert p["id"] == "P000007" and p["category"] == ["Shop", "C0"] and p["price"] == 1.0


def test_unchanged_work_is_reused(tmp_path: str) -> None:
    store, data, model = world(tmp_path, clustered(500, 5))
    sponsored = {1: {"P000001", "P000002", "P000003"}}
    first = px.ProductIndex(data, catalog.build(store, data, model, sponsored))
    assert first.manifest["reused_vectors"] == 0
    Catalog(store).put(ADMIN, 1, "P000001", {"title": "renamed", "price": 2, "vector": [1.0] * DIM})
    second = px.ProductIndex(data, catalog.build(store, data, model, sponsored, first))
    assert second.manifest["reused_vectors"] == 499
    assert second.vectors[second.row(1, "P000001")] == pytest.approx(
        np.full(DIM, 1 / np.sqrt(DIM)), rel=1e-6
    )
    assert second.manifest["graphs"]["1"]["digest"] != first.manifest["graphs"]["1"]["digest"]
    third = px.ProductIndex(data, catalog.build(store, data, model, sponsored, second))
    same = os.stat(os.path.join(third.path, "hnsw-1.bin")).st_ino
    assert same == os.stat(os.path.join(second.path, "hnsw-1.bin")).st_ino  # hard link
    assert px.current(data) == third.version


def test_inbox_models_are_checked_against_catalog_vectors(tmp_path: str) -> None:
    store, data, model = world(tmp_path, clustered(50, 2))
    inbox = catalog.inbox_dir(data)
    write_static(os.path.join(inbox, "a-wrong-dim"), ["mug", "cup"], np.ones((2, 16), np.float32))
    write_static(os.path.join(inbox, "b-good"), ["mug", "cup"], np.eye(2, DIM, dtype=np.float32))
    before = embed.current(data)
    published = catalog.take_inbox(store, data)
    with open(os.path.join(inbox, "a-wrong-dim", "REJECTED.txt")) as src:
        assert "dimension 16 but catalog products carry vectors of dimension 32" in src.read()
    assert published is not None and published != before and embed.current(data) == published
    assert not os.path.exists(os.path.join(inbox, "b-good"))
    assert catalog.take_inbox(store, data) is None  # the refused one is not retried


def test_product_vectors_must_match_the_model(tmp_path: str) -> None:
    store, data, model = world(tmp_path, clustered(3, 1))
    cat = Catalog(store, lambda network_id: model.dim)
    with pytest.raises(Invalid) as e:
        cat.put(ADMIN, 1, "X", {"title": "x", "price": 1, "vector": [1.0, 2.0]})
    assert e.value.errors[0].message == "has 2 components; the embedding model has 32"
    result = cat.batch(ADMIN, 1, [{"id": "Y", "title": "y", "price": 1, "vector": [1.0] * 3}], [])
    assert result.upserted == 0 and result.rejected[0].fields[0].field == "vector"


def test_nearest_remembers_searches_per_context(tmp_path: str) -> None:
    # the index outlives the snapshots that name it: what a search found is kept under what
    # the vector came from, so a new snapshot over the same index does not search again
    both = clustered(600, 6, seed=3)
    store, data, model = world(tmp_path, both[:500])
    index = px.ProductIndex(
        data, catalog.build(store, data, model, {1: {f"P{i:06d}" for i in range(0, 500, 3)}})
    )
    q, other = both[500], both[501]
    start = px.searches_run()
    rows, sims = index.nearest(1, q, 10, 64, ("q", "running shoes"))
    assert px.searches_run() == start + 1
    again = index.nearest(1, q, 10, 64, ("q", "running shoes"))
    assert px.searches_run() == start + 1 and again[0] is rows and again[1] is sims
    assert np.array_equal(rows, index.search(1, q, 10, 64)[0])
    start = px.searches_run()
    # another context, k or ef is another search; no key: never remembered
    index.nearest(1, other, 10, 64, ("q", "trail shoes"))
    index.nearest(1, q, 5, 64, ("q", "running shoes"))
    index.nearest(1, q, 10, 128, ("q", "running shoes"))
    index.nearest(1, q, 10, 64, None)
    index.nearest(1, q, 10, 64, None)
    assert px.searches_run() == start + 5
    index.nearest(2, q, 10, 64, ("q", "running shoes"))  # no graph there: nothing searched
    assert px.searches_run() == start + 5
    px.NEAREST_CACHE, saved = 3, px.NEAREST_CACHE
    try:  # bounded: full, it starts over
        index.nearest(1, other, 10, 64, ("q", "x"))
        assert len(index._nearest) == 1
    finally:
        px.NEAREST_CACHE = saved


def test_the_model_is_trained_again_when_the_catalog_outgrows_it(tmp_path: str) -> None:
    from tests.serving.shop import BRANDS, KINDS

    data = str(tmp_path)
    store = Store(data)
    with store.transaction() as db:
        db.execute(
            "INSERT INTO networks (id, name, time_zone, archived, created_at,"
            " updated_at) VALUES (1, 'n', 'UTC', 0, 'x', 'x')"
        )
    cat = Catalog(store)
    first = {
        "id": "C-1",
        "title": "Acme Whole Bean Coffee",
        "price": 9,
        "category": ["Grocery", "Coffee"],
    }
    assert not cat.batch(ADMIN, 1, [first], []).rejected
    builder = catalog.CatalogBuilder(store, data, lambda: None, rebuild_every_s=0)
    builder.want({1: {"C-1"}})
    assert builder.step() is not None
    small = builder.status["model"]
    assert small["kind"] == "hashed" and small["trained_on"] == 1 and small["dim"] == 8
    # 300 products of four kinds arrive: the one-product model knows none of their words
    items = [
        {
            "id": f"{kind[:3]}-{i}",
            "title": f"{brand} {name} {size}",
            "brand": brand,
            "price": 5,
            "category": path,
        }
        for kind, (path, names) in KINDS.items()
        for i, (name, brand, size) in enumerate(
            (n, b, s) for n in names for b in BRANDS for s in ("S", "M", "L")
        )
    ][:300]
    assert not cat.batch(ADMIN, 1, items, []).rejected
    builder.want({1: {"C-1", "Hea-0", "Dog-0", "Yog-0"}})
    assert builder.step() is not None
    grown = builder.status["model"]
    assert grown["version"] != small["version"] and grown["trained_on"] == 301
    assert grown["reason"] == "the catalog grew from 1 to 301 products" and grown["dim"] > 8
    index = px.load_current(data)
    assert index.manifest["graphs"]["1"]["count"] == 4  # every sponsored product embedded
    model = embed.load(data, grown["version"])
    for query, pid in [("wireless headphones", "Hea-0"), ("dog food", "Dog-0")]:
        rows, _ = index.search(1, model.query(query)[0], 1)
        assert index.product(int(rows[0]))["id"] == pid, query
    # one product whose words are new: vocabulary drift, trained again, and it then
    # matches its own title well
    newco = {
        "id": "N-1",
        "title": "Newco Espresso Beans, 1 kg",
        "brand": "Newco",
        "price": 20,
        "category": ["Grocery", "Coffee"],
    }
    before = embed.load(data, grown["version"])
    vec, conf = before.query(newco["title"])
    own = before.embed(catalog._text({**newco, "category": "Grocery > Coffee"}))
    assert cat.batch(ADMIN, 1, [newco], []).upserted == 1
    assert builder.step() is not None
    drift = builder.status["model"]
    assert "poorly represented" in drift["reason"] and "Newco" in drift["reason"]
    after = embed.load(data, drift["version"])
    index = px.load_current(data)
    vec2, conf2 = after.query(newco["title"])
    score = float(index.vectors[index.row(1, "N-1")] @ vec2) * conf2
    assert score > 0.6 and score > float(own @ vec) * conf  # type: ignore[operator]
    # nothing changed: no check, no build; old model versions are pruned to what is kept
    assert builder.step() is None
    assert len(os.listdir(embed.models_dir(data))) <= catalog.KEEP_MODELS + 2  # + CURRENT
