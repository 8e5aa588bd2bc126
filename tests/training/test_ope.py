"""Off-policy estimators on a synthetic bandit whose true policy values are known."""

from __future__ import annotations

import numpy as np
import pytest

from adserver.training import ope

K = 5


def world(n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, n)  # three kinds of context
    truth = np.array(
        [[0.1, 0.2, 0.6, 0.1, 0.3], [0.5, 0.1, 0.1, 0.2, 0.1], [0.2, 0.2, 0.2, 0.7, 0.1]]
    )
    logging = np.full((n, K), 1 / K)  # uniform logging policy
    a = rng.integers(0, K, n)
    r = (rng.random(n) < truth[x, a]).astype(float)
    target = np.full((3, K), 0.05)  # a good target: mostly each context's best action
    target[np.arange(3), truth.argmax(1)] = 0.8
    value = float((target * truth).sum(1).mean())  # contexts equally likely
    return {
        "x": x,
        "a": a,
        "r": r,
        "p": logging[np.arange(n), a],
        "pi": target[x, a],
        "target": target,
        "truth": truth,
        "value": value,
    }


def test_estimators_recover_the_true_value() -> None:
    w = world(40_000, 1)
    noisy_q = w["truth"] + np.random.default_rng(2).normal(0, 0.1, w["truth"].shape)
    q_logged = noisy_q[w["x"], w["a"]]
    q_pi = (w["target"][w["x"]] * noisy_q[w["x"]]).sum(1)
    got = ope.bootstrap(w["r"], w["p"], w["pi"], q_logged, q_pi, runs=100)
    for name in ("ips", "snips", "dr"):  # unbiased (or nearly): within their intervals
        assert got[name]["low"] <= w["value"] <= got[name]["high"], (name, got, w["value"])
        assert got[name]["value"] == pytest.approx(w["value"], abs=0.02)
    # DM inherits the reward model's error; DR corrects it with the propensities
    assert abs(got["dr"]["value"] - w["value"]) < abs(got["dm"]["value"] - w["value"]) + 0.01


def test_without_a_reward_model_only_ips_and_snips() -> None:
    w = world(1000, 3)
    assert set(ope.estimates(w["r"], w["p"], w["pi"])) == {"ips", "snips"}
