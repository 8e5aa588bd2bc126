"""Text embedding kernel (Numba). Twin: adserver/kernels/embed_ref.py.

`embed` turns a text's feature ids (with repeats) into a unit vector: each distinct id gets
the weight (1 + ln count) x idf[id] x the mean of its occurrences' kind weights, the rows of
`matrix` are summed with those weights, and the sum is scaled to length 1. Returns the
coverage: the sum's length before scaling over the length of the weight vector (for an
orthonormal projection such as LSA's, the share of the text the model's space keeps; a text
of words the model never saw scores near 0). 0: nothing known, and `out` is all zeros.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def embed(ids, kind_w, idf, matrix, out):
    n = ids.shape[0]
    d = matrix.shape[1]
    for j in range(d):
        out[j] = 0.0
    if n == 0:
        return 0.0
    order = np.argsort(ids, kind="mergesort")
    xnorm = 0.0
    i = 0
    while i < n:
        b = ids[order[i]]
        count = 0
        kw = 0.0
        k = i
        while k < n and ids[order[k]] == b:
            count += 1
            kw += kind_w[order[k]]
            k += 1
        w = (1.0 + math.log(count)) * idf[b] * (kw / count)
        xnorm += w * w
        for j in range(d):
            out[j] += w * matrix[b, j]
        i = k
    norm = 0.0
    for j in range(d):
        norm += out[j] * out[j]
    norm = math.sqrt(norm)
    if norm > 0.0:
        for j in range(d):
            out[j] /= norm
        return norm / math.sqrt(xnorm)
    return 0.0
