"""Build a `hashed` embedding model from catalog texts (control process only; uses scipy).

TF-IDF over hashed words and character 3-grams (adserver/learn/embed.py), rows scaled to
length 1, then a rank-`dim` truncated SVD (64, or n/16 but at least 8 for catalogs under
1,024 products) by the randomized range finder (Halko, Martinsson
and Tropp 2011: `oversample` extra columns, `power_iters` power iterations). The model's
matrix is the top right singular vectors (buckets x dim): a text's embedding is its TF-IDF
row times that matrix, scaled to length 1, which is what the kernel computes.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from adserver.learn import embed

DIM = 64
WORD_WEIGHT = 1.0
GRAM_WEIGHT = 0.5
SAMPLE = 200_000  # texts the SVD is fitted on; every product is embedded afterwards
OVERSAMPLE = 10
POWER_ITERS = 4


def tfidf(
    texts: list[str],
    buckets: int,
    word_weight: float,
    gram_weight: float,
    idf: np.ndarray | None = None,
) -> tuple[sp.csr_matrix, np.ndarray]:
    """(TF-IDF rows scaled to length 1, idf per bucket); `idf` given: reuse it."""
    rows, ids, kinds = [], [], []
    for i, text in enumerate(texts):
        b, k = embed.hashed_features(text, buckets, word_weight, gram_weight)
        rows.append(np.full(b.shape[0], i, dtype=np.int64))
        ids.append(b)
        kinds.append(k)
    r = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    c = np.concatenate(ids) if ids else np.zeros(0, dtype=np.int64)
    k = np.concatenate(kinds) if kinds else np.zeros(0, dtype=np.float32)
    shape = (len(texts), buckets)
    count = sp.csr_matrix((np.ones(r.shape[0]), (r, c)), shape=shape)
    kind = sp.csr_matrix((k.astype(np.float64), (r, c)), shape=shape)
    count.sum_duplicates()
    kind.sum_duplicates()
    if idf is None:
        df = np.bincount(count.indices, minlength=buckets)
        idf = np.log((1.0 + len(texts)) / (1.0 + df)) + 1.0
    tf = (1.0 + np.log(count.data)) * (kind.data / count.data) * idf[count.indices]
    x = sp.csr_matrix((tf, count.indices, count.indptr), shape=shape)
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / norms) @ x), idf


def fit(
    texts: list[str],
    dim: int = DIM,
    buckets: int = embed.BUCKETS,
    word_weight: float = WORD_WEIGHT,
    gram_weight: float = GRAM_WEIGHT,
    sample: int = SAMPLE,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """(matrix buckets x dim, idf, settings for the manifest)."""
    rng = np.random.default_rng(seed)
    if len(texts) > sample:
        texts = [texts[i] for i in rng.choice(len(texts), sample, replace=False)]
    x, idf = tfidf(texts, buckets, word_weight, gram_weight)
    used = np.flatnonzero(np.bincount(x.indices, minlength=buckets))  # buckets the texts hit
    x = sp.csr_matrix(x[:, used])
    k = min(dim + OVERSAMPLE, min(x.shape))
    q, _ = np.linalg.qr(x @ rng.standard_normal((x.shape[1], k)))
    for _ in range(POWER_ITERS):
        q, _ = np.linalg.qr(x @ (x.T @ q))  # normalising the short side is enough here
    small = np.asarray((x.T @ q).T)  # k x used buckets
    _, s, vt = np.linalg.svd(small, full_matrices=False)
    matrix = np.zeros((buckets, dim), dtype=np.float32)
    top = min(dim, vt.shape[0])
    matrix[used, :top] = vt[:top].T
    settings = {
        "word_weight": word_weight,
        "gram_weight": gram_weight,
        "buckets": buckets,
        "gram": embed.GRAM,
        "fitted_on": len(texts),
        "singular_values": [round(float(v), 4) for v in s[:top]],
    }
    return matrix, idf.astype(np.float32), settings


def auto_dim(n_texts: int) -> int:
    """DIM for a real catalog; fewer for a small one, whose few words a 64-dimensional space
    would keep apart (no generalisation: "earbuds" would not come near "headphones")."""
    return min(DIM, max(8, n_texts // 16))


def build(
    data_dir: str,
    texts: list[str],
    dim: int | None = None,
    seed: int = 0,
    catalog_seq: int = 0,
    reason: str = "first catalog",
) -> str:
    """Fit on `texts`, write the version and return its name (not yet CURRENT). `dim`
    defaults to `auto_dim` of the catalog size. The manifest records what the model was
    trained on (`trained_on` texts, the catalog's change number `catalog_seq`) and why, which
    adserver/control/catalog.outgrown reads."""
    matrix, idf, settings = fit(texts, dim=dim or auto_dim(len(texts)), seed=seed)
    settings.update(trained_on=len(texts), catalog_seq=catalog_seq, reason=reason)
    return embed.write(data_dir, "hashed", matrix, idf, settings)
