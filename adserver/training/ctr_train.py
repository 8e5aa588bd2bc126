"""Train a CTR (or CVR) model from our own logs: `adserver train ctr`.

Examples are the winners of logged decisions (stream `decisions`) that got a valid
impression (stream `events`, robots excluded), joined by (request id, ad id); the label is
a valid click on it (CTR) or an order credited to it (CVR, from the control store's
conversions). The latest `holdout` share of examples (by time) is held out for the metrics;
negatives of the rest are kept with probability `negative_rate` (positives all) and the model
predicts through recalibration (adserver/kernels/ctr.recalibrate). FTRL-Proximal logistic
regression over the hashed features of adserver/learn/features.py.

Held-out metrics: log loss, normalized entropy (log loss over the entropy of the training
set's observed rate; < 1 means better than always predicting that rate), AUC, calibration
(predicted / observed positives). The same held-out examples are scored by the pCTR that
served them and the constant prior, and those newer than the active model's training window
by the active model and by the new one, as baselines for the registry's gate.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from adserver.formats.segment import read_records
from adserver.kernels import ctr as kernel
from adserver.learn import ctr
from adserver.learn.features import Spec

PRIORS = {"ctr": 0.01, "cvr": 0.001}  # the compiler's prior pCTR and pCVR
# the active model is compared on held-out examples after its own training window, when
# they hold at least this many positives (else the gate uses its own held-out metrics)
MIN_COMPARED_POSITIVES = 5
NO_OFFSETS = np.zeros(0)


class NotEnoughData(Exception):
    """Too few examples or positives to train (the message says how many there are)."""


@dataclasses.dataclass
class Settings:
    """One training run: the model, its window of logs, hold-out and split, negative sampling,
    epochs and regularization."""

    name: str = "ctr"
    days: float = 7.0  # the window: records of the last `days` before `until`
    until: float | None = None  # default: just after the latest logged decision
    holdout: float = 0.2
    split: str = "time"  # "time": the latest share held out; "random": a random share
    negative_rate: float = 0.25
    epochs: int = 2
    alpha: float = 0.3
    beta: float = 1.0
    l1: float = 0.5
    l2: float = 1.0
    bits: int = 20
    calibrate: bool = True  # shift the bias so predictions sum to the training clicks
    min_examples: int = 500
    min_positives: int = 10
    seed: int = 0
    label: str = ""
    created_by: str = "adserver train"


@dataclasses.dataclass
class Examples:
    """Held in groups: one per decided placement (its context is shared by its winners)."""

    ts: list[float] = dataclasses.field(default_factory=list)
    ctx: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    ads: list[np.ndarray] = dataclasses.field(default_factory=list)  # (m, len(AD_ORDER))
    y: list[np.ndarray] = dataclasses.field(default_factory=list)
    served: list[np.ndarray] = dataclasses.field(default_factory=list)  # prediction used

    @property
    def count(self) -> int:
        return sum(a.shape[0] for a in self.ads)


def _segments(data_dir: str, stream: str) -> list[str]:
    root = os.path.join(data_dir, "events")
    if not os.path.isdir(root):
        return []
    return [
        os.path.join(root, w, n)
        for w in sorted(os.listdir(root))
        if os.path.isdir(os.path.join(root, w))
        for n in sorted(os.listdir(os.path.join(root, w)))
        if n.startswith(stream + "-") and n.endswith(".seg")
    ]


def _records(paths: list[str], tick: Callable[[int], None]) -> Iterator[dict[str, Any]]:
    for path in paths:
        for _, rec in read_records(path):
            yield rec
        tick(1)


def _conversions(data_dir: str) -> set[str]:
    """'<request>:<ad>' of the touches orders were credited to (read-only)."""
    path = os.path.join(data_dir, "control.sqlite3")
    if not os.path.exists(path):
        return set()
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {
            row[0].split(":", 1)[1]
            for row in db.execute(
                "SELECT t.event_id FROM conversions c JOIN touches t ON t.id = c.touch_id"
            )
        }
    except sqlite3.Error:
        return set()
    finally:
        db.close()


def collect(data_dir: str, s: Settings, tick: Callable[[int], None] = lambda n: None) -> Examples:
    """The window's examples, oldest first."""
    shown: set[str] = set()
    clicked: set[str] = set()
    for rec in _records(_segments(data_dir, "events"), tick):
        if rec.get("t") in ("imp", "click") and not rec.get("bot"):
            (shown if rec["t"] == "imp" else clicked).add(f"{rec['req']}:{rec['ad']}")
    positive = clicked if s.name == "ctr" else _conversions(data_dir)
    served_at = 4 if s.name == "ctr" else 6
    out = Examples()
    decided = [
        rec
        for rec in _records(_segments(data_dir, "decisions"), tick)
        if rec.get("t") == "d" and "f" in rec
    ]
    until = (
        s.until
        if s.until is not None
        else (max((r["ts"] for r in decided), default=time.time()) + 1)
    )
    since = until - s.days * 86400
    for rec in decided:
        ts = rec["ts"]
        if not since <= ts < until:
            continue
        for p in rec["placements"]:
            winners = [w for w in p[2] if f"{rec['id']}:{w[0]}" in shown]
            if not winners:
                continue
            raw = {**rec["f"], "site": p[4], "zone": p[5], "category": p[7]}
            out.ts.append(ts)
            out.ctx.append(raw)
            out.ads.append(np.array([w[8] for w in winners], dtype=np.uint64))
            out.y.append(
                np.array([f"{rec['id']}:{w[0]}" in positive for w in winners], dtype=np.float64)
            )
            out.served.append(
                np.array(
                    [w[served_at] if w[served_at] is not None else PRIORS[s.name] for w in winners]
                )
            )
    order = np.argsort(np.array(out.ts), kind="stable")
    for name in ("ts", "ctx", "ads", "y", "served"):
        values = getattr(out, name)
        setattr(out, name, [values[i] for i in order])
    return out


