"""A/B: the decision server of two checkouts side by side, on this noisy machine.

    git worktree add /tmp/base HEAD~1 && cp adserver/*.so /tmp/base/adserver/
    .venv/bin/python -m bench.ab --base /tmp/base [--kind sponsored] [--rounds 8]

Both checkouts serve the same data directory (bench.e2e's, `--scale bench` by default) with
one worker each, pinned to CPU 0; wrk (32 connections, pinned to CPU 1) alternates between
them for `--rounds` rounds of `--seconds`. Reported per side: the median requests/s and the
median worker CPU time per request (from /proc, so time the machine's neighbours steal from
the worker between requests does not count), and the ratios new/base. Rounds alternate so
that drifts in the machine's speed hit both sides alike; single saturation figures from
separate runs here differ by 20 % and more. Loopback only; every round is bounded in time.

`--rate R` sends R requests/s open-loop (bench/loadgen.py) instead of wrk's closed loop,
and reports the server-side p99 per side beside the CPU per request: the regime of the
latency goal, where each request wakes an idle worker and pays its per-request costs alone
(wrk keeps 32 requests in flight, which hides a part of them). The client's vCPU is kept
awake (bench/loadgen.awake: else waking it stalls the server's writes now and then).
The base checkout needs the native extensions: copy the built .so files when native/ is
unchanged, else build them there.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import httpx

from bench import loadgen
from bench.e2e import server_histogram, server_side
from bench.world import BODIES, MIXES, ROOT, prepare


def _start(src: str, data: str, port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [
            "taskset",
            "-c",
            "0",
            sys.executable,
            "-m",
            "adserver",
            "serve",
            "--data-dir",
            data,
            "--port",
            str(port),
            "--workers",
            "1",
            "--log-level",
            "warning",
        ],
        cwd=src,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _ready(port: int) -> None:
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server on port {port} did not become ready")


def _worker(parent: int) -> int:
    out = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True)
    return int(out.stdout.split()[0])


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as src:
        fields = src.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wrk(port: int, body_file: str, seconds: int, bodies: str | None = None) -> tuple[int, float]:
    env = {**os.environ, "BODY": body_file, **({"BODIES": bodies} if bodies else {})}
    out = subprocess.run(
        [
            "taskset",
            "-c",
            "1",
            "wrk",
            "-t1",
            "-c32",
            f"-d{seconds}s",
            "-s",
            os.path.join(ROOT, "bench", "post.lua"),
            f"http://127.0.0.1:{port}/api/v2",
        ],
        env=env,
        capture_output=True,
        text=True,
    ).stdout
    done = re.search(r"(\d+) requests in", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if done is None or rps is None:
        raise RuntimeError(f"wrk failed: {out}")
    return int(done.group(1)), float(rps.group(1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True, help="the other checkout (a git worktree)")
    ap.add_argument("--new", default=ROOT, help="default: this checkout")
    ap.add_argument(
        "--kind",
        choices=[*BODIES, *MIXES],
        default="sponsored",
        help="a request kind of bench.e2e (a mix: each side gets the same draw)",
    )
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--scale", choices=["demo", "bench"], default="bench")
    ap.add_argument(
        "--rate",
        type=float,
        default=0,
        help="open loop at this many requests/s (default: wrk, closed loop)",
    )
    args = ap.parse_args()
    data = os.path.join(tempfile.gettempdir(), f"adserver-bench-{args.scale}")
    prepare(data, args.scale)
    if args.rate:
        os.sched_setaffinity(0, {1})  # the open-loop client runs here: beside wrk's CPU
    mix = MIXES.get(args.kind)
    with tempfile.NamedTemporaryFile("wb", delete=False, suffix=".json") as f:
        f.write(mix(1, 0)[0] if mix else json.dumps(BODIES[args.kind]).encode())
    bodies = tempfile.NamedTemporaryFile("wb", delete=False, suffix=".txt").name if mix else None

    def draw(seed: int) -> None:
        """A fresh draw of the mix for a round, the same for both sides (wrk starts its
        list over every run: one list for all rounds would be served from the caches)."""
        if mix and bodies:
            with open(bodies, "wb") as out:
                out.write(b"\n".join(mix(4000 * args.seconds, seed)) + b"\n")

    sides = {"base": (args.base, 18181), "new": (args.new, 18182)}
    procs = {name: _start(src, data, port) for name, (src, port) in sides.items()}
    rps: dict[str, list[float]] = {name: [] for name in sides}
    cpu: dict[str, list[float]] = {name: [] for name in sides}
    p99: dict[str, list[float]] = {name: [] for name in sides}
    try:
        draw(0)
        for name, (_, port) in sides.items():
            _ready(port)
            _wrk(port, f.name, 2, bodies)  # warm: JIT caches, the snapshot's pages, caches
        for r in range(args.rounds):
            draw(r + 1)
            for name, (_, port) in sides.items():
                pid = _worker(procs[name].pid)
                before = _cpu_seconds(pid)
                if args.rate:
                    hist = server_histogram(f"http://127.0.0.1:{port}")
                    body = (
                        mix(int(args.rate * args.seconds) + 1, r + 1)
                        if mix
                        else json.dumps(BODIES[args.kind]).encode()
                    )
                    with loadgen.awake(1):
                        done = loadgen.run(
                            f"http://127.0.0.1:{port}/api/v2", body, args.rate, args.seconds
                        )
                    n, rate = int(args.rate * args.seconds), float(done["achieved"])
                    cpu[name].append((_cpu_seconds(pid) - before) / max(1, n) * 1e6)
                    time.sleep(0.3)  # the worker adds its tallies to the histogram every 50 ms
                    p99[name].append(
                        server_side(hist, server_histogram(f"http://127.0.0.1:{port}"))[
                            "server_p99"
                        ]
                    )
                else:
                    n, rate = _wrk(port, f.name, args.seconds, bodies)
                    cpu[name].append((_cpu_seconds(pid) - before) / max(1, n) * 1e6)
                rps[name].append(rate)
            print(
                f"round {r + 1}: "
                + "  ".join(
                    f"{k} {rps[k][-1]:,.0f}/s {cpu[k][-1]:.0f} us"
                    + (f" p99 {p99[k][-1]} ms" if args.rate else "")
                    for k in sides
                ),
                flush=True,
            )
    finally:
        for p in procs.values():
            p.terminate()
            p.wait(10)
        os.unlink(f.name)
        if bodies:
            os.unlink(bodies)
    med = {k: (statistics.median(rps[k]), statistics.median(cpu[k])) for k in sides}
    for k, (r, c) in med.items():
        print(
            f"{k}: median {r:,.0f}/s, {c:.0f} us worker CPU per request"
            + (f", server p99 {statistics.median(p99[k]):.2f} ms" if args.rate else "")
        )
    print(
        f"new/base: throughput {med['new'][0] / med['base'][0]:.3f}, "
        f"CPU per request {med['new'][1] / med['base'][1]:.3f}"
    )


if __name__ == "__main__":
    main()
