"""Query embedding: the Numba kernel against its Python twin.

    ./dev bench -k embed

A model built from a 2,000-product seeded catalog (64 dimensions, 2^18 buckets); the
query is featurized the same way for both (words and character 3-grams), so the numbers
compare the arithmetic. `query` is the decision path's whole cost of embedding an uncached
search text (featurizing + kernel).
"""

from __future__ import annotations

import tempfile

import numpy as np
import pytest

from adserver.kernels import embed as kernel
from adserver.kernels import embed_ref as twin
from adserver.learn import embed
from adserver.training import embed_train

QUERY = "wireless noise cancelling headphones"


@pytest.fixture(scope="module")
def model() -> embed.Model:
    rng = np.random.default_rng(1)
    words = [
        "coffee",
        "bean",
        "ground",
        "wireless",
        "headphones",
        "earbuds",
        "dog",
        "food",
        "puppy",
        "yoga",
        "mat",
        "block",
        "tea",
        "green",
        "organic",
        "large",
        "pack",
    ]
    texts = [" ".join(rng.choice(words, 5)) for _ in range(2000)]
    data = tempfile.mkdtemp()
    return embed.load(data, embed_train.build(data, texts, dim=64))


@pytest.mark.parametrize("impl", [kernel, twin], ids=["numba", "python"])
def test_embed_kernel(benchmark, impl, model: embed.Model) -> None:
    ids, kinds = model.features(QUERY)
    out = np.empty(model.dim)
    benchmark.group = f"embed: one query ({len(ids)} features) x 64 dims"
    assert benchmark(impl.embed, ids, kinds, model.idf, model.matrix, out) > 0


def test_embed_query_uncached(benchmark, model: embed.Model) -> None:
    benchmark.group = "embed: one query, featurize + kernel"
    benchmark(model._embed, QUERY)


@pytest.mark.parametrize("impl", ["cython", "python"])
def test_relevance_gate(benchmark, impl) -> None:
    from adserver import _sponsored
    from adserver.kernels import sponsored_ref

    rng = np.random.default_rng(2)
    n, ads = 300, 100_000
    vectors = rng.standard_normal((50_000, 64)).astype(np.float32)
    args = (
        rng.integers(0, ads, n).astype(np.int32),
        60,
        90,
        np.ones(ads, dtype=np.int64),
        rng.integers(0, 50_000, ads),
        np.zeros(ads, dtype=np.int16),
        rng.integers(0, 100, ads).astype(np.int32),
        np.full(100, 2, dtype=np.int8),
        np.full(100, 500_000),
        np.full(ads, 0.01),
        np.full(ads, 0.001),
        np.array([1]),
        vectors,
        np.ones(50_000, dtype=np.int8),
        vectors[0],
        0.9,
        True,
        np.zeros(0, dtype=np.int64),
        np.zeros(0),
        False,
        -1,
        0.3,
        0.1,
        1.0,
        np.empty(n, dtype=np.int32),
        np.empty(n),
        np.empty(n, dtype=np.int8),
        np.empty(n),
    )
    benchmark.group = "relevance gate: 300 candidates x 64 dims"
    if impl == "python":
        benchmark(sponsored_ref.gate, *args)
        return
    names = (
        "ad_type",
        "ad_product",
        "ad_relevancy",
        "ad_flight",
        "fl_rate",
        "fl_price",
        "ad_prior_ctr",
        "ad_prior_cvr",
    )
    gate = _sponsored.from_columns(dict(zip(names, args[3:11])), vectors, args[13])
    benchmark(gate.run, *args[:3], *args[11:12], *args[14:])  # the columns bound once