def buckets(
    spec: Spec, ex: Examples, groups: range | list[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ptr, idx, y) CSR feature buckets of the examples in `groups`."""
    mats, ys = [], []
    for g in groups:
        m = ex.ads[g]
        mats.append(_hash(spec, ex.ctx[g], m))
        ys.append(ex.y[g])
    lengths = np.concatenate([[b.shape[1]] * b.shape[0] for b in mats]) if mats else np.zeros(0)
    ptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    idx = np.concatenate([b.ravel() for b in mats]) if mats else np.zeros(0, dtype=np.int32)
    y = np.concatenate(ys) if ys else np.zeros(0)
    return ptr, idx.astype(np.int32), y


def _hash(spec: Spec, raw: dict[str, Any], ads: np.ndarray) -> np.ndarray:
    from adserver._hashing import hash_features

    f, v = spec.context_arrays(raw)
    return hash_features(
        f,
        v,
        spec.ad_field,
        np.ascontiguousarray(ads[:, spec.ad_cols]),
        spec.cross_arr,
        spec.seed,
        spec.bits,
    )


def _padded(ptr: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """CSR buckets as one (examples, widest) matrix padded with -1, for the scoring kernel."""
    lengths = np.diff(ptr)
    width = int(lengths.max()) if lengths.shape[0] else 0
    full = np.full((lengths.shape[0], width), -1, dtype=np.int32)
    cols = np.arange(idx.shape[0]) - np.repeat(ptr[:-1], lengths)
    full[np.repeat(np.arange(lengths.shape[0]), lengths), cols] = idx
    return full


def _bias_shift(w: np.ndarray, full: np.ndarray, y: np.ndarray, rate: float) -> float:
    """The shift of the bias that makes the mean recalibrated prediction equal the observed
    rate (bisection; predictions are monotone in the bias)."""
    p = np.empty(y.shape[0])
    weights = w[:-1].astype(np.float32)
    target = float(y.mean())
    lo, hi = -3.0, 3.0
    for _ in range(30):
        mid = (lo + hi) / 2
        kernel.score(weights, float(w[-1]) + mid, NO_OFFSETS, full, rate, p)
        lo, hi = (mid, hi) if p.mean() < target else (lo, mid)
    return (lo + hi) / 2


def predict(model: ctr.Model, ex: Examples, groups: range | list[int]) -> np.ndarray:
    """A model's predictions for the examples in `groups` (any feature specification)."""
    out = [model.predict(model.spec.context_arrays(ex.ctx[g]), ex.ads[g]) for g in groups]
    return np.concatenate(out) if out else np.zeros(0)


def metrics(y: np.ndarray, p: np.ndarray, base_rate: float) -> dict[str, float]:
    """Log loss, normalized entropy (against `base_rate`), AUC, calibration."""
    from scipy.stats import rankdata

    p = np.clip(p, 1e-7, 1 - 1e-7)
    n, pos = y.shape[0], float(y.sum())
    logloss = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))) if n else math.nan
    b = min(max(base_rate, 1e-7), 1 - 1e-7)
    entropy = -(b * math.log(b) + (1 - b) * math.log(1 - b))
    auc = math.nan
    if 0 < pos < n:
        ranks = rankdata(p)
        auc = float((ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * (n - pos)))
    return {
        "examples": n,
        "positives": int(pos),
        "logloss": round(logloss, 6),
        "ne": round(logloss / entropy, 6),
        "auc": round(auc, 6),
        "calibration": round(float(p.sum()) / pos, 6) if pos else math.nan,
    }


