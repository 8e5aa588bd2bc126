"""Each kernel against its Python twin, side by side in one run.

    ./dev bench -k kernels
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from adserver import _hashing, _targeting
from adserver.kernels import auction, auction_ref, hashing_ref, targeting_ref
from adserver.snapshot.programs import Properties
from adserver.snapshot.query import Query, phrases

WORDS = [f"product-{i}" for i in range(1000)]


@pytest.mark.parametrize("impl", [_hashing, hashing_ref], ids=["cython", "python"])
def test_hashing(benchmark, impl) -> None:
    benchmark.group = "hashing: 1000 ids"
    out = benchmark(impl.hash_strs, WORDS, 0)
    assert len(out) == 1000


def _market(n: int) -> tuple:
    rng = np.random.default_rng(5)
    return (np.arange(n, dtype=np.int32), np.arange(n, dtype=np.int32),
            rng.choice([1, 2], n).astype(np.int8), rng.integers(100_000, 5_000_000, n),
            rng.uniform(0.001, 0.05, n), rng.uniform(0.0001, 0.005, n), 0.5, 0.1,
            rng.random(n), 4, True)


@pytest.mark.parametrize("impl", [auction, auction_ref], ids=["numba", "python"])
def test_auction(benchmark, impl) -> None:
    auction.warm()
    market = _market(500)
    benchmark.group = "auction: 500 candidates, 4 slots"
    winners = benchmark(impl.auction, *market)[0]
    assert len(winners) == 4


@pytest.mark.parametrize("impl", [_targeting, targeting_ref], ids=["cython", "python"])
def test_targeting(benchmark, demo, impl) -> None:
    snap, _ = demo
    kernel = impl.Targeting(snap.columns, snap.meta["strings"])
    rows = np.arange(len(snap.columns["ad_id"]), dtype=np.int32)
    ptr, tok = phrases("organic coffee beans", ["coffee"])
    q = Query(now=int(time.time()), hour_of_week=40, site_id=1,
              zone_ids=np.array([11], dtype=np.int64), phrase_ptr=ptr, phrase_tok=tok,
              props=Properties({"page_type": "search", "device": "mobile"}))
    benchmark.group = f"targeting filter: all {len(rows)} demo ads"
    passing, _ = benchmark(kernel.filter, rows, q, np.zeros(0, np.int8), False)
    assert len(passing) > 0


def test_token_signing(benchmark, tmp_path) -> None:
    """Signing one tracking token (stdlib HMAC-SHA256 over a msgpack payload): no compiled
    twin, it is C already; the figure is what each decision pays per winner."""
    from adserver.signing import Signer, ensure_keys

    signer = Signer(ensure_keys(str(tmp_path)))
    fields = ["0123456789abcdef0123456789abcdef", 123, 45, 678, 9, 10, "div0", 3_010_000, 1,
              "u0000042", 0, 1, 11, 1, "https://shop.example/brands/acme", [40]]
    benchmark.group = "token signing"
    token = benchmark(signer.sign, 1, fields)
    assert signer.verify(token)[0] == "ok"
