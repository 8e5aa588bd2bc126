"""CTR model quality on the day simulator's ground truth.

    .venv/bin/python -m bench.ctr_sim [--requests 40000] [--flights 40] [--data-dir DIR]

Simulates a storefront day (adserver simulate: real decision workers, event logs, the prior
pCTR serving), trains the CTR model from its logs (adserver train ctr) with a random and a
time split, and prints the held-out metrics beside the prior's and beside an oracle that
predicts the simulator's true click probability for every impression (the best any model
could do on this data). Targets (issue 8): NE < 0.9, calibration 0.95-1.05.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np

from adserver.formats.segment import read_records
from adserver.tools import simulate as sim
from adserver.tools.simtruth import true_ctr
from adserver.training import ctr_train


def oracle(data_dir: str, s: sim.Settings) -> dict[str, dict]:
    """The ground truth's own metrics: all impressions, and the latest 20 % by time."""
    world = sim.build_world(tempfile.mkdtemp(), s, np.random.default_rng(s.seed))
    by_id = {f.id: f for f in world["flights"]}
    shown, clicked = set(), set()
    for path in ctr_train._segments(data_dir, "events"):
        for _, r in read_records(path):
            if r.get("t") in ("imp", "click") and not r.get("bot"):
                (shown if r["t"] == "imp" else clicked).add(f"{r['req']}:{r['ad']}")
    rows = []
    for path in ctr_train._segments(data_dir, "decisions"):
        for _, r in read_records(path):
            shopper = int(r["user"].rsplit("-", 1)[1])
            hour = int((r["ts"] % 86400) // 3600)
            for p in r["placements"]:
                for w in p[2]:
                    key = f"{r['id']}:{w[0]}"
                    if key in shown:
                        rows.append((r["ts"], key in clicked, true_ctr(by_id[w[1]], shopper, hour)))
    rows.sort()
    y = np.array([r[1] for r in rows], dtype=np.float64)
    p = np.array([r[2] for r in rows])
    cut = int(len(rows) * 0.8)
    return {
        "all impressions": ctr_train.metrics(y, p, float(y.mean())),
        "latest 20 %": ctr_train.metrics(y[cut:], p[cut:], float(y[:cut].mean())),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=40_000)
    ap.add_argument("--flights", type=int, default=40)
    ap.add_argument("--data-dir", help="reuse a simulated day (default: simulate one)")
    args = ap.parse_args()
    s = sim.Settings(
        flights=args.flights,
        requests=args.requests,
        workers=2,
        interval=600.0,
        seed=3,
        progress=False,
    )
    data = args.data_dir or os.path.join(tempfile.mkdtemp(), "day")
    if not os.path.exists(os.path.join(data, "control.sqlite3")):
        started = time.monotonic()
        sim.simulate(data, s)
        print(
            f"simulated {args.requests:,} page views, {args.flights} flights in"
            f" {time.monotonic() - started:.0f} s ({data})"
        )
    out = tempfile.mkdtemp()
    results = {}
    for split in ("random", "time"):
        started = time.monotonic()
        _, info = ctr_train.train(data, ctr_train.Settings(split=split), root=out)
        results[split] = {
            "model": info["metrics"],
            "prior": info["baseline"]["prior"],
            "train_s": round(time.monotonic() - started, 1),
            "examples": info["training"]["examples"],
        }
    results["oracle"] = oracle(data, s)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