def train(
    data_dir: str, s: Settings, progress: bool = False, root: str | None = None
) -> tuple[str, dict[str, Any]]:
    """Train, evaluate and write a model version (not activated) under models/<name>/ (or
    `root`); returns (version, manifest info). Raises NotEnoughData."""
    from tqdm import tqdm

    if s.name not in ctr.NAMES:
        raise ValueError(f"unknown model {s.name!r}; want one of {ctr.NAMES}")
    bar = tqdm(
        total=len(_segments(data_dir, "events")) + len(_segments(data_dir, "decisions")),
        desc="reading logs",
        unit="segment",
        disable=not progress,
        leave=False,
    )
    ex = collect(data_dir, s, bar.update)
    bar.close()
    n = ex.count
    positives = int(sum(float(y.sum()) for y in ex.y))
    if n < s.min_examples or positives < s.min_positives:
        raise NotEnoughData(
            f"{n} examples with {positives} positives in the window; want at"
            f" least {s.min_examples} and {s.min_positives}"
        )
    sizes = np.array([a.shape[0] for a in ex.ads])
    rng = np.random.default_rng(s.seed)
    if s.split == "time":
        cut = int(np.searchsorted(np.cumsum(sizes), n * (1 - s.holdout)))
        cut = min(max(cut, 1), len(sizes) - 1)
        train_groups, held_groups = list(range(cut)), list(range(cut, len(sizes)))
    elif s.split == "random":
        held = rng.random(len(sizes)) < s.holdout
        train_groups = np.flatnonzero(~held).tolist()
        held_groups = np.flatnonzero(held).tolist()
    else:
        raise ValueError(f"split: {s.split!r}; want 'time' or 'random'")
    if not train_groups or not held_groups:
        raise NotEnoughData("nothing to hold out or nothing left to train on")
    spec = Spec(bits=s.bits, seed=Spec().seed)
    ptr, idx, y = buckets(spec, ex, train_groups)
    base_rate = float(y.mean())
    keep = (y > 0) | (rng.random(y.shape[0]) < s.negative_rate)
    lengths = np.diff(ptr)[keep]
    rows = np.repeat(keep, np.diff(ptr))
    ptr_k = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    idx_k, y_k = idx[rows], y[keep]
    size = 1 << spec.bits
    z, nsq = np.zeros(size + 1), np.zeros(size + 1)
    sw = np.ones(y_k.shape[0])
    chunk = 50_000
    bar = tqdm(
        total=s.epochs * y_k.shape[0],
        desc=f"training {s.name}",
        unit="example",
        disable=not progress,
        leave=False,
    )
    for _ in range(s.epochs):
        for a in range(0, y_k.shape[0], chunk):
            b = min(a + chunk, y_k.shape[0])
            kernel.ftrl(
                ptr_k[a : b + 1] - ptr_k[a],
                idx_k[ptr_k[a] : ptr_k[b]],
                y_k[a:b],
                sw[a:b],
                z,
                nsq,
                s.alpha,
                s.beta,
                s.l1,
                s.l2,
                1,
            )
            bar.update(b - a)
    bar.close()
    w = np.zeros(size + 1)
    kernel.weights(z, nsq, s.alpha, s.beta, s.l1, s.l2, w)
    if s.calibrate:  # shift the bias so that the training set's predictions sum to its clicks
        w[-1] += _bias_shift(w, _padded(ptr, idx), y, s.negative_rate)
    # held-out: the new model, what served, the prior, the active model
    ptr_h, idx_h, y_h = buckets(spec, ex, held_groups)
    p = np.empty(y_h.shape[0])
    kernel.score(
        w[:-1].astype(np.float32),
        float(w[-1]),
        NO_OFFSETS,
        _padded(ptr_h, idx_h),
        s.negative_rate,
        p,
    )
    served = np.concatenate([ex.served[g] for g in held_groups])
    baseline: dict[str, Any] = {
        "served": metrics(y_h, served, base_rate),
        "prior": metrics(y_h, np.full(y_h.shape[0], PRIORS[s.name]), base_rate),
    }
    active = ctr.pointer(data_dir, s.name)
    if active is not None:
        try:
            model = ctr.load(data_dir, s.name, active)
        except ctr.ModelError:
            model = None
        # only examples the active model never trained on: those after its window
        after = (
            float((model.manifest.get("training") or {}).get("to", math.inf))
            if model is not None
            else math.inf
        )
        unseen = [g for g in held_groups if ex.ts[g] > after]
        mask = np.concatenate([np.full(ex.ads[g].shape[0], ex.ts[g] > after) for g in held_groups])
        if model is not None and unseen and y_h[mask].sum() >= MIN_COMPARED_POSITIVES:
            baseline["active"] = {
                "version": active,
                **metrics(y_h[mask], predict(model, ex, unseen), base_rate),
                "candidate": metrics(y_h[mask], p[mask], base_rate),
            }
    ts = np.array(ex.ts)
    info = {
        "label": s.label,
        "created_by": s.created_by,
        "training": {
            "from": float(ts[train_groups[0]]),
            "to": float(ts[train_groups[-1]]),
            "examples": int(y.shape[0]),
            "positives": int(y.sum()),
            "kept": int(y_k.shape[0]),
            "split": s.split,
            "held_out_from": float(ts[held_groups[0]]),
            "held_out_to": float(ts[held_groups[-1]]),
            "base_rate": round(base_rate, 6),
        },
        "metrics": metrics(y_h, p, base_rate),
        "baseline": baseline,
        "params": {
            k: getattr(s, k)
            for k in (
                "days",
                "holdout",
                "split",
                "negative_rate",
                "epochs",
                "alpha",
                "beta",
                "l1",
                "l2",
                "bits",
                "calibrate",
            )
        },
        "nonzero_weights": int(np.count_nonzero(w[:-1])),
    }
    version = ctr.write(data_dir, s.name, w[:-1], float(w[-1]), spec, s.negative_rate, info, root)
    return version, info
