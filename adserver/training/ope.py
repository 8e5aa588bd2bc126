"""Off-policy (counterfactual) evaluation: what a candidate policy's average reward would
have been, estimated from events another policy logged with its propensities.

For logged events i (context x_i, logged action a_i with propensity p_i, reward r_i), a
target policy's probability of the logged action pi_i = pi(a_i | x_i), and a reward model
q(x, a):

- IPS (inverse propensity scoring): mean(w_i r_i), w_i = pi_i / p_i. Unbiased when the
  logging policy covers the target's actions; variance grows with w.
- SNIPS (self-normalized IPS): sum(w_i r_i) / sum(w_i). Slightly biased, much steadier.
- DM (direct method): mean over i of sum_a pi(a | x_i) q(x_i, a). As good as q.
- DR (doubly robust): DM + mean(w_i (r_i - q(x_i, a_i))). Unbiased if either the
  propensities or q are right.

Confidence intervals: percentile bootstrap over events (resampled with replacement).
"""

from __future__ import annotations

from typing import Any

import numpy as np

ESTIMATORS = ("ips", "snips", "dm", "dr")


def estimates(
    r: np.ndarray,
    p: np.ndarray,
    pi: np.ndarray,
    q_logged: np.ndarray | None = None,
    q_pi: np.ndarray | None = None,
) -> dict[str, float]:
    """Each estimator's value. `q_logged[i]` = q(x_i, a_i); `q_pi[i]` = the target policy's
    expectation of q at x_i. Without a reward model only IPS and SNIPS."""
    w = pi / p
    out = {
        "ips": float(np.mean(w * r)),
        "snips": float(np.sum(w * r) / np.sum(w)) if np.sum(w) > 0 else 0.0,
    }
    if q_logged is not None and q_pi is not None:
        dm = float(np.mean(q_pi))
        out["dm"] = dm
        out["dr"] = dm + float(np.mean(w * (r - q_logged)))
    return out


def bootstrap(
    r: np.ndarray,
    p: np.ndarray,
    pi: np.ndarray,
    q_logged: np.ndarray | None = None,
    q_pi: np.ndarray | None = None,
    runs: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Each estimator's value on all events and its percentile bootstrap interval."""
    rng = np.random.default_rng(seed)
    n = r.shape[0]
    point = estimates(r, p, pi, q_logged, q_pi)
    samples: dict[str, list[float]] = {k: [] for k in point}
    for _ in range(runs):
        i = rng.integers(0, n, n)
        got = estimates(
            r[i],
            p[i],
            pi[i],
            None if q_logged is None else q_logged[i],
            None if q_pi is None else q_pi[i],
        )
        for k, v in got.items():
            samples[k].append(v)
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    return {
        k: {
            "value": v,
            "low": float(np.percentile(samples[k], lo)),
            "high": float(np.percentile(samples[k], hi)),
        }
        for k, v in point.items()
    }
