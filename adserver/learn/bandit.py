"""The personalization policy: a contextual bandit over action-dependent features.

Features are Personalizer's JSON objects, flattened: a string value is the feature
`path=value` (value 1), a number the feature `path` (its value), a boolean `path=true|false`,
a list each of its elements under the same path; nested objects extend the path with `.`.
Every action also gets the feature `_action=<id>`. An action's row: its own features and
every (context feature x action feature) pair (adserver._hashing.action_features, Cython),
hashed into 2^bits weights; its score is the dot product (adserver/kernels/bandit.scores,
Numba). Exploration: epsilon-greedy (Personalizer's default, `explorationPercentage`) or
softmax; the probabilities returned are those the draw used.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any

import numpy as np

from adserver._hashing import action_features, cross, hash_feature, hash_str
from adserver.formats import versions
from adserver.kernels import bandit as kernel

SEED = 0x5045  # feature hashing seed of the personalization models
DEFAULT_BITS = 18


def flatten(
    objects: list[dict[str, Any]] | None,
    out_ids: list[int],
    out_vals: list[float],
    out_names: list[str] | None = None,
) -> None:
    """Append the features of Personalizer feature objects to (ids, values), and their
    names (`path=value`, or `path` for a number) to `out_names` when given."""

    def add(ident: int, value: float, name: str) -> None:
        out_ids.append(ident)
        out_vals.append(value)
        if out_names is not None:
            out_names.append(name)

    def walk(prefix: str, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, list):
            for v in value:
                walk(prefix, v)
        elif isinstance(value, bool):
            text = "true" if value else "false"
            add(hash_feature(prefix, text, SEED), 1.0, f"{prefix}={text}")
        elif isinstance(value, (int, float)):
            add(hash_str(prefix, SEED), float(value), prefix)
        else:
            add(hash_feature(prefix, str(value), SEED), 1.0, f"{prefix}={value}")

    for obj in objects or ():
        walk("", obj)


def context_arrays(*objects: list[dict[str, Any]] | None) -> tuple[np.ndarray, np.ndarray]:
    ids: list[int] = []
    vals: list[float] = []
    for o in objects:
        flatten(o, ids, vals)
    ids.append(hash_str("_bias", SEED))  # a constant, so action features alone also count
    vals.append(1.0)
    return np.array(ids, dtype=np.uint64), np.array(vals, dtype=np.float64)


def action_arrays(actions: list[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids, values, CSR pointers) of the actions' own features (`actions`: objects with
    `id` and `features`)."""
    ids: list[int] = []
    vals: list[float] = []
    ptr = [0]
    for a in actions:
        ids.append(hash_feature("_action", a.id, SEED))
        vals.append(1.0)
        flatten(a.features, ids, vals)
        ptr.append(len(ids))
    return (
        np.array(ids, dtype=np.uint64),
        np.array(vals, dtype=np.float64),
        np.array(ptr, dtype=np.int64),
    )


@dataclasses.dataclass
class Exploration:
    """How the policy explores: epsilon-greedy's epsilon, or softmax's lambda."""

    kind: int = kernel.EPSILON_GREEDY
    epsilon: float = 0.2  # Personalizer's default exploration: 20 % of rank calls
    lam: float = 10.0  # softmax inverse temperature


