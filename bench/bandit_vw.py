"""Our personalization learner against Vowpal Wabbit on the same simulated stream.

    .venv/bin/python -m bench.bandit_vw [--events 20000]

A world of 6 user types (each with a device and an interest) and 10 items (a category and a
price band); the true click probability favours one item per user type. Each event: rank
the 10 items for a user, show the chosen one, draw a click from the truth, learn from it at
once. Ours: the decision worker's ranking path (adserver/learn/bandit.py: featurize, hash
context x action pairs, score, epsilon-greedy probabilities, draw) and the control process's
update (adserver/kernels/bandit.learn, importance-aware IPS-weighted regression). VW: its
`--cb_explore_adf --epsilon 0.2 -q UA` (the same exploration) through pyvw, predict then
learn. Prints average reward (the true click probability of what was shown, so noise-free
per event) and events per second of rank alone and rank + learn.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from adserver.kernels import bandit as kernel
from adserver.learn import bandit

USERS = [
    {"device": d, "interest": i} for d in ("mobile", "desktop") for i in ("sport", "cook", "tech")
]
LEARNING_RATE = 0.03  # the learner's default (ADSERVER_PERSONALIZER_LEARNING_RATE)
ITEMS = [
    {"category": c, "price": p}
    for c in ("sport", "cook", "tech", "toys", "garden")
    for p in ("low", "high")
]


def truth(rng: np.random.Generator) -> np.ndarray:
    """(users, items) true click probabilities: a base, the matching category, a favourite."""
    t = rng.uniform(0.02, 0.1, (len(USERS), len(ITEMS)))
    for u, user in enumerate(USERS):
        for i, item in enumerate(ITEMS):
            if item["category"] == user["interest"]:
                t[u, i] += 0.25 if (item["price"] == "low") == (user["device"] == "mobile") else 0.1
    return t


class Ours:
    def __init__(self, lr: float = LEARNING_RATE) -> None:
        self.policy = bandit.Policy(exploration=bandit.Exploration(epsilon=0.2))
        self.acc = np.zeros_like(self.policy.weights)
        self.lr = lr
        self.acts = bandit.action_arrays([_A(f"i{i}", [f]) for i, f in enumerate(ITEMS)])
        self.allowed = np.ones(len(ITEMS), dtype=bool)

    def rank(self, u: int, rng: np.random.Generator) -> tuple[int, float, tuple]:
        ctx = bandit.context_arrays([{"user": USERS[u]}])
        rows = self.policy.rows(ctx, self.acts)
        p = self.policy.probabilities(self.policy.scores(rows), self.allowed)
        a = bandit.draw(p, float(rng.random()))
        return a, float(p[a]), rows

    def learn(self, rows: tuple, a: int, prob: float, reward: float) -> None:
        s, e = int(rows[0][a]), int(rows[0][a + 1])
        kernel.learn(
            self.policy.weights,
            self.acc,
            np.array([0, e - s]),
            rows[1][s:e],
            rows[2][s:e],
            np.array([reward]),
            np.array([1.0 / prob]),
            self.lr,
        )


class VW:
    def __init__(self) -> None:
        from vowpalwabbit import Workspace

        self.vw = Workspace("--cb_explore_adf --epsilon 0.2 -q UA --quiet")
        self.items = [f"|Action category={f['category']} price={f['price']}" for f in ITEMS]

    def lines(self, u: int) -> list[str]:
        user = USERS[u]
        return [f"shared |User device={user['device']} interest={user['interest']}", *self.items]

    def rank(self, u: int, rng: np.random.Generator) -> tuple[int, float, list[str]]:
        ex = self.lines(u)
        pmf = np.array(self.vw.predict(ex))
        a = bandit.draw(pmf / pmf.sum(), float(rng.random()))
        return a, float(pmf[a]), ex

    def learn(self, ex: list[str], a: int, prob: float, reward: float) -> None:
        labelled = list(ex)
        labelled[1 + a] = f"0:{-reward}:{prob} {labelled[1 + a]}"
        self.vw.learn(labelled)


def run(
    agent: object, events: int, t: np.ndarray, seed: int, learn: bool = True
) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    users = rng.integers(0, len(USERS), events)
    got = np.empty(events)
    started = time.perf_counter()
    for n in range(events):
        a, prob, state = agent.rank(int(users[n]), rng)  # type: ignore[attr-defined]
        got[n] = t[users[n], a]
        if learn:
            agent.learn(state, a, prob, float(rng.random() < got[n]))  # type: ignore[attr-defined]
    return float(got.mean()), events / (time.perf_counter() - started)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=20_000)
    args = ap.parse_args()
    t = truth(np.random.default_rng(1))
    print(
        f"best possible {t.max(1).mean():.4f}, random {t.mean():.4f},"
        f" {args.events:,} events, epsilon 0.2"
    )
    print("| learner | average reward | rank + learn, events/s | rank alone, events/s |")
    print("|---|---|---|---|")
    for name, make in (("ours", Ours), ("Vowpal Wabbit", VW)):
        reward, both = run(make(), args.events, t, seed=7)
        _, alone = run(make(), args.events // 4, t, seed=8, learn=False)
        print(f"| {name} | {reward:.4f} | {both:,.0f} | {alone:,.0f} |")


class _A:
    def __init__(self, id: str, features: list) -> None:
        self.id, self.features = id, features


if __name__ == "__main__":
    main()
