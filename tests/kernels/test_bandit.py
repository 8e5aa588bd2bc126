"""Contextual bandit kernels and feature hashing against their Python twins."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adserver import _hashing as native
from adserver.kernels import bandit as k
from adserver.kernels import bandit_ref as ref
from adserver.kernels import hashing_ref


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 6), st.integers(1, 8), st.integers(1, 20))
def test_action_features_and_scores_match_twins(seed: int, nc: int, n: int, bits: int) -> None:
    rng = np.random.default_rng(seed)
    ctx_ids = rng.integers(0, 2**63, nc).astype(np.uint64)
    ctx_vals = rng.normal(size=nc)
    lengths = rng.integers(0, 4, n)
    act_ptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    act_ids = rng.integers(0, 2**63, int(act_ptr[-1])).astype(np.uint64)
    act_vals = rng.normal(size=act_ids.shape[0])
    got = native.action_features(ctx_ids, ctx_vals, act_ids, act_vals, act_ptr, bits)
    want = hashing_ref.action_features(ctx_ids, ctx_vals, act_ids, act_vals, act_ptr, bits)
    for g, w in zip(got, want):
        assert np.array_equal(g, w) if g.dtype != np.float64 else np.allclose(g, w)
    weights = rng.normal(size=1 << bits).astype(np.float32)
    a, b = np.zeros(n), np.zeros(n)
    k.scores(weights, *got, a)
    ref.scores(weights, *want, b)
    assert np.allclose(a, b)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(-5, 5), min_size=1, max_size=12),
    st.data(),
    st.sampled_from([k.EPSILON_GREEDY, k.SOFTMAX]),
    st.sampled_from([0.0, 0.2, 1.0]),
)
def test_probabilities_match_twin(
    s: list[float], data: st.DataObject, kind: int, eps: float
) -> None:
    allowed = np.array(data.draw(st.lists(st.booleans(), min_size=len(s), max_size=len(s))))
    scores = np.array(s)
    a, b = np.zeros(len(s)), np.zeros(len(s))
    k.probabilities(scores, allowed, kind, eps, 2.0, a)
    ref.probabilities(scores, allowed, kind, eps, 2.0, b)
    assert np.allclose(a, b)
    assert (a[~allowed] == 0).all()
    if allowed.any():
        assert a.sum() == pytest.approx(1.0)


def test_epsilon_greedy_gives_the_best_most() -> None:
    out = np.zeros(4)
    k.probabilities(
        np.array([0.1, 0.9, 0.5, 0.9]),
        np.array([True, True, True, False]),
        k.EPSILON_GREEDY,
        0.2,
        1.0,
        out,
    )
    assert out.tolist() == pytest.approx([0.2 / 3, 0.8 + 0.2 / 3, 0.2 / 3, 0.0])


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 12))
def test_learn_matches_twin(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 5, n)
    ptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    idx = rng.integers(0, 16, int(ptr[-1])).astype(np.int32)
    val = rng.normal(size=idx.shape[0])
    targets, importance = rng.uniform(-1, 1, n), rng.uniform(1, 300, n)
    a = rng.normal(size=16).astype(np.float32)
    b = a.copy()
    acc_a, acc_b = np.zeros(16, dtype=np.float32), np.zeros(16, dtype=np.float32)
    ga = k.learn(a, acc_a, ptr, idx, val, targets, importance, 0.1)
    gb = ref.learn(b, acc_b, ptr, idx, val, targets, importance, 0.1)
    assert ga == pytest.approx(gb, rel=1e-4) and np.allclose(a, b, atol=1e-4)
    assert np.allclose(acc_a, acc_b, rtol=1e-4)


def test_a_large_importance_moves_a_coordinate_by_lr_at_most() -> None:
    w, acc = np.zeros(4, dtype=np.float32), np.zeros(4, dtype=np.float32)
    ptr, idx, val = np.array([0, 2]), np.array([0, 1], dtype=np.int32), np.ones(2)
    k.learn(w, acc, ptr, idx, val, np.array([1.0]), np.array([1e6]), 0.03)
    assert w[:2].tolist() == pytest.approx([0.03, 0.03])  # toward the target, bounded
    w[:], acc[:] = 0, 0
    for _ in range(3000):  # importances the policy gives (epsilon 0.2 over 10 actions: 50)
        k.learn(w, acc, ptr, idx, val, np.array([1.0]), np.array([50.0]), 0.03)
    assert w[0] + w[1] == pytest.approx(1.0, abs=0.05)  # converges on the target


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 10))
def test_floors_match_twin_and_hold(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(n)) if seed % 3 else np.eye(n)[0]
    allowed = rng.random(n) < 0.8
    allowed[0] = True
    p[~allowed] = 0
    p /= p.sum()
    floor = np.where(rng.random(n) < 0.5, rng.uniform(0, 0.4, n), 0.0)
    a, b = p.copy(), p.copy()
    k.floors(a, floor, allowed)
    ref.floors(b, floor, allowed)
    assert np.allclose(a, b)
    assert a.sum() == pytest.approx(1.0) and (a[~allowed] == 0).all()
    scale = min(1.0, 1.0 / max(floor[allowed].sum(), 1e-12))
    assert (a[allowed] >= floor[allowed] * scale - 1e-9).all()
