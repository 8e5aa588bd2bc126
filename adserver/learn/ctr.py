"""CTR and CVR model files: writing a version, verifying it, scoring with it.

A model version is a directory `models/<name>/<version>/` (name: `ctr` or `cvr`):

    manifest.json   {"format", "name", "version", "label", "created_at", "created_by", "bias",
                     "negative_rate", "training": {...}, "metrics": {...}, "baseline": {...},
                     "params": {...}, "checksums": {file: sha256}}
    features.json   the feature specification (adserver/learn/features.Spec)
    weights.npy     float32, 2^bits weights (one per hash bucket)

p = recalibrate(sigmoid(bias + sum of the weights of the candidate's feature buckets),
negative_rate) (adserver/kernels/ctr.py). `models/<name>/CURRENT` names the active version
and `models/<name>/SHADOW` the shadow one (empty: none); only the control process writes
them (adserver/control/registry.py).
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from typing import Any

import numpy as np

from adserver._hashing import hash_features
from adserver.formats import versions
from adserver.kernels import ctr as kernel
from adserver.learn import features
from adserver.learn.features import Spec, SpecError

FORMAT = 1
NAMES = ("ctr", "cvr")
NO_OFFSETS = np.zeros(0)
NO_U64 = np.zeros(0, dtype=np.uint64)
NO_CROSSES = np.zeros((0, 2), dtype=np.int32)
ONE_EMPTY_AD = np.zeros((1, 0), dtype=np.uint64)
CONTEXT_CACHE = 4096  # request contexts whose own weights are kept summed, per model
FILES = ("features.json", "weights.npy")
ACTIVE, SHADOW = "CURRENT", "SHADOW"


class ModelError(Exception):
    """A model version that cannot be used (the message names the file and the problem)."""


def models_root(data_dir: str, name: str) -> str:
    return os.path.join(data_dir, "models", name)


def inbox_root(data_dir: str, name: str) -> str:
    """Where ops (and `adserver train`) drop model directories for the control process."""
    return os.path.join(data_dir, "models", "inbox", name)


class Model:
    """A verified model version, ready to score candidates."""

    def __init__(self, path: str):
        self.path = path
        try:
            with open(os.path.join(path, "manifest.json"), encoding="utf-8") as src:
                self.manifest: dict[str, Any] = json.load(src)
        except (OSError, ValueError) as e:
            raise ModelError(f"manifest.json: {e}") from None
        m = self.manifest
        if not isinstance(m, dict) or m.get("format") != FORMAT:
            raise ModelError(
                f"manifest.json: format {m.get('format') if isinstance(m, dict) else m!r};"
                f" want {FORMAT}"
            )
        if m.get("name") not in NAMES:
            raise ModelError(f"manifest.json: name {m.get('name')!r}; want one of {NAMES}")
        self.name: str = m["name"]
        self.version: str = os.path.basename(os.path.normpath(path))  # the registry's name
        sums = m.get("checksums")
        if not isinstance(sums, dict) or set(FILES) - set(sums):
            raise ModelError(f"manifest.json: checksums must name {', '.join(FILES)}")
        for name in FILES:
            try:
                digest = versions.sha256_file(os.path.join(path, name))
            except OSError as e:
                raise ModelError(f"{name}: {e.strerror or e}") from None
            if digest != sums[name]:
                raise ModelError(f"{name} does not match its checksum (damaged or truncated)")
        try:
            with open(os.path.join(path, "features.json"), "rb") as src:
                self.spec: Spec = features.decode_spec(src.read())
        except SpecError as e:
            raise ModelError(str(e)) from None
        try:
            weights = np.load(os.path.join(path, "weights.npy"), mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as e:
            raise ModelError(f"weights.npy: {e}") from None
        if weights.dtype != np.float32 or weights.shape != (1 << self.spec.bits,):
            raise ModelError(
                f"weights.npy: {weights.dtype} {weights.shape}; want float32"
                f" ({1 << self.spec.bits},) for bits {self.spec.bits}"
            )
        if not np.isfinite(weights).all():
            raise ModelError("weights.npy holds NaN or infinite values")
        self.weights = weights.view(np.ndarray)
        bias, rate = m.get("bias"), m.get("negative_rate", 1.0)
        if not isinstance(bias, (int, float)) or not math.isfinite(bias):
            raise ModelError("manifest.json: bias must be a finite number")
        if not isinstance(rate, (int, float)) or not 0.0 < rate <= 1.0:
            raise ModelError("manifest.json: negative_rate must be in (0, 1]")
        self.bias, self.rate = float(bias), float(rate)
        self._ad_logits: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._contexts: dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray, float]] = {}
        self._lock = threading.Lock()
        # the crosses over only the ad columns they use (AD_ORDER positions `cross_cols`)
        used = sorted({self.spec.ad_cols[a] for a in self.spec.cross_arr[:, 1].tolist()})
        self.cross_cols = np.array(used, dtype=np.int64)
        self.cross_field = np.array(
            [features.AD[features.AD_ORDER[c]] for c in used], dtype=np.uint64
        )
        self.cross_arr = np.array(
            [[cf, used.index(int(self.spec.ad_cols[a]))] for cf, a in self.spec.cross_arr.tolist()],
            dtype=np.int32,
        ).reshape(-1, 2)

    def buckets(self, ctx: tuple[np.ndarray, np.ndarray], ads: np.ndarray) -> np.ndarray:
        """Feature buckets of candidates (`ads`: rows of the full ad feature matrix,
        features.AD_ORDER columns) in context `ctx` (Spec.context_arrays)."""
        s = self.spec
        return hash_features(
            ctx[0],
            ctx[1],
            s.ad_field,
            np.ascontiguousarray(ads[:, s.ad_cols]),
            s.cross_arr,
            s.seed,
            s.bits,
        )

    def predict(self, ctx: tuple[np.ndarray, np.ndarray], ads: np.ndarray) -> np.ndarray:
        """Predictions for candidates (every feature hashed here: training, evaluation)."""
        out = np.empty(ads.shape[0])
        kernel.score(self.weights, self.bias, NO_OFFSETS, self.buckets(ctx, ads), self.rate, out)
        return out

    # -- the serving path: the same sum, split by what varies --------------------------

    def ad_logits(self, key: str, ad_features: np.ndarray) -> np.ndarray:
        """Every ad row's sum of its own features' weights (they do not depend on the
        request), computed once per snapshot (`key`) and kept for the last two."""
        return self._per_ad(key, ad_features)[0]

    def _per_ad(self, key: str, ad_features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ad logits, the ad columns crosses use) of a snapshot's ad rows."""
        found = self._ad_logits.get(key)
        if found is not None:
            return found
        with self._lock:  # the worker's warm-up thread and its requests may both ask
            found = self._ad_logits.get(key)
            if found is not None:
                return found
            s = self.spec
            b = hash_features(
                NO_U64,
                NO_U64,
                s.ad_field,
                np.ascontiguousarray(ad_features[:, s.ad_cols]),
                NO_CROSSES,
                s.seed,
                s.bits,
            )
            found = (
                self.weights[b].sum(axis=1, dtype=np.float64),
                np.ascontiguousarray(ad_features[:, self.cross_cols]),
            )
            kept = dict(list(self._ad_logits.items())[-1:])
            kept[key] = found
            self._ad_logits = kept  # replaced, never mutated: readers need no lock
        return found

    def context(self, raw: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, float]:
        """A request context's (field ids, values, bias + the sum of its own weights);
        cached (pages repeat their contexts)."""
        key = tuple(
            tuple(x) if isinstance(x, list) else x for x in (raw.get(n) for n in self.spec.context)
        )
        found = self._contexts.get(key)
        if found is None:
            s = self.spec
            f, v = s.context_arrays(raw)
            own = hash_features(f, v, NO_U64, ONE_EMPTY_AD, NO_CROSSES, s.seed, s.bits)
            found = (f, v, self.bias + float(self.weights[own[0]].sum(dtype=np.float64)))
            if len(self._contexts) >= CONTEXT_CACHE:
                self._contexts = {}
            self._contexts[key] = found
        return found

    def predict_rows(
        self,
        key: str,
        ad_features: np.ndarray,
        ctx: dict[str, Any] | tuple[np.ndarray, np.ndarray, float],
        rows: np.ndarray,
    ) -> np.ndarray:
        """Predictions for ad rows of a snapshot (`ad_features`: its matrix, `key`: its
        version) in a request context (raw, or `context(raw)` to reuse across calls): the
        context's weights summed once, each ad's from `ad_logits`, only the crosses hashed
        per candidate. Equals `predict`."""
        s = self.spec
        f, v, base = self.context(ctx) if isinstance(ctx, dict) else ctx
        logits, crossed_values = self._per_ad(key, ad_features)
        crossed = hash_features(
            f, v, self.cross_field, crossed_values[rows], self.cross_arr, s.seed, s.bits, False
        )
        out = np.empty(rows.shape[0])
        kernel.score(self.weights, base, logits[rows], crossed, self.rate, out)
        return out

    def warm(self, key: str = "", ad_features: np.ndarray | None = None) -> None:
        """Compile the kernels (and, given a snapshot's ad features, sum its ad logits)."""
        kernel.warm()
        one = np.zeros((1, len(features.AD_ORDER)), dtype=np.uint64)
        self.predict(self.spec.context_arrays({"site": 1}), one)
        self.predict_rows("warm", one, {"site": 1}, np.zeros(1, dtype=np.int64))
        self._ad_logits = {k: v for k, v in self._ad_logits.items() if k != "warm"}
        self._contexts = {}
        if ad_features is not None:
            self.ad_logits(key, ad_features)


