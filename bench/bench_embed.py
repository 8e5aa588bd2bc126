"""Query embedding and relevance scoring: the Numba kernels against their Python twins.

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
from adserver.learn import embed, embed_train

QUERY = "wireless noise cancelling headphones"


@pytest.fixture(scope="module")
def model() -> embed.Model:
    rng = np.random.default_rng(1)
    words = ["coffee", "bean", "ground", "wireless", "headphones", "earbuds", "dog", "food",
             "puppy", "yoga", "mat", "block", "tea", "green", "organic", "large", "pack"]
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


@pytest.mark.parametrize("impl", [kernel, twin], ids=["numba", "python"])
def test_relevance_dot(benchmark, impl) -> None:
    rng = np.random.default_rng(2)
    vectors = rng.standard_normal((100_000, 64)).astype(np.float32)
    query = vectors[0]
    rows = rng.integers(0, 100_000, 200)
    out = np.empty(200)
    benchmark.group = "relevance: 200 candidates x 64 dims"
    benchmark(impl.dot_rows, query, vectors, rows, out)
