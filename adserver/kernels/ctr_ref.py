"""Plain-Python twin of adserver/kernels/ctr.py, for the tests."""

from __future__ import annotations

import math

EPS = 1e-12


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def recalibrate(q: float, rate: float) -> float:
    return q if rate >= 1.0 else q / (q + (1.0 - q) / rate)


def score(weights, bias, offsets, idx, rate, out) -> None:  # type: ignore[no-untyped-def]
    for i, row in enumerate(idx.tolist()):
        s = float(bias) + (float(offsets[i]) if len(offsets) == len(idx) else 0.0)
        s += sum(float(weights[b]) for b in row if b >= 0)
        out[i] = recalibrate(sigmoid(s), rate)


def _weight(z: float, n: float, alpha: float, beta: float, l1: float, l2: float) -> float:
    if abs(z) <= l1:
        return 0.0
    return -(z - math.copysign(l1, z)) / ((beta + math.sqrt(n)) / alpha + l2)


def ftrl(ptr, idx, y, sw, z, nsq, alpha, beta, l1, l2, epochs) -> float:  # type: ignore[no-untyped-def]
    nb = len(z) - 1
    total = 0.0
    for _ in range(epochs):
        total = 0.0
        for e in range(len(ptr) - 1):
            feats = idx[ptr[e] : ptr[e + 1]].tolist()
            coords = [(nb, 0.0)] + [(c, l1) for c in feats]
            s = sum(_weight(z[c], nsq[c], alpha, beta, r, l2) for c, r in coords)
            p = sigmoid(s)
            pc = min(max(p, EPS), 1.0 - EPS)
            total += -sw[e] * (y[e] * math.log(pc) + (1.0 - y[e]) * math.log(1.0 - pc))
            g = (p - y[e]) * sw[e]
            for c, r in coords:
                w = _weight(z[c], nsq[c], alpha, beta, r, l2)
                sigma = (math.sqrt(nsq[c] + g * g) - math.sqrt(nsq[c])) / alpha
                z[c] += g - sigma * w
                nsq[c] += g * g
    return total


def weights(z, nsq, alpha, beta, l1, l2, out) -> None:  # type: ignore[no-untyped-def]
    nb = len(z) - 1
    for i in range(nb):
        out[i] = _weight(z[i], nsq[i], alpha, beta, l1, l2)
    out[nb] = _weight(z[nb], nsq[nb], alpha, beta, 0.0, l2)


def warm() -> None:
    pass
