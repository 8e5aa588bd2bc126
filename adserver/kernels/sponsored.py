"""Sponsored-product kernel (Numba): the ads of retrieved products.
Twin: adserver/kernels/sponsored_ref.py.

`product_ads`: the ad rows of the given product rows (`sp_prow`: the product rows that have
sponsored ads, sorted; `sp_ptr`/`sp_rows`: each one's ad rows, best first), in the order of
`prows`, keeping only ads whose type is in `types`.

The relevance gate is Cython (native/_sponsored.pyx, `Gate`); its rules and its twin:
adserver/kernels/sponsored_ref.py. The reason codes and rate types below are shared.
"""

from __future__ import annotations

import numpy as np
from numba import njit

KEPT, DEDUPED, NOT_RELEVANT, UNAVAILABLE = 0, 11, 18, 19
RATE_CPM, RATE_CPC, RATE_CPA = 1, 2, 3


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
