"""The eligibility stage's kernel: the Cython candidate filter against its Python twin.

./dev bench -k targeting
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from adserver import _targeting
from adserver.kernels import targeting_ref
from adserver.snapshot.programs import Properties
from adserver.snapshot.query import Query, phrases


@pytest.mark.parametrize("impl", [_targeting, targeting_ref], ids=["cython", "python"])
def test_targeting(benchmark, demo, impl) -> None:
    snap, _ = demo
    kernel = impl.Targeting(snap.columns, snap.meta["strings"])
    rows = np.arange(len(snap.columns["ad_id"]), dtype=np.int32)
    ptr, tok, _ = phrases("organic coffee beans", ["coffee"])
    q = Query(
        now=int(time.time()),
        hour_of_week=40,
        site_id=1,
        zone_ids=np.array([11], dtype=np.int64),
        phrase_ptr=ptr,
        phrase_tok=tok,
        props=Properties({"page_type": "search", "device": "mobile"}),
    )
    benchmark.group = f"targeting filter: all {len(rows)} demo ads"
    passing, _ = benchmark(kernel.filter, rows, q, np.zeros(0, np.int8), False)
    assert len(passing) > 0
