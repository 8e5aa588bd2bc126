"""Text embeddings for sponsored-product relevance: featurizing, model files, embedding.

Both planes use this module: the control process to embed the catalog, the decision workers to
embed a search query (tens of microseconds; the arithmetic is the Numba kernel
adserver/kernels/embed.py). Training lives in adserver/training/embed_train.py (control only).

Two kinds of model share one runtime form (feature ids -> rows of one matrix):

- `hashed` (built from the catalog, no downloads): words normalised as keywords are
  (adserver/common/text.py) and the character 3-grams of each word in "<word>" are hashed into
  BUCKETS buckets; a text is the TF-IDF of its buckets (words weigh `word_weight`, 3-grams
  `gram_weight`) projected by a truncated SVD of the catalog's TF-IDF matrix (LSA).
- `static` (dropped in by ops): a vocabulary (one token per line, normalised by the same
  rules when loaded; a repeated token keeps its first row) and a matrix with one row per
  token; a text is the weighted sum of its known tokens' rows (optional per-token weights).

Files of a version directory `models/embed/<version>/` (indexes/README.md): `manifest.json`
(kind, dim, settings, checksums), `matrix.npy` (float32), `idf.npy` (float32, one weight per
row), and for static models `vocab.txt`. `models/embed/CURRENT` names the version the
control process embeds new catalogs with; a product index records the version its vectors
came from, and workers load that one.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import numpy as np

from adserver.common.hashing import text_features
from adserver.common.text import tokens
from adserver.formats import versions
from adserver.formats.versions import sha256_file
from adserver.kernels import embed as kernel

FORMAT = 1
BUCKETS = 1 << 18
WORD_SEED = 0x776F7264
GRAM_SEED = 0x6772616D
GRAM = 3
MAX_DIM = 4096
QUERY_CACHE = 20000  # search queries are heavily skewed: most repeat


class ModelError(Exception):
    """A model directory that cannot be used (named file and reason)."""


def hashed_features(
    text: str, buckets: int, word_weight: float, gram_weight: float
) -> tuple[np.ndarray, np.ndarray]:
    """(bucket ids, kind weights) of a text under the hashed model, repeats kept: the words'
    ids, then the character 3-grams of each "<word>" (Cython: adserver._hashing.text_features;
    its twin is adserver/kernels/hashing_ref.text_features)."""
    return text_features(
        tokens(text), buckets, word_weight, gram_weight, WORD_SEED, GRAM_SEED, GRAM
    )


def product_text(title: str, brand: str, category: list[str]) -> str:
    """What a product's embedding is computed from: its title, its brand when the title does
    not name it (a brand named twice made products of one brand alike across categories), and
    its category path."""
    parts = [title] if not brand or brand.lower() in title.lower() else [title, brand]
    return " ".join([*parts, *category])


class Model:
    """A loaded, verified embedding model version."""

    def __init__(self, path: str):
        self.path = path
        try:
            with open(os.path.join(path, "manifest.json")) as src:
                m = json.load(src)
        except (OSError, ValueError) as e:
            raise ModelError(f"{path}/manifest.json: {e}") from None
        if m.get("format") != FORMAT or m.get("kind") not in ("hashed", "static"):
            raise ModelError(f"{path}: not an embedding model of format {FORMAT}")
        for name, digest in m["checksums"].items():
            file = os.path.join(path, name)
            if not os.path.exists(file) or sha256_file(file) != digest:
                raise ModelError(f"{path}/{name} is missing or does not match its checksum")
        self.manifest = m
        self.version: str = m["version"]
        self.kind: str = m["kind"]
        self.matrix = np.load(os.path.join(path, "matrix.npy"), mmap_mode="r").view(np.ndarray)
        self.idf = np.load(os.path.join(path, "idf.npy"), mmap_mode="r").view(np.ndarray)
        self.dim: int = int(self.matrix.shape[1])
        if self.dim != m["dim"] or self.idf.shape[0] != self.matrix.shape[0]:
            raise ModelError(
                f"{path}: matrix {self.matrix.shape} and idf {self.idf.shape}"
                f" disagree with the manifest's dim {m['dim']}"
            )
        self.word_weight = float(m.get("word_weight", 1.0))
        self.gram_weight = float(m.get("gram_weight", 0.0))
        self.vocab: dict[str, int] = {}
        if self.kind == "static":
            with open(os.path.join(path, "vocab.txt"), encoding="utf-8") as src:
                for row, line in enumerate(src):
                    toks = tokens(line.strip())
                    if len(toks) == 1:  # a line that is not one word never matches a token
                        self.vocab.setdefault(toks[0], row)
        self._cache: dict[str, tuple[np.ndarray | None, float]] = {}
        # hashed: the buckets the training texts used (an unseen bucket has the largest idf,
        # log(1 + n) + 1; one seen even once has at most log((1 + n) / 2) + 1)
        self.seen = self.idf < self.idf.max() - 0.3 if self.kind == "hashed" else None

    def known_share(self, text: str) -> float:
        """The share of a text's words the model was trained on (hashed), or knows (static)."""
        words = tokens(text)
        if not words:
            return 0.0
        if self.seen is None:
            return sum(w in self.vocab for w in words) / len(words)
        ids, _ = self.features(text)
        return float(self.seen[ids[: len(words)]].mean())  # the words' ids come first

    def features(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(row ids, kind weights) of a text, repeats kept."""
        if self.kind == "hashed":
            return hashed_features(text, self.matrix.shape[0], self.word_weight, self.gram_weight)
        rows = [self.vocab[t] for t in tokens(text) if t in self.vocab]
        return np.array(rows, dtype=np.int64), np.ones(len(rows), dtype=np.float32)

    def embed(self, text: str) -> np.ndarray | None:
        """The unit vector of a text (float32), or None when the model knows none of it."""
        return self._embed(text)[0]

    def _embed(self, text: str) -> tuple[np.ndarray | None, float]:
        ids, kinds = self.features(text)
        out = np.empty(self.dim, dtype=np.float64)
        coverage = kernel.embed(ids, kinds, self.idf, self.matrix, out)
        if coverage <= 0:
            return None, 0.0
        if self.kind == "static":  # rows need not be orthonormal: count known words instead
            words = len(tokens(text))
            coverage = ids.shape[0] / words if words else 0.0
        else:
            # the share the projection keeps, or the share of words seen in training when
            # more: a word seen in a handful of products is known, though the projection of
            # a large catalog keeps little of it; a typo still counts through its 3-grams
            coverage = min(1.0, max(coverage, self.known_share(text)))
        return out.astype(np.float32), coverage

    def query(self, text: str) -> tuple[np.ndarray | None, float]:
        """(unit vector or None, confidence 0-1) of a search text, cached per text (callers
        must not modify the array). Confidence is the square root of the coverage: how much
        of the text the model represents (adserver/kernels/embed.py), or of its words the
        model was trained on when more; relevance to a query is cosine x confidence, so a
        query of unknown words matches nothing well."""
        found = self._cache.get(text)
        if found is None:
            if len(self._cache) >= QUERY_CACHE:
                self._cache.clear()
            vec, coverage = self._embed(text)
            found = self._cache[text] = (vec, coverage**0.5)
        return found


# ---- files ---------------------------------------------------------------------------


def models_dir(data_dir: str) -> str:
    return os.path.join(data_dir, "models", "embed")


def write(
    data_dir: str,
    kind: str,
    matrix: np.ndarray,
    idf: np.ndarray,
    settings: dict[str, Any],
    vocab: list[str] | None = None,
) -> str:
    """Write a model version (temp directory, fsync, rename) and return its name; it is not
    CURRENT until `publish`."""
    check_arrays(matrix, idf, None if vocab is None else len(vocab))
    root = models_dir(data_dir)
    version, tmp = versions.begin(root, 6)
    files = {
        "matrix.npy": np.ascontiguousarray(matrix, dtype=np.float32),
        "idf.npy": np.ascontiguousarray(idf, dtype=np.float32),
    }
    for name, arr in files.items():
        np.save(os.path.join(tmp, name), arr)
    names = list(files)
    if vocab is not None:
        with open(os.path.join(tmp, "vocab.txt"), "w", encoding="utf-8") as out:
            out.writelines(t + "\n" for t in vocab)
        names.append("vocab.txt")
    manifest = {
        "format": FORMAT,
        "kind": kind,
        "version": version,
        "dim": int(matrix.shape[1]),
        "rows": int(matrix.shape[0]),
        "created_at": time.time(),
        **settings,
        "checksums": {n: sha256_file(os.path.join(tmp, n)) for n in names},
    }
    versions.seal_with_manifest(root, tmp, version, manifest, names)
    return version


def check_arrays(matrix: np.ndarray, idf: np.ndarray, vocab_rows: int | None) -> None:
    """Shape and value rules every model must meet (ModelError names the broken one)."""
    if matrix.ndim != 2 or not 2 <= matrix.shape[1] <= MAX_DIM or matrix.shape[0] < 1:
        raise ModelError(
            f"matrix.npy: shape {matrix.shape}; want (rows, dim) with dim from 2 to {MAX_DIM}"
        )
    if vocab_rows is not None and vocab_rows != matrix.shape[0]:
        raise ModelError(
            f"vocab.txt has {vocab_rows} tokens but matrix.npy has {matrix.shape[0]} rows"
        )
    if idf.shape != (matrix.shape[0],):
        raise ModelError(f"weights: shape {idf.shape}; want ({matrix.shape[0]},)")
    if not (np.isfinite(matrix).all() and np.isfinite(idf).all()):
        raise ModelError("the matrix or the weights hold NaN or infinite values")


def publish(data_dir: str, version: str) -> None:
    versions.publish(models_dir(data_dir), version)


def current(data_dir: str) -> str | None:
    return versions.current(models_dir(data_dir))


def load(data_dir: str, version: str) -> Model:
    return Model(os.path.join(models_dir(data_dir), version))


def read_static(path: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """An ops-supplied model directory: `vocab.txt`, `matrix.npy` and optionally
    `weights.npy`; checked (ModelError with the file and the problem) and returned."""
    try:
        with open(os.path.join(path, "vocab.txt"), encoding="utf-8") as src:
            vocab = [line.rstrip("\n") for line in src]
        matrix = np.load(os.path.join(path, "matrix.npy"), allow_pickle=False)
        weights_file = os.path.join(path, "weights.npy")
        weights = (
            np.load(weights_file, allow_pickle=False)
            if os.path.exists(weights_file)
            else np.ones(matrix.shape[0], dtype=np.float32)
        )
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise ModelError(f"{path}: {e}") from None
    if matrix.dtype.kind != "f" or weights.dtype.kind != "f":
        raise ModelError("matrix.npy and weights.npy must hold floating-point numbers")
    check_arrays(matrix, weights, len(vocab))
    return matrix.astype(np.float32), weights.astype(np.float32), vocab
