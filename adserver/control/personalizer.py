"""The personalization learner (control process): joins Personalizer ranks with their rewards
once the reward wait time has passed, updates the policy and publishes a new version that the
decision workers hot-swap (models/personalizer/CURRENT, polled every 100 ms).

Joining (the aggregator has put ranks, rewards and activations into pz_* tables): a rank is
learned from `reward_wait_s` after it was made. A deferred rank without an activation by
then is dropped (the client never showed it). Its reward per slot is the earliest reward
that came within the wait, or the sum of them (clipped to [-1, 1]) with aggregation "sum",
else `default_reward`. Learning: each (slot of an) event's logged action row, with target the
reward and importance 1 / the probability it was chosen with, takes an importance-weighted
squared-loss step with per-weight adaptive rates (AdaGrad; adserver/kernels/bandit.learn):
an IPS-weighted reward regression, the "mtr" reduction of contextual bandits. The exploration the workers apply comes with the
published version.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import threading
import time
import zipfile
from typing import Any, NamedTuple

import numpy as np

from adserver._hashing import action_features
from adserver.control.pz_config import iso, learner_settings, seconds
from adserver.control.store import Store
from adserver.formats import versions
from adserver.kernels import bandit as kernel
from adserver.learn import bandit

log = logging.getLogger("adserver.personalizer")
BATCH = 5000


@dataclasses.dataclass
class Settings:
    """The learner's settings: reward wait and default, aggregation, exploration, learning
    rate."""

    reward_wait_s: float = 600.0
    default_reward: float = 0.0
    aggregation: str = "earliest"
    exploration: float = 0.2
    learning_rate: float = 0.03
    softmax: bool = False
    lam: float = 10.0
    mode: str = "Online"  # Online | Apprentice | LoggingOnly


class Learner:
    """Personalizer's learner in the control process: joins ranks with their rewards once the
    wait is over, updates the policy and publishes its versions."""

    def __init__(self, store: Store, data_dir: str, settings: Settings):
        self.store, self.data_dir, self.s = store, data_dir, settings
        version = bandit.current(data_dir)
        self.policy = bandit.load(data_dir, version) if version else bandit.Policy()
        self.learned = 0
        self.apprentice = [0, 0]  # apprentice ranks where the policy's best was the baseline
        self.lock = threading.RLock()  # the learning thread and the model routes
        # AdaGrad's per-weight sums of squared gradients (kernels/bandit.learn); kept in
        # memory: after a restart the rates start high again (steps stay <= the rate)
        self.acc = np.zeros_like(self.policy.weights)

    def configure(self) -> bool:
        """Apply the service configuration and policy set through the API (if any);
        whether what the workers need (exploration, mode) changed."""
        found = learner_settings(self.store)
        if found is None:
            return False
        service, args = found
        s = self.s
        s.reward_wait_s = seconds(service.reward_wait_time)
        s.default_reward = service.default_reward
        s.aggregation = service.reward_aggregation
        s.learning_rate = args.get("lr", s.learning_rate)
        bits = args.get("bits", self.policy.bits)
        if bits != self.policy.bits:  # another hash space: start over
            self.policy = bandit.Policy(bits=bits)
            self.acc = np.zeros_like(self.policy.weights)
        wanted = (
            service.exploration_percentage,
            bool(args["softmax"]),
            args.get("lam", 10.0),
            service.learning_mode,
        )
        changed = wanted != (s.exploration, s.softmax, s.lam, s.mode)
        s.exploration, s.softmax, s.lam, s.mode = wanted
        return changed

    def step(self, now: float | None = None) -> str | None:
        """Learn from every rank whose wait is over; returns the version published, if
        any."""
        with self.lock:
            return self._step(time.time() if now is None else now)

    def _step(self, now: float) -> str | None:
        changed = self.configure()
        rows = self.store.read(
            "SELECT id, at, multi, defer, payload FROM pz_ranks WHERE learned = 0 AND at <= ?"
            " ORDER BY at LIMIT ?",
            (now - self.s.reward_wait_s, BATCH),
        )
        if not rows:
            return self._publish() if changed else None
        for _, _, _, _, payload in rows:
            decoded = json.loads(payload)
            if decoded.get("mode") == "Apprentice":  # would the policy have chosen the same?
                for x in decoded.get("slots") or [decoded]:
                    if "best" in x:
                        self.apprentice[0] += int(x["best"] == x["baseline"])
                        self.apprentice[1] += 1
        examples, done, dropped = join(self.store, self.s, rows)
        if examples:
            self._learn(examples)
        with self.store.transaction() as db:
            db.executemany("UPDATE pz_ranks SET learned = 1 WHERE id = ?", [(e,) for e in done])
            db.executemany("UPDATE pz_ranks SET learned = 2 WHERE id = ?", [(e,) for e in dropped])
        if not examples and not changed:
            return None
        self.learned += len(examples)
        return self._publish()

    # -- the model routes (control/personalizer_api.py): export, import, reset ---------

    def export(self) -> bytes:
        """The active policy as a zip of manifest.json and weights.npy."""
        buf = io.BytesIO()
        with self.lock:
            weights = self.policy.weights.copy()
            manifest = {
                "format": bandit.FORMAT,
                "bits": self.policy.bits,
                "version": self.policy.version,
                "learned_events": self.learned,
            }
        arr = io.BytesIO()
        np.save(arr, weights)
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("manifest.json", json.dumps(manifest))
            z.writestr("weights.npy", arr.getvalue())
        return buf.getvalue()

    def import_(self, data: bytes) -> str:
        """Make an exported policy the active one (ValueError says what is wrong)."""
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                manifest = json.loads(z.read("manifest.json"))
                weights = np.load(io.BytesIO(z.read("weights.npy")), allow_pickle=False)
        except (zipfile.BadZipFile, KeyError, ValueError, OSError) as e:
            raise ValueError(
                f"not an exported model (a zip of manifest.json and weights.npy): {e}"
            ) from None
        bits = manifest.get("bits")
        if (
            not isinstance(bits, int)
            or not 8 <= bits <= 24
            or weights.dtype != np.float32
            or weights.shape != (1 << bits,)
            or not np.isfinite(weights).all()
        ):
            raise ValueError("the model's weights do not match its bits, or are not finite")
        with self.lock:
            self.policy = bandit.Policy(weights.copy(), bits)
            self.acc = np.zeros_like(self.policy.weights)
            return self._publish()

    def reset(self) -> str:
        with self.lock:
            self.policy = bandit.Policy(bits=self.policy.bits)
            self.acc = np.zeros_like(self.policy.weights)
            self.learned = 0
            return self._publish()

    def properties(self) -> dict[str, Any]:
        root = bandit.models_root(self.data_dir)
        version = bandit.current(self.data_dir)
        if version is None:
            return {}
        path = os.path.join(root, version)
        made = os.path.getmtime(path)
        return {
            "creationTime": iso(made),
            "lastModifiedTime": iso(made),
            "version": version,
            "learnedEvents": self.learned,
            "apprenticeMatchRate": self.match_rate,
        }

    def _publish(self) -> str:
        s = self.s
        exploration = bandit.Exploration(
            kernel.SOFTMAX if s.softmax else kernel.EPSILON_GREEDY, s.exploration, s.lam
        )
        version = bandit.write(
            self.data_dir,
            self.policy.weights,
            self.policy.bits,
            exploration,
            {
                "learned_events": self.learned,
                "learning_mode": s.mode,
                "apprentice_match_rate": self.match_rate,
            },
        )
        self.policy.version = version
        versions.prune(bandit.models_root(self.data_dir), keep=5, min_age_s=60)
        return version

    @property
    def match_rate(self) -> float | None:
        """Apprentice mode's match rate: how often the policy's own choice was the baseline
        (Personalizer suggests going online at 60-80 %)."""
        matched, total = self.apprentice
        return round(matched / total, 4) if total else None

    def _learn(self, examples: list[Example]) -> None:
        ptrs, idxs, vals, targets, importance = [0], [], [], [], []
        for ctx, acts, chosen, prob, reward, *_ in examples:
            ptr, idx, val = action_features(
                ctx[0], ctx[1], acts[0], acts[1], acts[2], self.policy.bits
            )
            a, b = int(ptr[chosen]), int(ptr[chosen + 1])
            idxs.append(idx[a:b])
            vals.append(val[a:b])
            ptrs.append(ptrs[-1] + b - a)
            targets.append(reward)
            importance.append(1.0 / max(prob, 1e-6))
        kernel.learn(
            self.policy.weights,
            self.acc,
            np.array(ptrs, dtype=np.int64),
            np.concatenate(idxs).astype(np.int32),
            np.concatenate(vals),
            np.array(targets),
            np.array(importance),
            self.s.learning_rate,
        )


class Example(NamedTuple):
    """One learnable choice: a single-slot rank, or one slot of a multi-slot rank."""

    ctx: tuple[np.ndarray, np.ndarray]
    acts: tuple[np.ndarray, np.ndarray, np.ndarray]
    chosen: int
    prob: float  # the probability it was chosen with
    reward: float
    allowed: np.ndarray  # bool per action
    baseline: int
    at: float


def join(store: Store, s: Settings, rows: list[Any]) -> tuple[list[Example], list[str], list[str]]:
    """(examples, event ids used, event ids dropped) of pz_ranks rows (id, at, multi, defer,
    payload) whose wait is over: logging-only ranks are used without examples, deferred
    ranks never activated in time are dropped."""
    examples: list[Example] = []
    done, dropped = [], []
    for event_id, at, multi, defer, payload in rows:
        p = json.loads(payload)
        if p.get("mode") == "LoggingOnly":
            done.append(event_id)  # kept for evaluation, never learned from
            continue
        if defer and not store.read(
            "SELECT 1 FROM pz_activations WHERE event_id = ? AND at <= ?",
            (event_id, at + s.reward_wait_s),
        ):
            dropped.append(event_id)
            continue
        examples += examples_of(p, bool(multi), rewards_of(store, s, event_id, at), at, s)
        done.append(event_id)
    return examples, done, dropped


def rewards_of(store: Store, s: Settings, event_id: str, at: float) -> dict[str, float]:
    """Each slot's reward ('' for a single slot): the earliest within the wait, or the sum."""
    out: dict[str, float] = {}
    for slot, value in store.read(
        "SELECT slot, value FROM pz_rewards WHERE event_id = ? AND at <= ? ORDER BY at",
        (event_id, at + s.reward_wait_s),
    ):
        if slot not in out:
            out[slot] = value
        elif s.aggregation == "sum":
            out[slot] = max(-1.0, min(1.0, out[slot] + value))
    return out


