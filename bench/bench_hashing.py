"""Stable id hashing: the Cython module against its Python twin.

./dev bench -k hashing
"""

from __future__ import annotations

import pytest

from adserver import _hashing
from adserver.kernels import hashing_ref

WORDS = [f"product-{i}" for i in range(1000)]


@pytest.mark.parametrize("impl", [_hashing, hashing_ref], ids=["cython", "python"])
def test_hashing(benchmark, impl) -> None:
    benchmark.group = "hashing: 1000 ids"
    out = benchmark(impl.hash_strs, WORDS, 0)
    assert len(out) == 1000


QUERY_WORDS = ["acme", "wireless", "noise", "cancelling", "headphone", "black"]


@pytest.mark.parametrize("impl", [_hashing, hashing_ref], ids=["cython", "python"])
def test_text_features(benchmark, impl) -> None:
    # a search's words -> the hashed embedding model's feature ids (words and 3-grams)
    benchmark.group = "text features: 6 words (6 word + 41 gram ids)"
    ids, _ = benchmark(impl.text_features, QUERY_WORDS, 1 << 18, 1.0, 0.5, 1, 2, 3)
    assert len(ids) == 47