class Policy:
    """Weights over hashed features, with the exploration applied when ranking."""

    def __init__(
        self,
        weights: np.ndarray | None = None,
        bits: int = DEFAULT_BITS,
        version: str = "0",
        exploration: Exploration | None = None,
        mode: str = "Online",
    ):
        self.bits = bits
        self.mode = mode  # Online | Apprentice | LoggingOnly (the service configuration)
        self.weights = weights if weights is not None else np.zeros(1 << bits, np.float32)
        self.version = version
        self.exploration = exploration or Exploration()

    def rows(
        self, ctx: tuple[np.ndarray, np.ndarray], actions: tuple[np.ndarray, ...]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return action_features(ctx[0], ctx[1], actions[0], actions[1], actions[2], self.bits)

    def scores(self, rows: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
        out = np.empty(rows[0].shape[0] - 1)
        kernel.scores(self.weights, rows[0], rows[1], rows[2], out)
        return out

    def probabilities(self, scores: np.ndarray, allowed: np.ndarray) -> np.ndarray:
        e = self.exploration
        out = np.empty(scores.shape[0])
        kernel.probabilities(scores, allowed, e.kind, e.epsilon, e.lam, out)
        return out


def draw(p: np.ndarray, u: float) -> int:
    """The action a uniform draw `u` in [0, 1) picks under probabilities `p`."""
    c = np.cumsum(p)
    return int(min(np.searchsorted(c, u * c[-1], side="right"), p.shape[0] - 1))


# ---- policy files: models/personalizer/<version>/ ------------------------------------

FORMAT = 1
FILES = ("weights.npy",)


def models_root(data_dir: str) -> str:
    return os.path.join(data_dir, "models", "personalizer")


class PolicyError(Exception):
    """A policy version that cannot be used (the message says why)."""


def write(
    data_dir: str, weights: np.ndarray, bits: int, exploration: Exploration, info: dict[str, Any]
) -> str:
    """Write a policy version (temporary directory, fsync, rename) and publish it."""
    root = models_root(data_dir)
    version, tmp = versions.begin(root, 8)
    np.save(os.path.join(tmp, "weights.npy"), np.ascontiguousarray(weights, dtype=np.float32))
    manifest = {
        "format": FORMAT,
        "version": version,
        "bits": bits,
        "created_at": time.time(),
        "exploration": dataclasses.asdict(exploration),
        **info,
        "checksums": {"weights.npy": versions.sha256_file(os.path.join(tmp, "weights.npy"))},
    }
    versions.seal_with_manifest(root, tmp, version, manifest, ["weights.npy"])
    versions.publish(root, version)
    return version


def load(data_dir: str, version: str) -> Policy:
    path = os.path.join(models_root(data_dir), version)
    try:
        with open(os.path.join(path, "manifest.json")) as src:
            m = json.load(src)
        if versions.sha256_file(os.path.join(path, "weights.npy")) != m["checksums"]["weights.npy"]:
            raise PolicyError(f"policy {version}: weights.npy does not match its checksum")
        weights = np.load(os.path.join(path, "weights.npy"), allow_pickle=False)
        bits = int(m["bits"])
        if weights.dtype != np.float32 or weights.shape != (1 << bits,):
            raise PolicyError(f"policy {version}: weights {weights.dtype} {weights.shape}")
        return Policy(
            weights,
            bits,
            version,
            Exploration(**m["exploration"]),
            m.get("learning_mode", "Online"),
        )
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise PolicyError(f"policy {version}: {e}") from None


def current(data_dir: str) -> str | None:
    return versions.current(models_root(data_dir))


def importances(policy: Policy, events: list[tuple[Any, Any, int]]) -> list[dict[str, Any]]:
    """Each feature's share of the policy's scores over `events` (context feature objects,
    actions, the chosen action's index): the mean absolute weight x value of every bucket a
    context feature (namespace "context") or an action feature ("action") takes part in, for
    the chosen action, normalized to sum to 1, largest first."""
    mask = (1 << policy.bits) - 1
    totals: dict[tuple[str, str], float] = {}
    for context, actions, chosen in events:
        c_ids: list[int] = []
        c_vals: list[float] = []
        c_names: list[str] = []
        flatten(context, c_ids, c_vals, c_names)
        a = actions[chosen]
        a_ids, a_vals, a_names = [hash_feature("_action", a["id"], SEED)], [1.0], ["_action"]
        flatten(a.get("features"), a_ids, a_vals, a_names)
        for ai, av, an in zip(a_ids, a_vals, a_names):
            own = abs(float(policy.weights[ai & mask]) * av)
            totals[("action", an)] = totals.get(("action", an), 0.0) + own
            for ci, cv, cn in zip(c_ids, c_vals, c_names):
                part = abs(float(policy.weights[cross(ci, ai) & mask]) * cv * av) / 2
                totals[("context", cn)] = totals.get(("context", cn), 0.0) + part
                totals[("action", an)] = totals.get(("action", an), 0.0) + part
    whole = sum(totals.values()) or 1.0
    return [
        {"featureName": name, "namespace": ns, "score": round(v / whole, 6)}
        for (ns, name), v in sorted(totals.items(), key=lambda kv: -kv[1])
    ]
