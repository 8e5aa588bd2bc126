"""The auction stage's kernel: the Cython waterfall (bound to its columns once, as the
server binds it per snapshot) against its Python twin, on one auction priority.

    ./dev bench -k auction
"""

from __future__ import annotations

import numpy as np
import pytest

from adserver import _auction
from adserver.kernels import auction_ref


def _market(n: int) -> tuple[dict[str, np.ndarray], tuple]:
    """500 candidates of one auction priority with second pricing, CPM and CPC, relevance
    boosts: (columns, the run's arguments)."""
    rng = np.random.default_rng(5)
    columns = {
        "ad_flight": np.arange(n, dtype=np.int32),
        "fl_priority": np.zeros(n, dtype=np.int32),
        "fl_rate": rng.choice([1, 2], n).astype(np.int8),
        "fl_price": rng.integers(100_000, 5_000_000, n),
        "ad_prior_ctr": rng.uniform(0.001, 0.05, n),
        "ad_prior_cvr": rng.uniform(0.0001, 0.005, n),
        "ad_weight": np.ones(n, dtype=np.int32),
    }
    args = (
        np.arange(n, dtype=np.int32),
        0.5,
        0.1,
        rng.random(n + 4),
        4,
        np.zeros((3, 0)),
        np.zeros(0),
        rng.uniform(0.3, 1.0, n),
        np.zeros(0),
        np.zeros(0),
    )
    return columns, args


@pytest.mark.parametrize("impl", ["cython", "python"])
def test_auction(benchmark, impl) -> None:
    columns, args = _market(500)
    prios = (
        np.zeros(1, dtype=np.int32),
        np.ones(1, dtype=np.int8),
        np.ones(1, dtype=np.int8),
        np.zeros(1),
        np.zeros(1),
    )
    waterfall = (
        _auction.from_columns(columns, *prios)
        if impl == "cython"
        else auction_ref.Waterfall(columns, *prios)
    )
    benchmark.group = "auction: 500 candidates, 4 slots"
    won, _ = benchmark(waterfall.run, *args)
    assert len(won) == 4
