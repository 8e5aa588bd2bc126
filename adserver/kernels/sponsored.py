"""Sponsored-product kernels (Numba): the relevance gate, and the ads of retrieved products.
Twin: adserver/kernels/sponsored_ref.py.

`product_ads`: the ad rows of the given product rows (`sp_prow`: the product rows that have
sponsored ads, sorted; `sp_ptr`/`sp_rows`: each one's ad rows, best first), in the order of
`prows`, keeping only ads whose type is in `types`.

`gate`:

For each candidate row (of a placement's passing rows), in `reasons` 0 (kept) or why it is
dropped and in `rel` its relevance; the kept rows, in order, go to `out_rows` and the factor
their auction quality gets to `out_boost` (both as long as `rows`; one call returns what
the auction needs, where numpy masks over the results cost more than the kernel's loop):

- rows whose ad type is not in `types` are kept with boost 1 (other formats in the placement);
- relevance: 0 with an active context, 1 without; cosine of `query` and the product's vector
  times `confidence` when there is a query vector (shape (0,) for none); 1 for the first
  `n_matched` rows (keyword or category matches); clipped to [0, 1]. With `use_quality`, the retailer's
  score for the product (sorted `qrows`, `qscores`; 1 when absent) instead, and no threshold;
- kept: relevance >= `threshold`, not the `exclude` product row, and available (NOT_RELEVANT
  or UNAVAILABLE otherwise);
- boost: (the ad's Kevel relevancy score / 1000 when it has one, else relevance) ^ `alpha`;
- one ad per product: among kept rows promoting the same product, only the highest static eCPM
  (price x prior quality x boost; ties: the earlier row) stays, the others are DEDUPED.

Returns how many rows are kept.
"""

from __future__ import annotations

import numpy as np
from numba import njit

KEPT, DEDUPED, NOT_RELEVANT, UNAVAILABLE = 0, 11, 18, 19
RATE_CPM, RATE_CPC, RATE_CPA = 1, 2, 3


@njit(cache=True, nogil=True, fastmath=True)
def _dot(query, vectors, p):
    """query . vectors[p], in float64. fastmath lets the sum be reassociated (vectorized):
    a plain loop's chain of dependent additions cost ~4 us for 32 products x 64 dims."""
    s = 0.0
    for j in range(query.shape[0]):
        s += float(query[j]) * float(vectors[p, j])
    return s


@njit(cache=True, nogil=True)
def gate(rows, n_matched, ad_type, ad_product, ad_relevancy, ad_flight, fl_rate, fl_price,
         prior_ctr, prior_cvr, types, vectors, available, query, confidence, active,
         qrows, qscores, use_quality, exclude, threshold, alpha, out_rows, out_boost, reasons,
         rel):
    n = rows.shape[0]
    d = query.shape[0]
    score = np.zeros(n)
    boost = np.empty(n)
    prows = np.empty(n, dtype=np.int64)
    kept = 0
    for i in range(n):
        row = rows[i]
        p = ad_product[row]
        prows[i] = p
        ours = False
        for t in types:
            if ad_type[row] == t:
                ours = True
                break
        r = 0.0 if active else 1.0
        if i < n_matched:
            r = 1.0
        elif d > 0 and p >= 0:  # (a matched row's vector is never read: random pages)
            r = _dot(query, vectors, p) * confidence
        r = min(max(r, 0.0), 1.0)
        avail = p < 0 or available[p] != 0
        relevant = r >= threshold and p != exclude
        if use_quality:
            r = 1.0
            k = np.searchsorted(qrows, p)
            if k < qrows.shape[0] and qrows[k] == p:
                r = qscores[k]
            relevant = p != exclude
        rel[i] = r
        if not ours:
            boost[i] = 1.0
            reasons[i] = KEPT
            kept += 1
            continue
        rank = ad_relevancy[row] / 1000.0 if ad_relevancy[row] > 0 else r
        boost[i] = rank ** alpha if alpha != 1.0 else rank
        if relevant and avail:
            reasons[i] = KEPT
            kept += 1
            f = ad_flight[row]
            rate = fl_rate[f]
            q = 1.0 if rate == RATE_CPM else (
                prior_ctr[row] * 1000.0 if rate == RATE_CPC else (
                    prior_cvr[row] * 1000.0 if rate == RATE_CPA else 0.0))
            score[i] = fl_price[f] * q * boost[i]
        else:
            reasons[i] = UNAVAILABLE if not avail else NOT_RELEVANT
            prows[i] = -1  # out of the one-ad-per-product contest
    for i in range(n):  # other formats never compete for a product
        ours = False
        for t in types:
            if ad_type[rows[i]] == t:
                ours = True
        if not ours:
            prows[i] = -1
    order = np.argsort(prows, kind="mergesort")
    i = 0
    while i < n:
        p = prows[order[i]]
        k = i
        while k < n and prows[order[k]] == p:
            k += 1
        if p >= 0 and k - i > 1:
            best = order[i]
            for m in range(i + 1, k):
                if score[order[m]] > score[best]:
                    best = order[m]
            for m in range(i, k):
                if order[m] != best:
                    reasons[order[m]] = DEDUPED
                    kept -= 1
        i = k
    m = 0
    for i in range(n):
        if reasons[i] == KEPT:
            out_rows[m] = rows[i]
            out_boost[m] = boost[i]
            m += 1
    return kept


@njit(cache=True, nogil=True)
def product_ads(prows, sp_prow, sp_ptr, sp_rows, ad_type, types):
    n_sp = sp_prow.shape[0]
    found = np.empty(prows.shape[0], dtype=np.int64)  # each product's place in sp_prow
    total = 0
    for i in range(prows.shape[0]):
        k = np.searchsorted(sp_prow, prows[i]) if n_sp else 0
        if k < n_sp and sp_prow[k] == prows[i]:
            found[i] = k
            total += sp_ptr[k + 1] - sp_ptr[k]
        else:
            found[i] = -1
    out = np.empty(total, dtype=sp_rows.dtype)
    m = 0
    for i in range(prows.shape[0]):
        k = found[i]
        if k < 0:
            continue
        for j in range(sp_ptr[k], sp_ptr[k + 1]):
            row = sp_rows[j]
            for t in types:
                if ad_type[row] == t:
                    out[m] = row
                    m += 1
                    break
    return out[:m]
