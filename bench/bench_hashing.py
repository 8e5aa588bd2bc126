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
