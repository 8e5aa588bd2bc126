"""CTR model kernels against their Python twins.

    ./dev bench -k ctr

One placement's scoring at serving: 200 candidates, a context of 12 features (site, zone,
hour, device, 3 segments, 4 query tokens, category) and 5 ad fields with 6 crosses (the
default feature specification: 28 buckets per candidate), 2^20 weights. `predict` hashes
every feature (training, evaluation); `predict_rows` is the decision path's cost per model
(the context's and each ad's own weights summed ahead, only the 6 crosses hashed per
candidate). FTRL: one pass
over 20,000 examples of 25 buckets.
"""

from __future__ import annotations

import tempfile

import numpy as np
import pytest

from adserver import _hashing
from adserver.kernels import ctr as kernel
from adserver.kernels import ctr_ref as twin
from adserver.kernels import hashing_ref
from adserver.learn import ctr, features
from adserver.learn.features import Spec

N = 200
RAW = {
    "site": 1,
    "zone": 11,
    "hour_of_week": 40,
    "device": 2,
    "segment": [5, 6, 7],
    "token": [101, 102, 103, 104],
    "category": 77,
}


@pytest.fixture(scope="module")
def model() -> ctr.Model:
    rng = np.random.default_rng(1)
    w = rng.normal(0, 0.1, 1 << 20).astype(np.float32)
    data = tempfile.mkdtemp()
    version = ctr.write(data, "ctr", w, -4.0, Spec(), 0.25, {})
    return ctr.load(data, "ctr", version)


@pytest.fixture(scope="module")
def ads() -> np.ndarray:
    rng = np.random.default_rng(2)
    return rng.integers(1, 2**40, size=(N, len(features.AD_ORDER))).astype(np.uint64)


@pytest.mark.parametrize("impl", [_hashing, hashing_ref], ids=["cython", "python"])
def test_hash_features(benchmark, impl, model: ctr.Model, ads: np.ndarray) -> None:
    s = model.spec
    f, v = s.context_arrays(RAW)
    sub = np.ascontiguousarray(ads[:, s.ad_cols])
    benchmark.group = f"ctr: hash {N} candidates' features"
    out = benchmark(impl.hash_features, f, v, s.ad_field, sub, s.cross_arr, s.seed, s.bits)
    assert out.shape[0] == N


@pytest.mark.parametrize("impl", [kernel, twin], ids=["numba", "python"])
def test_score(benchmark, impl, model: ctr.Model, ads: np.ndarray) -> None:
    idx = model.buckets(model.spec.context_arrays(RAW), ads)
    out = np.empty(N)
    benchmark.group = f"ctr: score {N} candidates ({idx.shape[1]} buckets each)"
    benchmark(impl.score, model.weights, model.bias, np.zeros(0), idx, model.rate, out)


def test_predict(benchmark, model: ctr.Model, ads: np.ndarray) -> None:
    benchmark.group = f"ctr: predict {N} candidates"
    assert benchmark(model.predict, model.spec.context_arrays(RAW), ads).shape == (N,)


def test_predict_rows(benchmark, model: ctr.Model) -> None:
    """The serving path: N rows of a 100,000-ad snapshot, the context's and each ad's own
    weights summed ahead (cached), only the crosses hashed per candidate."""
    rng = np.random.default_rng(4)
    table = rng.integers(1, 2**40, size=(100_000, len(features.AD_ORDER))).astype(np.uint64)
    rows = np.sort(rng.choice(100_000, N, replace=False))
    model.ad_logits("bench", table)
    benchmark.group = f"ctr: predict {N} candidates"
    assert benchmark(model.predict_rows, "bench", table, RAW, rows).shape == (N,)


@pytest.mark.parametrize("impl", [kernel, twin], ids=["numba", "python"])
def test_ftrl(benchmark, impl) -> None:
    rng = np.random.default_rng(3)
    n, k, size = 20_000 if impl is kernel else 2_000, 25, 1 << 20
    ptr = np.arange(0, (n + 1) * k, k, dtype=np.int64)
    idx = rng.integers(0, size, n * k).astype(np.int32)
    y = (rng.random(n) < 0.03).astype(np.float64)
    benchmark.group = "ctr: FTRL, examples of 25 buckets (per-example time = mean / n)"
    benchmark.extra_info["examples"] = n

    def run() -> float:
        z, nsq = np.zeros(size + 1), np.zeros(size + 1)
        return impl.ftrl(ptr, idx, y, np.ones(n), z, nsq, 0.3, 1.0, 0.5, 1.0, 1)

    benchmark.pedantic(run, rounds=3, iterations=1)
