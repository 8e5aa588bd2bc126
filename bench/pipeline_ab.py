"""A/B of the decision pipeline in one process: two checkouts, blocks of decisions interleaved.

    git worktree add /tmp/base REV && cp adserver/*.so /tmp/base/adserver/
    .venv/bin/python -m bench.pipeline_ab --base /tmp/base [--kind sponsored] [--rounds 30]

The base checkout's package is copied as `adserver_base` (its imports rewritten) so both
versions run in one process on the same data (`bench.e2e --scale bench` by default): blocks
of `--block` decisions alternate between them, and reported are each side's median time per
decision and the median of the paired ratios new/base. This machine's speed drifts by 1.5-2x
within minutes; blocks a fraction of a second apart see the same machine, so their ratio
holds where separate runs (and even bench.ab's 3-second HTTP rounds) scatter. What it does
not see: the HTTP stack, and what the server's other work does to the caches (bench.ab).
LMDB allows one handle per environment and process, so the base side reads a copy of the
current snapshot's and product index's catalogs (~300 MB at bench scale; the rest linked).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from typing import Any

import numpy as np

from bench.world import BODIES, MIXES, ROOT, prepare

ALIAS = "adserver_base"


def copy_package(src: str, dest: str) -> None:
    """`src`/adserver as `dest`/adserver_base, every import of adserver rewritten."""
    target = os.path.join(dest, ALIAS)
    shutil.copytree(
        os.path.join(src, "adserver"), target, ignore=shutil.ignore_patterns("__pycache__")
    )
    pattern = re.compile(r"\badserver(?=[.\s])")
    for folder, _, files in os.walk(target):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                with open(path) as f:
                    text = f.read()
                with open(path, "w") as f:
                    f.write(pattern.sub(ALIAS, text))


def mirror_data(data: str, dest: str) -> str:
    """A data directory for the base side: links to `data`'s files, with its own copies of
    the current snapshot's and product index's LMDB catalogs."""
    mirror = os.path.join(dest, "data")
    os.makedirs(mirror)
    for name in os.listdir(data):
        if name not in ("snapshots", "products"):
            os.symlink(os.path.join(data, name), os.path.join(mirror, name))
    for kind in ("snapshots", "products"):
        root = os.path.join(data, kind)
        if not os.path.isdir(root):
            continue
        os.makedirs(os.path.join(mirror, kind))
        for name in os.listdir(root):
            path = os.path.join(root, name)
            if not os.path.isdir(path):
                shutil.copy(path, os.path.join(mirror, kind, name))
                continue
            version = os.path.join(mirror, kind, name)
            os.makedirs(version)
            for part in os.listdir(path):
                if part == "catalog":
                    shutil.copytree(os.path.join(path, part), os.path.join(version, part))
                else:
                    os.symlink(os.path.join(path, part), os.path.join(version, part))
    return mirror


def runner(package: str, data: str, bodies: list[bytes]) -> Any:
    """A function deciding `n` requests (the bodies in turn) with `package`; returns the
    seconds per decision."""
    try:  # the serving bundle (since issue 24), else the snapshot as it was loaded before
        loader = __import__(f"{package}.serving.bound", fromlist=["_"])
    except ImportError:
        loader = __import__(f"{package}.snapshot.loader", fromlist=["_"])
    pipeline = __import__(f"{package}.serving.pipeline", fromlist=["_"])
    try:  # the shared formats' package (since issue 24)
        signing = __import__(f"{package}.formats.signing", fromlist=["_"])
    except ImportError:
        signing = __import__(f"{package}.signing", fromlist=["_"])
    kevel = __import__(f"{package}.wire.kevel", fromlist=["_"])
    snap = loader.load_current(data)
    signer = signing.Signer(signing.read_keys(data))
    requests = [kevel.decoder.decode(b) for b in bodies]
    rng = np.random.default_rng(1)
    paused = np.zeros(0, dtype=np.int8)
    no_models = __import__(f"{package}.serving.stages.score", fromlist=["_"]).NO_MODELS
    at = [0]

    def run(n: int) -> float:
        started = time.perf_counter()
        for _ in range(n):
            req = requests[at[0] % len(requests)]
            at[0] += 1
            if hasattr(pipeline, "Facts"):  # the bundle and the facts (since issue 24)
                b = pipeline.Bundle(snap, no_models, signer, pipeline.Settings(128), rng)
                pipeline.decide(b, req, pipeline.Facts(time.time(), "http://localhost:8080"))
            else:
                ctx = pipeline.Context(
                    time.time(), "http://localhost:8080", False, signer, rng, paused, None, 128
                )
                pipeline.decide(snap, req, ctx)
        return (time.perf_counter() - started) / n

    return run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True, help="the other checkout (a git worktree)")
    ap.add_argument("--kind", choices=[*BODIES, *MIXES], default="sponsored")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--block", type=int, default=200, help="decisions per block")
    ap.add_argument("--scale", choices=["demo", "bench"], default="bench")
    args = ap.parse_args()
    data = os.path.join(tempfile.gettempdir(), f"adserver-bench-{args.scale}")
    prepare(data, args.scale)
    bodies = (
        MIXES[args.kind](20000, 1)
        if args.kind in MIXES
        else [json.dumps(BODIES[args.kind]).encode()]
    )
    scratch = tempfile.mkdtemp(prefix="pipeline-ab-")
    try:
        copy_package(args.base, scratch)
        sys.path.insert(0, scratch)
        sys.path.insert(0, ROOT)
        sides = {
            "base": runner(ALIAS, mirror_data(data, scratch), bodies),
            "new": runner("adserver", data, bodies),
        }
        for run in sides.values():
            run(2000)  # warm: kernels, caches, pages
        import gc

        gc.collect()
        gc.freeze()  # as the workers do after start-up
        times: dict[str, list[float]] = {k: [] for k in sides}
        for _ in range(args.rounds):
            for name, run in sides.items():
                times[name].append(run(args.block))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for name, t in times.items():
        print(
            f"{name}: median {statistics.median(t) * 1e6:.1f} us per decision "
            f"(min {min(t) * 1e6:.1f})"
        )
    ratios = [n / b for n, b in zip(times["new"], times["base"])]
    print(
        f"new/base: {statistics.median(ratios):.3f} (median of {len(ratios)} paired blocks; "
        f"quartiles {np.percentile(ratios, 25):.3f}-{np.percentile(ratios, 75):.3f})"
    )


if __name__ == "__main__":
    main()
