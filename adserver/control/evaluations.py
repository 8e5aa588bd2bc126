"""Offline (counterfactual) evaluation of learning policies over the logged Personalizer
events of a time window: what each policy's average reward would have been, estimated from
the choices the serving policy logged with their probabilities (adserver/training/ope.py).

Policies compared: "Online" (what served: its observed average reward), "Baseline" (always
the baseline action), "Random" (uniform over the allowed actions) and each candidate
(`{name, arguments}`, the learner settings of control/pz_config.parse_arguments). A
candidate is replayed in time order from zero weights: before learning from an event it
gives its probability for the logged action (for IPS and SNIPS) and its predicted rewards
(for DM and DR), so no event is judged by a model that has seen it. The expected reward
reported is SNIPS, with a percentile bootstrap interval; every estimator is in `estimates`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from adserver.control.personalizer import Example, Settings, join
from adserver.control.pz_config import parse_arguments
from adserver.control.store import Store
from adserver.kernels import bandit as kernel
from adserver.learn import bandit
from adserver.training import ope

MAX_EVENTS = 200_000


def _replay(examples: list[Example], args: dict[str, Any]) -> dict[str, np.ndarray]:
    policy = bandit.Policy(
        bits=args.get("bits", bandit.DEFAULT_BITS),
        exploration=bandit.Exploration(
            kernel.SOFTMAX if args.get("softmax") else kernel.EPSILON_GREEDY,
            args.get("epsilon", 0.2),
            args.get("lam", 10.0),
        ),
    )
    lr = args.get("lr", 0.03)
    acc = np.zeros_like(policy.weights)
    n = len(examples)
    pi, q_logged, q_pi = np.zeros(n), np.zeros(n), np.zeros(n)
    for i, e in enumerate(examples):
        rows = policy.rows(e.ctx, e.acts)
        scores = policy.scores(rows)
        probs = policy.probabilities(scores, e.allowed)
        pi[i] = probs[e.chosen]
        clipped = np.clip(scores, -1.0, 1.0)
        q_logged[i], q_pi[i] = clipped[e.chosen], float((probs * clipped).sum())
        a, b = int(rows[0][e.chosen]), int(rows[0][e.chosen + 1])
        kernel.learn(
            policy.weights,
            acc,
            np.array([0, b - a]),
            rows[1][a:b],
            rows[2][a:b],
            np.array([e.reward]),
            np.array([1.0 / max(e.prob, 1e-6)]),
            lr,
        )
    return {"pi": pi, "q_logged": q_logged, "q_pi": q_pi}


def evaluate(
    store: Store,
    s: Settings,
    start: float,
    end: float,
    policies: list[tuple[str, str]],
    runs: int = 200,
) -> dict[str, Any]:
    rows = store.read(
        "SELECT id, at, multi, defer, payload FROM pz_ranks WHERE at >= ? AND"
        " at < ? ORDER BY at LIMIT ?",
        (start, end, MAX_EVENTS),
    )
    examples, _, _ = join(store, s, rows)
    r = np.array([e.reward for e in examples])
    p = np.array([e.prob for e in examples])
    out: list[dict[str, Any]] = []

    def add(
        name: str,
        source: str,
        arguments: str,
        pi: np.ndarray,
        q: dict[str, np.ndarray] | None = None,
    ) -> None:
        summary: dict[str, Any]
        if not examples:
            est: dict[str, Any] = {}
            summary = {"expectedReward": None, "confidenceInterval": []}
        else:
            est = ope.bootstrap(
                r,
                p,
                pi,
                None if q is None else q["q_logged"],
                None if q is None else q["q_pi"],
                runs=runs,
            )
            summary = {
                "expectedReward": est["snips"]["value"],
                "confidenceInterval": [est["snips"]["low"], est["snips"]["high"]],
            }
        out.append(
            {
                "name": name,
                "arguments": arguments,
                "policySource": source,
                "slotId": "",
                "summary": summary,
                "timeseries": {"data": []},
                "estimates": est,
            }
        )

    add("Online", "Online", "", p.copy())  # pi = p: IPS/SNIPS = the observed mean
    add("Baseline", "Baseline", "", np.array([float(e.chosen == e.baseline) for e in examples]))
    add("Random", "Random", "", np.array([1.0 / max(1, int(e.allowed.sum())) for e in examples]))
    for name, arguments in policies:
        replay = _replay(examples, parse_arguments(arguments))
        add(name, "Custom", arguments, replay["pi"], replay)
    candidates = [
        v
        for v in out
        if v["policySource"] in ("Online", "Custom") and v["summary"]["expectedReward"] is not None
    ]
    best = max(candidates, key=lambda v: v["summary"]["expectedReward"], default=None)
    return {"events": len(examples), "value": out, "optimalPolicy": best["name"] if best else None}


def importances(store: Store, learner: Any, start: float, end: float) -> list[dict[str, Any]]:
    """Feature importances of the active policy over the window's logged ranks
    (adserver/learn/bandit.importances)."""
    import json

    events = []
    for (payload,) in store.read(
        "SELECT payload FROM pz_ranks WHERE at >= ? AND at < ? ORDER BY at LIMIT ?",
        (start, end, MAX_EVENTS),
    ):
        p = json.loads(payload)
        for slot in p.get("slots") or [p]:
            if slot.get("probabilities") is not None or "slots" not in p:
                events.append((p.get("context"), p["actions"], slot["chosen"]))
    policy = learner.policy if learner is not None else bandit.Policy()
    return bandit.importances(policy, events)
