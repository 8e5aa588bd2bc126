"""Plain-Python twins of the sponsored-product kernels (native/_sponsored.pyx, `Gate`), written
as the rules read: the relevance gate and the ads of retrieved products.

`product_ads` (`Gate.product_ads`, the snapshot's columns bound): the ad rows of the given
product rows (`sp_prow`: the product rows that have sponsored ads, sorted; `sp_ptr`/`sp_rows`:
each one's ad rows, best first), in the order of `prows`, keeping only ads whose type is in
`types`.

`gate` (native/_sponsored.pyx, `Gate.run`, with the snapshot's columns bound once):

For each candidate row (of a placement's passing rows), in `reasons` 0 (kept) or why it is
dropped and in `rel` its relevance; the kept rows, in order, go to `out_rows` and the factor
their auction quality gets to `out_boost` (both as long as `rows`; one call returns what
the auction needs, where numpy masks over the results cost more than the kernel's loop):

- rows whose ad type is not in `types` are kept with boost 1 (other formats in the placement);
- relevance: 0 with an active context, 1 without; cosine of `query` and the product's vector
  times `confidence` when there is a query vector (shape (0,) for none); 1 for the first
  `n_given` rows (category matches, or candidates the caller vouches for); for the rows
  after them up to `n_matched` (keyword matches) 1 when the measured relevance is at least
  `floor` (a keyword raises relevance only for a product that plausibly matches), else the
  measured relevance; clipped to [0, 1]. With `use_quality`, the retailer's
  score for the product (sorted `qrows`, `qscores`; 1 when absent) instead, and no threshold;
- kept: relevance >= `threshold`, not the `exclude` product row, and available (NOT_RELEVANT
  or UNAVAILABLE otherwise);
- boost: (the ad's Kevel relevancy score / 1000 when it has one, else relevance) ^ `alpha`;
- one ad per product: among kept rows promoting the same product, only the highest static eCPM
  (price x prior quality x boost; ties: the earlier row) stays, the others are DEDUPED.

Returns how many rows are kept.
"""

from __future__ import annotations

import bisect

import numpy as np

from adserver.kernels.sponsored import (
    DEDUPED,
    KEPT,
    NOT_RELEVANT,
    RATE_CPA,
    RATE_CPC,
    RATE_CPM,
    UNAVAILABLE,
)


def gate(
    rows,
    n_given,
    n_matched,
    ad_type,
    ad_product,
    ad_relevancy,
    ad_flight,
    fl_rate,
    fl_price,
    prior_ctr,
    prior_cvr,
    types,
    vectors,
    available,
    query,
    confidence,
    active,
    qrows,
    qscores,
    use_quality,
    exclude,
    threshold,
    floor,
    alpha,
    out_rows,
    out_boost,
    reasons,
    rel,
):
    types = set(types.tolist())
    boost = [1.0] * len(rows)
    contest: dict[int, list[tuple[float, int]]] = {}
    for i, row in enumerate(rows.tolist()):
        p = int(ad_product[row])
        r = 0.0 if active else 1.0
        if len(query) and p >= 0:
            r = sum(float(a) * float(b) for a, b in zip(query, vectors[p])) * confidence
        if i < n_given or (i < n_matched and r >= floor):
            r = 1.0
        r = min(max(r, 0.0), 1.0)
        avail = p < 0 or available[p] != 0
        relevant = r >= threshold and p != exclude
        if use_quality:
            k = bisect.bisect_left(qrows.tolist(), p)
            r = float(qscores[k]) if k < len(qrows) and qrows[k] == p else 1.0
            relevant = p != exclude
        rel[i] = r
        if int(ad_type[row]) not in types:
            boost[i], reasons[i] = 1.0, KEPT
            continue
        rank = ad_relevancy[row] / 1000.0 if ad_relevancy[row] > 0 else r
        boost[i] = rank**alpha if alpha != 1.0 else rank
        if not (relevant and avail):
            reasons[i] = UNAVAILABLE if not avail else NOT_RELEVANT
            continue
        reasons[i] = KEPT
        f = int(ad_flight[row])
        quality = {
            RATE_CPM: 1.0,
            RATE_CPC: prior_ctr[row] * 1000.0,
            RATE_CPA: prior_cvr[row] * 1000.0,
        }.get(int(fl_rate[f]), 0.0)
        if p >= 0:
            contest.setdefault(p, []).append((fl_price[f] * quality * boost[i], i))
    for entries in contest.values():
        best = max(entries, key=lambda e: (e[0], -e[1]))[1]  # highest score, then earliest
        for _, i in entries:
            if i != best:
                reasons[i] = DEDUPED
    kept = [i for i in range(len(rows)) if reasons[i] == KEPT]
    for m, i in enumerate(kept):
        out_rows[m], out_boost[m] = rows[i], boost[i]
    return len(kept)


def product_ads(prows, sp_prow, sp_ptr, sp_rows, ad_type, types):
    where = {int(p): k for k, p in enumerate(sp_prow.tolist())}
    wanted = set(types.tolist())
    out = [
        int(sp_rows[j])
        for p in prows.tolist()
        if p in where
        for j in range(sp_ptr[where[p]], sp_ptr[where[p] + 1])
        if int(ad_type[sp_rows[j]]) in wanted
    ]
    return np.array(out, dtype=sp_rows.dtype)
