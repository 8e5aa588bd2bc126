"""The Open Bandit Dataset check of our off-policy estimators (adserver/training/ope.py).

Reads the 10,000-row samples the `obp` package ships (installed with `pip install --no-deps
--ignore-requires-python obp==0.5.7`; nothing of obp is imported), estimates the CTR of the
Bernoulli Thompson sampling policy (BTS) from the uniform-random policy's logs, and compares
with BTS's own observed CTR in its logs, as OBP's example does
(../shared/specs/open-bandit-dataset.md).

- BTS's action distribution per (item, position): Monte Carlo over its prior Beta
  parameters (obp/policy/conf/prior_bts.yaml), ranking items by sampled CTR, the top three
  filling positions 1-3 (what obp's BernoulliTS.compute_batch_action_dist does).
- Reward model for DM and DR: our FTRL logistic regression (adserver/kernels/ctr.py) over
  hashed user features, item, position and user feature x item crosses
  (adserver._hashing.hash_features), cross-fitted on 3 folds.
- Relative estimation error |estimate - truth| / truth, averaged over bootstrap resamples of
  the logged rounds drawn as obp's example draws them (numpy RandomState(b), b = 0..runs-1).
  The reward model is fitted once (cross-fitted) rather than on each resample.
"""

from __future__ import annotations

import csv
import importlib.util
import os
from typing import Any

import numpy as np

from adserver._hashing import hash_features, hash_str
from adserver.kernels import ctr as kernel
from adserver.training import ope

N_ITEMS = {"all": 80, "men": 34, "women": 46}
POSITIONS = 3
BITS = 18
SEED = 0x0BD


class MissingData(Exception):
    """The obp package (and so its sample) is not installed."""


def root() -> str:
    spec = importlib.util.find_spec("obp")
    if spec is None or not spec.submodule_search_locations:
        raise MissingData("pip install --no-deps --ignore-requires-python obp==0.5.7")
    return list(spec.submodule_search_locations)[0]


def read(policy: str, campaign: str = "all") -> dict[str, np.ndarray]:
    path = os.path.join(root(), "dataset", "obd", policy, campaign, f"{campaign}.csv")
    with open(path, newline="") as src:
        rows = list(csv.DictReader(src))
    users = np.array(
        [[hash_str(r[f"user_feature_{k}"], SEED) for k in range(4)] for r in rows], dtype=np.uint64
    )
    return {
        "item": np.array([int(r["item_id"]) for r in rows]),
        "position": np.array([int(r["position"]) - 1 for r in rows]),
        "click": np.array([float(r["click"]) for r in rows]),
        "pscore": np.array([float(r["propensity_score"]) for r in rows]),
        "users": users,
    }


def bts_prior(campaign: str = "all") -> tuple[np.ndarray, np.ndarray]:
    """(alpha, beta) of BTS's prior for a campaign, from obp's prior_bts.yaml (a mapping of
    campaign -> alpha/beta lists; read without a YAML library)."""
    path = os.path.join(root(), "policy", "conf", "prior_bts.yaml")
    found: dict[str, dict[str, list[float]]] = {}
    section = key = None
    with open(path) as src:
        for line in src:
            text = line.strip()
            if not text:
                continue
            if not line.startswith(" ") and text.endswith(":"):
                section = text[:-1]
                found[section] = {}
            elif text.endswith(":") and section is not None:
                key = text[:-1]
                found[section][key] = []
            elif text.startswith("-") and section is not None and key is not None:
                found[section][key].append(float(text[1:]))
    p = found[campaign]
    return np.array(p["alpha"]), np.array(p["beta"])


def bts_action_dist(campaign: str = "all", n_sim: int = 100_000, seed: int = 12345) -> np.ndarray:
    """(items, positions): the probability BTS shows each item at each position."""
    alpha, beta = bts_prior(campaign)
    rng = np.random.RandomState(seed)  # obp's generator and draw order, for comparable runs
    out = np.zeros((alpha.shape[0], POSITIONS))
    for start in range(0, n_sim, 10_000):
        theta = rng.beta(alpha, beta, size=(min(10_000, n_sim - start), alpha.shape[0]))
        top = np.argsort(-theta, axis=1)[:, :POSITIONS]
        for pos in range(POSITIONS):
            out[:, pos] += np.bincount(top[:, pos], minlength=alpha.shape[0])
    return out / n_sim


