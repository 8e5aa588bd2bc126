"""The worker's bulk histogram update equals observing each value."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from adserver.serving.metrics import LATENCY_BUCKETS, observe_many


def test_observe_many_equals_one_by_one() -> None:
    rng = np.random.default_rng(4)
    # on the bucket bounds themselves (le: less than or equal), between, and past the last
    values = [*LATENCY_BUCKETS, *rng.exponential(0.002, 500).tolist(), 0.0, 7.5]
    texts = []
    for bulk in (True, False):
        registry = CollectorRegistry()
        h = Histogram("t_seconds", "t", buckets=LATENCY_BUCKETS, registry=registry)
        if bulk:
            observe_many(h, values[:300])
            observe_many(h, [])
            observe_many(h, values[300:])
        else:
            for v in values:
                h.observe(v)
        texts.append(
            [
                line
                for line in generate_latest(registry).decode().splitlines()
                if line.startswith("t_seconds") and "_created" not in line
            ]
        )
    sums = [float(next(x for x in t if x.startswith("t_seconds_sum")).split()[1]) for t in texts]
    assert sums[0] == pytest.approx(sums[1], rel=1e-12)  # the same sum, added in another order
    assert [x for x in texts[0] if "_sum" not in x] == [x for x in texts[1] if "_sum" not in x]
    assert any('le="0.0001"' in line and not line.endswith(" 0.0") for line in texts[0])
