"""Personalizer rank calls over HTTP against an ad decision, on one decision worker.

    .venv/bin/python -m bench.rank_e2e [--seconds 4]

The demo-scale store of bench/e2e.py; one worker pinned to CPU 0, wrk (32 connections)
pinned to CPU 1, alternating three rounds of a rank call (10 actions of 3 features, a
context of 4) and a display decision; medians of saturation throughput. The worker starts
with an untrained policy (scores all zero: the same arithmetic as a trained one).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

import httpx

from bench.e2e import serve, stop, wait_ready, wrk
from bench.world import prepare

KEY = "bench-admin-key-0123456789"
RANK = {
    "contextFeatures": [
        {"user": {"device": "mobile", "segment": "deals"}},
        {"time": "evening", "page": "home"},
    ],
    "actions": [
        {
            "id": f"article-{i}",
            "features": [
                {
                    "topic": ["sport", "food", "tech", "home", "travel"][i % 5],
                    "length": "short" if i % 2 else "long",
                    "fresh": i % 3 == 0,
                }
            ],
        }
        for i in range(10)
    ],
}
DISPLAY = {
    "placements": [
        {"divName": "banner", "networkId": 1, "siteId": 1, "zoneIds": [12], "adTypes": [2, 3]}
    ],
    "user": {"key": "u0000042"},
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=4)
    args = ap.parse_args()
    os.sched_setaffinity(0, {1})
    data = os.path.join(tempfile.gettempdir(), "adserver-bench-demo")
    prepare(data, "demo")
    os.environ["ADSERVER_ADMIN_KEY"] = KEY
    server, url = serve(data)
    try:
        wait_ready(url)
        rank = json.dumps(RANK).encode()
        display = json.dumps(DISPLAY).encode()
        check = httpx.post(
            url + "/personalizer/v1.0/rank",
            content=rank,
            headers={"Ocp-Apim-Subscription-Key": KEY},
        )
        assert check.status_code == 201, check.text
        ranks, decisions = [], []
        for _ in range(3):
            ranks.append(
                wrk(
                    url,
                    rank,
                    args.seconds,
                    "/personalizer/v1.0/rank",
                    ("Ocp-Apim-Subscription-Key", KEY),
                )["rps"]
            )
            decisions.append(wrk(url, display, args.seconds)["rps"])
    finally:
        stop(server)
    print("| request | saturation (median of 3) | rounds |")
    print("|---|---|---|")
    print(f"| Personalizer rank, 10 actions | {sorted(ranks)[1]}/s | {ranks} |")
    print(f"| display decision (demo scale) | {sorted(decisions)[1]}/s | {decisions} |")


if __name__ == "__main__":
    main()
