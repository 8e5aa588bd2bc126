"""Plain-Python twin of adserver/kernels/bandit.py, for the tests."""

from __future__ import annotations

import math

EPSILON_GREEDY, SOFTMAX = 0, 1


def scores(weights, ptr, idx, val, out) -> None:  # type: ignore[no-untyped-def]
    for a in range(len(ptr) - 1):
        out[a] = sum(float(weights[idx[j]]) * float(val[j]) for j in range(ptr[a], ptr[a + 1]))


def probabilities(s, allowed, kind, epsilon, lam, out) -> None:  # type: ignore[no-untyped-def]
    live = [a for a in range(len(s)) if allowed[a]]
    for a in range(len(s)):
        out[a] = 0.0
    if not live:
        return
    best = max(live, key=lambda a: (s[a], -a))
    if kind == EPSILON_GREEDY:
        for a in live:
            out[a] = epsilon / len(live) + (1.0 - epsilon if a == best else 0.0)
        return
    e = {a: math.exp(lam * (s[a] - s[best])) for a in live}
    total = sum(e.values())
    for a in live:
        out[a] = e[a] / total


def learn(weights, acc, ptr, idx, val, targets, importance, lr) -> float:  # type: ignore[no-untyped-def]
    total = 0.0
    for e in range(len(ptr) - 1):
        js = range(ptr[e], ptr[e + 1])
        pred = sum(float(weights[idx[j]]) * float(val[j]) for j in js)
        err = float(targets[e]) - pred
        total += err * err
        g = float(importance[e]) * err
        for j in js:
            gj = g * float(val[j])
            acc[idx[j]] = acc[idx[j]] + gj * gj
            if acc[idx[j]] > 0.0:
                weights[idx[j]] = weights[idx[j]] + lr * gj / math.sqrt(float(acc[idx[j]]))
    return total


def floors(p, floor, allowed) -> None:  # type: ignore[no-untyped-def]
    live = [a for a in range(len(p)) if allowed[a]]
    need = sum(float(floor[a]) for a in live)
    scale = 1.0 / need if need > 1.0 else 1.0
    lifted: set[int] = set()
    while True:
        left = 1.0 - sum(float(floor[a]) * scale for a in lifted)
        rest = sum(float(p[a]) for a in live if a not in lifted)
        under = {
            a
            for a in live
            if a not in lifted
            and (float(p[a]) * left / rest if rest > 0 else 0.0) < float(floor[a]) * scale
        }
        if not under:
            break
        lifted |= under
    out = [0.0] * len(p)
    for a in live:
        if a in lifted:
            out[a] = float(floor[a]) * scale
        else:
            out[a] = float(p[a]) * left / rest if rest > 0 else left / max(1, len(p))
    for a in range(len(p)):
        p[a] = out[a]


def warm() -> None:
    pass
