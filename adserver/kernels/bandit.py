"""Contextual bandit kernels (Numba). Twin: adserver/kernels/bandit_ref.py.

`scores`: each action's predicted reward, the dot product of the weights with its CSR row of
feature buckets and values (adserver._hashing.action_features).

`probabilities`: the exploration the policy applies to those scores, over the actions not
excluded (`allowed`): epsilon-greedy (the best action gets 1 - epsilon + epsilon / n, every
other epsilon / n; ties: the earliest, the baseline first) or softmax with inverse
temperature `lam` (p proportional to exp(lam x score)). Excluded actions get 0.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

EPSILON_GREEDY, SOFTMAX = 0, 1


@njit(cache=True, nogil=True)
def scores(weights, ptr, idx, val, out):
    for a in range(ptr.shape[0] - 1):
        s = 0.0
        for j in range(ptr[a], ptr[a + 1]):
            s += weights[idx[j]] * val[j]
        out[a] = s


@njit(cache=True, nogil=True)
def probabilities(s, allowed, kind, epsilon, lam, out):
    n = s.shape[0]
    m = 0
    best = -1
    for a in range(n):
        out[a] = 0.0
        if allowed[a]:
            m += 1
            if best < 0 or s[a] > s[best]:
                best = a
    if m == 0:
        return
    if kind == EPSILON_GREEDY:
        for a in range(n):
            if allowed[a]:
                out[a] = epsilon / m
        out[best] += 1.0 - epsilon
        return
    top = s[best]
    total = 0.0
    for a in range(n):
        if allowed[a]:
            out[a] = math.exp(lam * (s[a] - top))
            total += out[a]
    for a in range(n):
        out[a] /= total


@njit(cache=True, nogil=True)
def learn(weights, acc, ptr, idx, val, targets, importance, lr):
    """One pass of importance-weighted squared-loss updates with per-coordinate adaptive
    rates (AdaGrad): row e of the CSR matrix is the features of the action logged for
    example e, `targets[e]` its reward and `importance[e]` 1 / the probability it was chosen
    with. g = importance x (target - prediction); each coordinate j accumulates (g x_j)^2 in
    `acc` and moves lr x g x_j / sqrt(acc_j): a step is at most `lr` per coordinate however
    large the importance, and the rates fall as evidence accumulates. Returns the squared
    error summed before each update."""
    total = 0.0
    for e in range(ptr.shape[0] - 1):
        a, b = ptr[e], ptr[e + 1]
        pred = 0.0
        for j in range(a, b):
            pred += weights[idx[j]] * val[j]
        err = targets[e] - pred
        total += err * err
        g = importance[e] * err
        for j in range(a, b):
            gj = g * val[j]
            acc[idx[j]] += gj * gj
            if acc[idx[j]] > 0.0:
                weights[idx[j]] += lr * gj / math.sqrt(acc[idx[j]])
    return total


@njit(cache=True, nogil=True)
def floors(p, floor, allowed):
    """Give each allowed action at least its `floor` share, taking the difference from the
    others in proportion to what they have (a business rule's minimum exploration). When the
    floors add up to more than 1 they are scaled to 1."""
    n = p.shape[0]
    need = 0.0
    for a in range(n):
        if allowed[a]:
            need += floor[a]
    scale = 1.0 / need if need > 1.0 else 1.0
    lifted = np.zeros(n, dtype=np.bool_)
    changed = True
    while changed:  # lift those under their floor; the rest share what is left
        changed = False
        fixed = 0.0
        rest = 0.0
        for a in range(n):
            if not allowed[a]:
                continue
            if lifted[a]:
                fixed += floor[a] * scale
            else:
                rest += p[a]
        left = 1.0 - fixed
        for a in range(n):
            if allowed[a] and not lifted[a]:
                share = p[a] * left / rest if rest > 0.0 else 0.0
                if share < floor[a] * scale:
                    lifted[a] = True
                    changed = True
        if not changed:
            for a in range(n):
                if not allowed[a]:
                    p[a] = 0.0
                elif lifted[a]:
                    p[a] = floor[a] * scale
                else:
                    p[a] = p[a] * left / rest if rest > 0.0 else left / max(1, n)


def warm() -> None:
    w = np.zeros(4, dtype=np.float32)
    out = np.zeros(1)
    scores(w, np.array([0, 1]), np.zeros(1, dtype=np.int32), np.ones(1), out)
    probabilities(out, np.ones(1, dtype=np.bool_), 0, 0.2, 1.0, np.zeros(1))
    floors(np.ones(1), np.zeros(1), np.ones(1, dtype=np.bool_))
