"""The decision pipeline on the demo network: compiled kernels vs their Python twins.

    ./dev bench -k pipeline

Each benchmark decides the same 200 storefront requests (two placements each: a display
banner and four sponsored-product slots).
"""

from __future__ import annotations

import time

import msgspec
import numpy as np
import pytest

from adserver.kernels import auction_ref, targeting_ref
from adserver.serving import pipeline
from adserver.serving.stages.score import NO_MODELS
from adserver.wire import kevel
from bench.conftest import requests

NOW = time.time()
REQUESTS = [msgspec.convert(r, kevel.DecisionRequest) for r in requests()]


def _run(snap, signer) -> int:
    rng = np.random.default_rng(1)
    filled = 0
    for req in REQUESTS:
        b = pipeline.Bundle(snap, NO_MODELS, signer, pipeline.Settings(), rng)
        response, _ = pipeline.decide(b, req, pipeline.Facts(NOW, "http://bench"))
        filled += sum(1 for d in response.decisions.values() if d)
    return filled


@pytest.mark.parametrize("impl", ["kernels", "twins"])
def test_pipeline(benchmark, demo, impl: str, monkeypatch: pytest.MonkeyPatch) -> None:
    snap, signer = demo
    if impl == "twins":
        monkeypatch.setattr(
            snap, "targeting", targeting_ref.Targeting(snap.columns, snap.meta["strings"])
        )
        monkeypatch.setattr(
            snap,
            "waterfall",
            auction_ref.Waterfall(
                snap.columns,
                snap.prio_order,
                snap.columns["prio_selection"],
                snap.columns["prio_second"],
                snap.prio_floor_cpm,
                snap.prio_floor_cpc,
            ),
        )
    benchmark.group = "pipeline: 200 requests x 2 placements"
    filled = benchmark(_run, snap, signer)
    assert filled > 0
