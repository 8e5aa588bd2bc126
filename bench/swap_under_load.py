"""Hot swap under sustained load: publish a new snapshot every few seconds while the
open-loop client drives decisions; report failed requests (goal 0) and the latency during the
seconds after each swap against steady state.

    .venv/bin/python -m bench.swap_under_load [--scale demo] [--rate 1000] [--seconds 30]

The decision worker is pinned to CPU 0, the client and the publisher to CPU 1 (bench/e2e.py).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time

import numpy as np
import uvloop

from bench import loadgen
from bench.e2e import serve, stop, wait_ready
from bench.world import BODIES, prepare


def publisher(data: str, every: float, until: float, times: list[float]) -> None:
    from adserver.control.compiler import compile_snapshot
    from adserver.control.store import Store

    store = Store(data)
    while time.monotonic() < until:
        time.sleep(every)
        compile_snapshot(store, data)
        times.append(time.perf_counter())
    store.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", choices=["demo", "bench"], default="demo")
    ap.add_argument("--rate", type=float, default=1000)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--every", type=float, default=3.0)
    args = ap.parse_args()
    os.sched_setaffinity(0, {1})
    data = os.path.join(tempfile.gettempdir(), f"adserver-bench-{args.scale}")
    prepare(data, args.scale)
    server, url = serve(data)
    try:
        wait_ready(url)
        body = json.dumps(BODIES["display"]).encode()
        swaps: list[float] = []
        pub = threading.Thread(
            target=publisher,
            args=(data, args.every, time.monotonic() + args.seconds - args.every, swaps),
        )
        pub.start()
        samples = uvloop.run(loadgen.timed(url + "/api/v2", body, args.rate, args.seconds))
        pub.join()
    finally:
        stop(server)
    sent, lat, errors, _, _ = samples
    near = np.zeros(len(sent), dtype=bool)
    for t in swaps:  # a worker polls every 100 ms, then loads and warms: watch 1.5 s
        near |= (sent >= t) & (sent < t + 1.5)
    ms = lat * 1000

    def pct(x: np.ndarray, q: float) -> float:
        return round(float(np.percentile(x, q)), 3) if len(x) else float("nan")

    print(f"publishes: {len(swaps)}, requests: {len(ms)}, failed: {errors}")
    print("| window | requests | p50 ms | p99 ms | p99.9 ms |")
    print("|---|---|---|---|---|")
    for name, sel in (("steady", ~near), ("1.5 s after a publish", near)):
        print(
            f"| {name} | {int(sel.sum())} | {pct(ms[sel], 50)} | {pct(ms[sel], 99)} |"
            f" {pct(ms[sel], 99.9)} |"
        )


if __name__ == "__main__":
    main()
