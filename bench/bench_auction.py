"""The auction stage's kernel: Numba against its Python twin.

    ./dev bench -k auction
"""

from __future__ import annotations

import numpy as np
import pytest

from adserver.kernels import auction, auction_ref


def _market(n: int) -> tuple:
    rng = np.random.default_rng(5)
    return (np.arange(n, dtype=np.int32), np.arange(n, dtype=np.int32),
            rng.choice([1, 2], n).astype(np.int8), rng.integers(100_000, 5_000_000, n),
            rng.uniform(0.001, 0.05, n), rng.uniform(0.0001, 0.005, n), 0.5, 0.1,
            rng.random(n), 4, True, np.zeros(0), rng.uniform(0.3, 1.0, n))  # with relevance


@pytest.mark.parametrize("impl", [auction, auction_ref], ids=["numba", "python"])
def test_auction(benchmark, impl) -> None:
    auction.warm()
    market = _market(500)
    benchmark.group = "auction: 500 candidates, 4 slots"
    winners = benchmark(impl.auction, *market)[0]
    assert len(winners) == 4
