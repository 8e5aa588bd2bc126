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
import time
from typing import Any

import numpy as np

from adserver import versions
from adserver._hashing import hash_features
from adserver.kernels import ctr as kernel
from adserver.learn import features
from adserver.learn.features import Spec, SpecError

FORMAT = 1
NAMES = ("ctr", "cvr")
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
            raise ModelError(f"manifest.json: format {m.get('format') if isinstance(m, dict) else m!r};"
                             f" want {FORMAT}")
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
            weights = np.load(os.path.join(path, "weights.npy"), mmap_mode="r",
                              allow_pickle=False)
        except (OSError, ValueError) as e:
            raise ModelError(f"weights.npy: {e}") from None
        if weights.dtype != np.float32 or weights.shape != (1 << self.spec.bits,):
            raise ModelError(f"weights.npy: {weights.dtype} {weights.shape}; want float32"
                             f" ({1 << self.spec.bits},) for bits {self.spec.bits}")
        if not np.isfinite(weights).all():
            raise ModelError("weights.npy holds NaN or infinite values")
        self.weights = weights.view(np.ndarray)
        self.bias = m.get("bias")
        self.rate = m.get("negative_rate", 1.0)
        if not isinstance(self.bias, (int, float)) or not math.isfinite(self.bias):
            raise ModelError("manifest.json: bias must be a finite number")
        if not isinstance(self.rate, (int, float)) or not 0.0 < self.rate <= 1.0:
            raise ModelError("manifest.json: negative_rate must be in (0, 1]")
        self.bias, self.rate = float(self.bias), float(self.rate)

    def buckets(self, ctx: tuple[np.ndarray, np.ndarray], ads: np.ndarray) -> np.ndarray:
        """Feature buckets of candidates (`ads`: rows of the full ad feature matrix,
        features.AD_ORDER columns) in context `ctx` (Spec.context_arrays)."""
        s = self.spec
        return hash_features(ctx[0], ctx[1], s.ad_field, np.ascontiguousarray(ads[:, s.ad_cols]),
                             s.cross_arr, s.seed, s.bits)

    def predict(self, ctx: tuple[np.ndarray, np.ndarray], ads: np.ndarray) -> np.ndarray:
        out = np.empty(ads.shape[0])
        kernel.score(self.weights, self.bias, self.buckets(ctx, ads), self.rate, out)
        return out

    def warm(self) -> None:
        kernel.warm()
        self.predict(self.spec.context_arrays({"site": 1}),
                     np.zeros((1, len(features.AD_ORDER)), dtype=np.uint64))


def write(data_dir: str, name: str, weights: np.ndarray, bias: float, spec: Spec,
          negative_rate: float, info: dict[str, Any], root: str | None = None) -> str:
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
    manifest = {"format": FORMAT, "name": name, "version": version, "created_at": time.time(),
                "bias": float(bias), "negative_rate": float(negative_rate), **info,
                "checksums": {n: versions.sha256_file(os.path.join(tmp, n)) for n in FILES}}
    with open(os.path.join(tmp, "manifest.json"), "w") as out:
        json.dump(manifest, out, indent=1, sort_keys=True)
        out.flush()
        os.fsync(out.fileno())
    versions.seal(root, tmp, version, [*FILES, "manifest.json"])
    return version


def load(data_dir: str, name: str, version: str) -> Model:
    return Model(os.path.join(models_root(data_dir, name), version))


def pointer(data_dir: str, name: str, which: str = ACTIVE) -> str | None:
    """The version `models/<name>/CURRENT` (or SHADOW) names, None when none."""
    return versions.current(models_root(data_dir, name), which)