def examples_of(
    p: dict[str, Any], multi: bool, rewards: dict[str, float], at: float, s: Settings
) -> list[Example]:
    actions = [_Action(a["id"], a.get("features")) for a in p["actions"]]
    acts = bandit.action_arrays(actions)
    n = len(actions)
    if not multi:
        excluded = set(p.get("excluded") or ())
        allowed = np.array([a.id not in excluded for a in actions])
        return [
            Example(
                bandit.context_arrays(p.get("context")),
                acts,
                p["chosen"],
                p["probabilities"][p["chosen"]],
                rewards.get("", s.default_reward),
                allowed,
                int(p.get("baseline", 0)),
                at,
            )
        ]
    out = []
    for slot in p["slots"]:
        if slot.get("probabilities") is None:  # no action was left: nothing was chosen
            continue
        allowed = np.zeros(n, dtype=bool)
        if "allowed" in slot:
            allowed[slot["allowed"]] = True
        else:
            allowed = np.array(slot["probabilities"]) > 0
        out.append(
            Example(
                bandit.context_arrays(p.get("context"), slot.get("features")),
                acts,
                slot["chosen"],
                slot["probabilities"][slot["chosen"]],
                rewards.get(slot["slot"], s.default_reward),
                allowed,
                int(slot.get("baseline", slot["chosen"])),
                at,
            )
        )
    return out


@dataclasses.dataclass
class _Action:
    id: str
    features: Any


def current_settings(store: Store, defaults: Any) -> Any:
    """The learner's settings: the process's defaults with the stored configuration over."""
    s = dataclasses.replace(defaults) if defaults is not None else Settings()
    found = learner_settings(store)
    if found is not None:
        service, args = found
        s.reward_wait_s = seconds(service.reward_wait_time)
        s.default_reward = service.default_reward
        s.aggregation = service.reward_aggregation
    return s