def write(
    data_dir: str,
    name: str,
    weights: np.ndarray,
    bias: float,
    spec: Spec,
    negative_rate: float,
    info: dict[str, Any],
    root: str | None = None,
) -> str:
    """Write a model version (temporary directory, fsync, rename) under models/<name>/, or
    under `root` (the inbox, when not the control process); returns its name. It is not
    active until the registry activates it."""
    if name not in NAMES:
        raise ModelError(f"unknown model name {name!r}")
    root = root or models_root(data_dir, name)
    version, tmp = versions.begin(root, 6)
    np.save(os.path.join(tmp, "weights.npy"), np.ascontiguousarray(weights, dtype=np.float32))
    with open(os.path.join(tmp, "features.json"), "wb") as out:
        out.write(features.encode_spec(spec))
    manifest = {
        "format": FORMAT,
        "name": name,
        "version": version,
        "created_at": time.time(),
        "bias": float(bias),
        "negative_rate": float(negative_rate),
        **info,
        "checksums": {n: versions.sha256_file(os.path.join(tmp, n)) for n in FILES},
    }
    versions.seal_with_manifest(root, tmp, version, manifest, FILES)
    return version


def load(data_dir: str, name: str, version: str) -> Model:
    return Model(os.path.join(models_root(data_dir, name), version))


def pointer(data_dir: str, name: str, which: str = ACTIVE) -> str | None:
    """The version `models/<name>/CURRENT` (or SHADOW) names, None when none."""
    return versions.current(models_root(data_dir, name), which)
