"""The CTR model kernels (Numba) against their plain-Python twins, and that FTRL learns."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adserver.kernels import ctr as k
from adserver.kernels import ctr_ref as ref


def _csr(rng: np.random.Generator, n: int, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    lengths = rng.integers(0, 6, size=n)
    ptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return ptr, rng.integers(0, buckets, size=int(ptr[-1])).astype(np.int32)


@settings(max_examples=30, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(1, 40),
    st.sampled_from([0.0, 0.5]),
    st.sampled_from([0.0, 1.0]),
    st.integers(1, 2),
)
def test_ftrl_matches_twin(seed: int, n: int, l1: float, l2: float, epochs: int) -> None:
    rng = np.random.default_rng(seed)
    buckets = 16
    ptr, idx = _csr(rng, n, buckets)
    y = (rng.random(n) < 0.3).astype(np.float64)
    sw = rng.choice([1.0, 2.0], size=n)
    state = [np.zeros(buckets + 1) for _ in range(4)]
    got = k.ftrl(ptr, idx, y, sw, state[0], state[1], 0.1, 1.0, l1, l2, epochs)
    want = ref.ftrl(ptr, idx, y, sw, state[2], state[3], 0.1, 1.0, l1, l2, epochs)
    assert got == pytest.approx(want, rel=1e-9, abs=1e-12)
    assert np.allclose(state[0], state[2]) and np.allclose(state[1], state[3])
    w1, w2 = np.zeros(buckets + 1), np.zeros(buckets + 1)
    k.weights(state[0], state[1], 0.1, 1.0, l1, l2, w1)
    ref.weights(state[2], state[3], 0.1, 1.0, l1, l2, w2)
    assert np.allclose(w1, w2)


@settings(max_examples=30, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(0, 20),
    st.integers(0, 6),
    st.sampled_from([1.0, 0.25, 0.02]),
)
def test_score_matches_twin(seed: int, n: int, width: int, rate: float) -> None:
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 1, size=32).astype(np.float32)
    idx = rng.integers(-1, 32, size=(n, width)).astype(np.int32)  # -1: no feature
    got, want = np.zeros(n), np.zeros(n)
    offsets = rng.normal(0, 1, n) if seed % 2 else np.zeros(0)
    k.score(w, -2.0, offsets, idx, rate, got)
    ref.score(w, -2.0, offsets, idx, rate, want)
    assert np.allclose(got, want)
    assert ((got > 0) & (got < 1)).all()


def test_recalibration_undoes_negative_downsampling() -> None:
    # keeping a share r of negatives turns odds o into o / r; recalibration gives them back
    p, r = 0.02, 0.1
    q = p / (p + (1 - p) * r)
    assert k.recalibrate(q, r) == pytest.approx(p)
    assert k.recalibrate(q, 1.0) == q


def test_ftrl_learns_planted_weights() -> None:
    rng = np.random.default_rng(7)
    buckets, n = 64, 40000
    truth = rng.normal(0, 1.2, size=buckets)
    ptr, idx = _csr(rng, n, buckets)
    logit = np.array([-3.0 + truth[idx[a:b]].sum() for a, b in zip(ptr[:-1], ptr[1:])])
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float64)
    z, nsq = np.zeros(buckets + 1), np.zeros(buckets + 1)
    k.ftrl(ptr, idx, y, np.ones(n), z, nsq, 0.1, 1.0, 0.0, 1.0, 2)
    w = np.zeros(buckets + 1)
    k.weights(z, nsq, 0.1, 1.0, 0.0, 1.0, w)
    p = np.zeros(n)
    full = np.full((n, 5), -1, dtype=np.int32)
    for e, (a, b) in enumerate(zip(ptr[:-1], ptr[1:])):
        full[e, : b - a] = idx[a:b]
    k.score(w[:-1].astype(np.float32), float(w[-1]), np.zeros(0), full, 1.0, p)
    base = y.mean()
    entropy = -(base * math.log(base) + (1 - base) * math.log(1 - base))
    loss = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert loss / entropy < 0.85  # learned most of the planted signal
    assert np.corrcoef(w[:-1], truth)[0, 1] > 0.9