def _buckets(users: np.ndarray, position: int, items: np.ndarray) -> np.ndarray:
    """Reward-model buckets of (user features, position) with each of `items`."""
    ctx_f = np.array([1, 2, 3, 4, 5], dtype=np.uint64)
    ctx_v = np.concatenate([users, [position]]).astype(np.uint64)
    crosses = np.array([[1, 0], [2, 0], [3, 0], [4, 0], [5, 0]], dtype=np.int32)
    return hash_features(
        ctx_f,
        ctx_v,
        np.array([16], dtype=np.uint64),
        items.astype(np.uint64).reshape(-1, 1),
        crosses,
        SEED,
        BITS,
    )


def reward_model(
    d: dict[str, np.ndarray], n_items: int, folds: int = 3, seed: int = 0
) -> np.ndarray:
    """(rounds, items): cross-fitted predicted click probability of every item at each
    round's position and user."""
    n = d["item"].shape[0]
    fold = np.random.default_rng(seed).integers(0, folds, n)
    logged = np.stack(
        [_buckets(d["users"][i], int(d["position"][i]), d["item"][i : i + 1])[0] for i in range(n)]
    )
    all_items = np.arange(n_items)
    out = np.zeros((n, n_items))
    for f in range(folds):
        train = np.flatnonzero(fold != f)
        z, nsq = np.zeros((1 << BITS) + 1), np.zeros((1 << BITS) + 1)
        k = logged.shape[1]
        ptr = np.arange(0, (train.shape[0] + 1) * k, k, dtype=np.int64)
        kernel.ftrl(
            ptr,
            logged[train].ravel(),
            d["click"][train],
            np.ones(train.shape[0]),
            z,
            nsq,
            0.1,
            1.0,
            1.0,
            1.0,
            1,
        )
        w = np.zeros((1 << BITS) + 1)
        kernel.weights(z, nsq, 0.1, 1.0, 1.0, 1.0, w)
        weights = w[:-1].astype(np.float32)
        for i in np.flatnonzero(fold == f):
            p = np.empty(n_items)
            kernel.score(
                weights,
                float(w[-1]),
                np.zeros(0),
                _buckets(d["users"][i], int(d["position"][i]), all_items),
                1.0,
                p,
            )
            out[i] = p
    return out


def check(campaign: str = "all", runs: int = 30, seed: int = 0) -> dict[str, Any]:
    """Mean relative estimation error of each estimator over `runs` bootstrap resamples."""
    n_items = N_ITEMS[campaign]
    random_logs, bts_logs = read("random", campaign), read("bts", campaign)
    truth = float(bts_logs["click"].mean())
    dist = bts_action_dist(campaign)
    q = reward_model(random_logs, n_items)
    rounds = np.arange(random_logs["item"].shape[0])
    pos = random_logs["position"]
    pi = dist[random_logs["item"], pos]
    q_logged = q[rounds, random_logs["item"]]
    q_pi = (q * dist[:, pos].T).sum(1)
    r, p = random_logs["click"], random_logs["pscore"]
    errors: dict[str, list[float]] = {k: [] for k in ope.ESTIMATORS}
    for b in range(runs):  # obp's resampling: RandomState(b).choice, run b
        i = np.random.RandomState(seed + b).choice(
            np.arange(r.shape[0]), size=r.shape[0], replace=True
        )
        for k, v in ope.estimates(r[i], p[i], pi[i], q_logged[i], q_pi[i]).items():
            errors[k].append(abs(v - truth) / truth)
    full = ope.estimates(r, p, pi, q_logged, q_pi)
    return {
        "truth_bts_ctr": truth,
        "random_ctr": float(r.mean()),
        "estimates": full,
        "ips_relative_to_random": full["ips"] / float(r.mean()),
        "relative_error": {k: float(np.mean(v)) for k, v in errors.items()},
    }
