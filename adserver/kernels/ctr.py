"""CTR/CVR model kernels (Numba): logistic scoring over hashed features and FTRL-Proximal
training. Twin: adserver/kernels/ctr_ref.py.

`score`: p = sigmoid(bias + offsets[i] + sum of the weights of row i's buckets; `offsets`
shape (0,) for none: the serving path sums the ad features' weights once per snapshot and
model and passes them here), then recalibrated for
negative downsampling: a model trained on all positives and a share `rate` of negatives
predicts q = p / (p + (1 - p) rate), so p = q / (q + (1 - q) / rate).

`ftrl`: FTRL-Proximal (McMahan et al., KDD 2013), per-coordinate learning rates, L1 and L2;
examples are rows of a CSR matrix of buckets (`ptr`, `idx`), label `y` (0/1) and weight `sw`
(downsampled negatives weigh 1 here: recalibration happens at scoring). The bias is the
coordinate `z.shape[0] - 1` and takes no L1. Returns the progressive (before-update) log
loss summed over the examples of the last epoch.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

EPS = 1e-12


@njit(cache=True, nogil=True)
def sigmoid(x):
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@njit(cache=True, nogil=True)
def recalibrate(q, rate):
    if rate >= 1.0:
        return q
    return q / (q + (1.0 - q) / rate)


@njit(cache=True, nogil=True)
def score(weights, bias, offsets, idx, rate, out):
    n, k = idx.shape
    has_offsets = offsets.shape[0] == n
    for i in range(n):
        s = bias
        if has_offsets:
            s += offsets[i]
        for j in range(k):
            b = idx[i, j]
            if b >= 0:
                s += weights[b]
        out[i] = recalibrate(sigmoid(s), rate)


@njit(cache=True, nogil=True)
def _weight(z, n, alpha, beta, l1, l2):
    if abs(z) <= l1:
        return 0.0
    sign = 1.0 if z > 0 else -1.0
    return -(z - sign * l1) / ((beta + math.sqrt(n)) / alpha + l2)


@njit(cache=True, nogil=True)
def ftrl(ptr, idx, y, sw, z, nsq, alpha, beta, l1, l2, epochs):
    nb = z.shape[0] - 1  # the bias coordinate
    total = 0.0
    for _ in range(epochs):
        total = 0.0
        for e in range(ptr.shape[0] - 1):
            a, b = ptr[e], ptr[e + 1]
            s = _weight(z[nb], nsq[nb], alpha, beta, 0.0, l2)
            for j in range(a, b):
                s += _weight(z[idx[j]], nsq[idx[j]], alpha, beta, l1, l2)
            p = sigmoid(s)
            pc = min(max(p, EPS), 1.0 - EPS)
            total += -sw[e] * (y[e] * math.log(pc) + (1.0 - y[e]) * math.log(1.0 - pc))
            g = (p - y[e]) * sw[e]
            g2 = g * g
            w = _weight(z[nb], nsq[nb], alpha, beta, 0.0, l2)
            sigma = (math.sqrt(nsq[nb] + g2) - math.sqrt(nsq[nb])) / alpha
            z[nb] += g - sigma * w
            nsq[nb] += g2
            for j in range(a, b):
                c = idx[j]
                w = _weight(z[c], nsq[c], alpha, beta, l1, l2)
                sigma = (math.sqrt(nsq[c] + g2) - math.sqrt(nsq[c])) / alpha
                z[c] += g - sigma * w
                nsq[c] += g2
    return total


@njit(cache=True, nogil=True)
def weights(z, nsq, alpha, beta, l1, l2, out):
    """The model's weights from FTRL's state (the last entry is the bias)."""
    nb = z.shape[0] - 1
    for i in range(nb):
        out[i] = _weight(z[i], nsq[i], alpha, beta, l1, l2)
    out[nb] = _weight(z[nb], nsq[nb], alpha, beta, 0.0, l2)


def warm() -> None:
    """Compile the serving kernel before the first request."""
    out = np.zeros(1)
    for offsets in (np.zeros(0), np.zeros(1)):
        score(
            np.zeros(4, dtype=np.float32), 0.0, offsets, np.zeros((1, 2), dtype=np.int32), 1.0, out
        )
