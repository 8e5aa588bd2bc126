"""End-to-end latency and throughput: the decision server against the bare-app floor.

    .venv/bin/python -m bench.e2e [--scale demo|bench] [--seconds 5] [--rates 500,1000,2000]

One decision worker is pinned to CPU 0; the load generators (wrk for saturation, the open-loop
client in bench/loadgen.py for fixed rates) run pinned to CPU 1. The floor is the same server
stack answering a same-sized response without deciding (bench/floor.py), measured in the same
run. Prints a markdown table for BENCHMARKS.md. Loopback only; every run is bounded in time.
`--scale bench` seeds 100,000 ads, 1,000,000 products and 1,000,000 users once into
--data-dir (about half a minute) and reuses them. `--model ctr` serves with a CTR model
(random weights, the default feature specification, 2^20 buckets) active; `--model both`
measures each request kind without and with it, switching the model pointer between the two
(the worker swaps it in within 100 ms).

`sponsored` repeats one search, so after the first request the worker's per-snapshot caches
(query embedding, retrieval, candidate lists) answer it; `search-mix` sends searches as a
storefront would (bench.world.search_mix: head queries that repeat, a long tail that does
not, many users), fresh draws for every run.

Latency at fixed rates is shown twice: as the client saw it (from when each request was due:
queueing, loopback and the Python client's own delays included) and as the server saw it
(the worker's `adserver_decision_seconds` histogram over the run: from when the worker read
the request, the wait for its event loop included, to the response handed to the socket;
p50/p99 interpolated within the histogram's buckets, the share within 2 ms exact), with the
p99 of its two parts: the wait for the event loop (`adserver_decision_wait_seconds`) and the
handler's own time (`adserver_decision_handler_seconds`), and how busy the worker was (its CPU
time over the run's wall time: at a fixed rate the p99 follows it). Requests leave on
schedule (the client's own lateness p99 is shown: tens of us), evenly spaced by default or
as Poisson arrivals (`--arrivals poisson|both`: bursts as independent users make them,
which queue at any server: the same utilization gives a higher p99). The load generator's
vCPU is kept awake (`--client-vcpu idle|both` to leave it idle between responses): on this
VM, a response that must wake the client's halted vCPU holds the server's write(2) for ~1
ms now and then (bench/loadgen.awake has the evidence), which a client across a network
never causes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

import httpx

from bench import loadgen
from bench.world import BODIES, MIXES, ROOT, SCALES, install_model, prepare, use_model

PY = sys.executable


def start(args: list[str], what: str) -> tuple[subprocess.Popen, str]:
    p = subprocess.Popen(
        ["taskset", "-c", "0", PY, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )
    assert p.stdout is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        m = re.search(rf"adserver: {what} on (http://\S+)", line)
        if m:
            return p, m.group(1)
    p.kill()
    raise RuntimeError(f"{what} did not start")


def serve(data: str, workers: int = 1) -> tuple[subprocess.Popen, str]:
    """`adserver serve` over `data` with `workers` workers pinned to CPU 0, logging warnings
    only (its output is read until it announces its URL, not after)."""
    args = ["-m", "adserver", "serve", "--data-dir", data, "--port", "0"]
    return start([*args, "--workers", str(workers), "--log-level", "warning"], "decision API")


def wait_ready(url: str) -> None:
    for _ in range(600):
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("decision server not ready")


def wrk(
    url: str,
    body: bytes | list[bytes],
    seconds: int,
    path: str = "/api/v2",
    header: tuple[str, str] | None = None,
) -> dict[str, float]:
    """Saturation with wrk: one body, or a list of bodies sent in turn."""
    bodies = [body] if isinstance(body, bytes) else body
    with tempfile.NamedTemporaryFile("wb", delete=False) as f:
        f.write(bodies[0])
    script = os.path.join(ROOT, "bench", "post.lua")
    env = {**os.environ, "BODY": f.name}
    if len(bodies) > 1:
        with tempfile.NamedTemporaryFile("wb", delete=False) as many:
            many.write(b"\n".join(bodies) + b"\n")
        env["BODIES"] = many.name
    if header:
        env.update(HEADER_NAME=header[0], HEADER_VALUE=header[1])
    out = subprocess.run(
        [
            "taskset",
            "-c",
            "1",
            "wrk",
            "-t1",
            "-c32",
            f"-d{seconds}s",
            "--latency",
            "-s",
            script,
            url + path,
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    os.unlink(f.name)
    if "BODIES" in env:
        os.unlink(env["BODIES"])
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out.stdout).group(1))  # type: ignore[union-attr]
    return {"rps": round(rps)}


HISTOGRAMS = {
    "server": "adserver_decision_seconds",
    "wait": "adserver_decision_wait_seconds",
    "handler": "adserver_decision_handler_seconds",
}


def server_histogram(url: str) -> dict[str, dict[float, float]]:
    """The worker's decision-time histograms (HISTOGRAMS: cumulative count per upper bound
    in seconds), from its /metrics."""
    out: dict[str, dict[float, float]] = {k: {} for k in HISTOGRAMS}
    by_name = {v: k for k, v in HISTOGRAMS.items()}
    for line in httpx.get(url + "/metrics", timeout=10).text.splitlines():
        m = re.match(r'(adserver_decision\w*seconds)_bucket\{le="([^"]+)"\} ([0-9.e+]+)', line)
        if m and m.group(1) in by_name:
            h = out[by_name[m.group(1)]]
            h[float(m.group(2))] = h.get(float(m.group(2)), 0.0) + float(m.group(3))
    return out


def quantile(bounds: list[float], counts: list[float], q: float) -> float:
    """The q-quantile in ms of a cumulative histogram, interpolated within its bucket."""
    total = counts[-1]
    lo, below = 0.0, 0.0
    for b, c in zip(bounds, counts):
        if c >= q * total:
            if math.isinf(b):
                return lo * 1e3
            return (lo + (b - lo) * (q * total - below) / max(c - below, 1e-9)) * 1e3
        lo, below = b, c
    return lo * 1e3


def server_side(
    before: dict[str, dict[float, float]], after: dict[str, dict[float, float]]
) -> dict[str, float]:
    """Server time per decision over a run (the histograms' differences): p50 and p99 by
    linear interpolation within the buckets, the share of decisions within 2 ms (a bucket
    bound, so exact), and the p99 of its two parts, the wait for the worker's event loop and
    the handler's own time."""
    out: dict[str, float] = {}
    for kind, hist in after.items():
        bounds = sorted(hist)
        counts = [hist[b] - before[kind].get(b, 0.0) for b in bounds]
        if not counts or counts[-1] <= 0:
            continue
        out[f"{kind}_p99"] = round(quantile(bounds, counts, 0.99), 3)
        if kind == "server":
            out["server_p50"] = round(quantile(bounds, counts, 0.5), 3)
            out["server_within_2ms"] = round(
                next(c for b, c in zip(bounds, counts) if b >= 0.002) / counts[-1], 4
            )
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (/proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as src:
        fields = src.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker_pid(server: subprocess.Popen) -> int | None:
    """The decision worker `adserver serve --workers 1` started (its only child)."""
    try:
        with open(f"/proc/{server.pid}/task/{server.pid}/children") as src:
            children = src.read().split()
    except OSError:
        return None
    return int(children[0]) if len(children) == 1 else None


def stop(p: subprocess.Popen) -> None:
    p.terminate()
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()


def each(choice: str, options: list[str]) -> list[str]:
    """The options a `both`-or-one flag asks for."""
    return options if choice == "both" else [choice]


def fixed_rate(
    url: str, worker: int | None, bodies: Any, rate: float, seconds: int, arrivals: str, client: str
) -> dict[str, Any]:
    """One open-loop run: the client's figures, the server's (its histograms' difference)
    and how busy the worker was (its CPU time over the run's wall time)."""
    with loadgen.awake(1) if client == "awake" else contextlib.nullcontext():
        before = server_histogram(url)
        payload = bodies(int(rate * seconds) + 1)
        busy = cpu_seconds(worker) if worker else 0.0
        began = time.monotonic()
        out: dict[str, Any] = loadgen.run(
            url + "/api/v2", payload, rate, seconds, arrivals=arrivals, seed=int(began)
        )
        if worker:
            out["busy"] = round((cpu_seconds(worker) - busy) / (time.monotonic() - began), 3)
    out["client"], out["arrivals"] = client, arrivals
    time.sleep(0.5)  # the worker adds its tallies to its histograms every 50 ms
    out.update(server_side(before, server_histogram(url)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", choices=SCALES, default="demo")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--seconds", type=int, default=4)
    ap.add_argument("--rates", default="500,1000,2000")
    ap.add_argument("--only", help="comma list of request kinds to measure (default: all)")
    ap.add_argument(
        "--client-vcpu",
        choices=["awake", "idle", "both"],
        default="awake",
        help="fixed rates with the load generator's vCPU kept awake (see "
        "bench/loadgen.awake), left idle between responses, or both",
    )
    ap.add_argument(
        "--arrivals",
        choices=["uniform", "poisson", "both"],
        default="uniform",
        help="fixed rates with evenly spaced requests, Poisson arrivals, or both",
    )
    ap.add_argument(
        "--model",
        choices=["none", "ctr", "both"],
        default="none",
        help="serve without a CTR model, with one, or measure both",
    )
    args = ap.parse_args()
    if shutil.which("wrk") is None or shutil.which("taskset") is None:
        raise SystemExit("bench.e2e needs wrk and taskset: apt-get install wrk util-linux")
    os.sched_setaffinity(0, {1})
    data = args.data_dir or os.path.join(tempfile.gettempdir(), f"adserver-bench-{args.scale}")
    prepare(data, args.scale)
    model = install_model(data) if args.model != "none" else None
    from adserver.formats import versions
    from adserver.learn import ctr

    versions.publish(ctr.models_root(data, "ctr"), "")  # start without: use_model switches
    server, url = serve(data)
    results = {}
    try:
        wait_ready(url)
        worker = worker_pid(server)
        runs = [
            (name, m)
            for name in [*BODIES, *MIXES]
            for m in {"none": [None], "ctr": [model], "both": [None, model]}[args.model]
        ]
        seed = 0
        for name, version in runs:
            if args.only and name not in args.only.split(","):
                continue
            mix = MIXES.get(name)

            def bodies(n: int) -> bytes | list[bytes]:
                nonlocal seed  # each run its own draw: the long tail stays unseen
                seed += 1
                return mix(n, seed) if mix else raw  # noqa: B023

            raw = json.dumps(BODIES[name]).encode() if name in BODIES else bodies(1)[0]
            use_model(data, version, url, raw)
            if args.model == "both":
                name = f"{name} ({'CTR model' if version else 'prior pCTR'})"
            response = httpx.post(url + "/api/v2", content=raw)
            assert response.status_code == 200, response.text
            size = len(response.content)
            floor, floor_url = start(
                ["-m", "bench.floor", "--port", "0", "--size", str(size)], "floor app"
            )
            floors, sats = [], []
            try:  # alternate, three rounds each: the machine is noisy; keep the medians
                for _ in range(3):
                    floors.append(wrk(floor_url, raw, args.seconds)["rps"])
                    sats.append(wrk(url, bodies(5000 * args.seconds), args.seconds)["rps"])
            finally:
                stop(floor)
            floor_rps, sat = sorted(floors)[1], sorted(sats)[1]
            rates = []
            for r in args.rates.split(","):
                for arrivals in each(args.arrivals, ["uniform", "poisson"]):
                    for client in each(args.client_vcpu, ["awake", "idle"]):
                        rates.append(
                            fixed_rate(
                                url, worker, bodies, float(r), args.seconds, arrivals, client
                            )
                        )
            results[name] = {
                "request_bytes": len(raw),
                "response_bytes": size,
                "floor_rps": floor_rps,
                "saturation_rps": sat,
                "ratio": round(floor_rps / sat, 2),
                "rates": rates,
            }
    finally:
        stop(server)
    print(json.dumps(results, indent=1))
    print()
    print("| request | bytes in/out | saturation | floor | decision cost / floor cost |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['request_bytes']}/{r['response_bytes']} | {r['saturation_rps']}/s"
            f" | {r['floor_rps']}/s | {r['ratio']}x |"
        )
    print()
    print(
        "| request | offered/s | arrivals | client vCPU | client late p99 ms | achieved/s"
        " | p50 ms | p99 ms | p99.9 ms | errors | server p50 ms | server p99 ms"
        " | server <= 2 ms | wait p99 ms | handler p99 ms | worker busy |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        for x in r["rates"]:
            busy = f"{x['busy']:.0%}" if "busy" in x else ""
            print(
                f"| {name} | {x['offered']:.0f} | {x['arrivals']} | {x['client']}"
                f" | {x['late_p99']} | {x['achieved']} | {x['p50']} | {x['p99']}"
                f" | {x['p99.9']} | {x['errors']} | {x.get('server_p50', '')}"
                f" | {x.get('server_p99', '')} | {x.get('server_within_2ms', 0):.2%}"
                f" | {x.get('wait_p99', '')} | {x.get('handler_p99', '')} | {busy} |"
            )


if __name__ == "__main__":
    main()
