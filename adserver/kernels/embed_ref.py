"""Plain-Python twin of adserver/kernels/embed.py, for the tests."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np


def embed(ids, kind_w, idf, matrix, out):
    count: dict[int, int] = defaultdict(int)
    kinds: dict[int, float] = defaultdict(float)
    for b, w in zip(ids.tolist(), kind_w.tolist()):
        count[b] += 1
        kinds[b] += w
    total = np.zeros(matrix.shape[1])
    weights = []
    for b in sorted(count):
        weight = (1.0 + math.log(count[b])) * float(idf[b]) * (kinds[b] / count[b])
        weights.append(weight)
        total += weight * matrix[b].astype(np.float64)
    norm = math.sqrt(float(total @ total))
    out[:] = total / norm if norm > 0 else 0.0
    return norm / math.sqrt(sum(w * w for w in weights)) if norm > 0 else 0.0
