"""Private and shared memory of the decision workers, with the snapshot's size on disk.

    .venv/bin/python -m bench.memory [--scale bench] [--workers 2]

Starts `adserver serve` with N workers over the prepared data root (see bench/e2e.py), sends
a few hundred decisions so every page the hot path touches is mapped, then reads each
worker's /proc/<pid>/smaps_rollup. Snapshots are memory-mapped, so the second worker should
add little private memory.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.e2e import serve, stop, wait_ready
from bench.world import BODIES, prepare


def rollup(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":")
        out[name.strip()] = int(value.split()[0])  # kB
    return out


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


def du(path: str) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", choices=["demo", "bench"], default="bench")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    data = os.path.join(tempfile.gettempdir(), f"adserver-bench-{args.scale}")
    prepare(data, args.scale)
    version = Path(data, "snapshots", "CURRENT").read_text().strip()
    server, url = serve(data, args.workers)
    try:
        wait_ready(url)
        time.sleep(1.0)
        with httpx.Client(base_url=url) as c:
            for _ in range(300):
                for body in BODIES.values():
                    c.post("/api/v2", json=body)
        rows = []
        for pid in children(server.pid):
            r = rollup(pid)
            rows.append(
                {
                    "pid": pid,
                    "rss_MiB": round(r["Rss"] / 1024, 1),
                    "pss_MiB": round(r["Pss"] / 1024, 1),
                    "private_MiB": round((r["Private_Clean"] + r["Private_Dirty"]) / 1024, 1),
                    "shared_MiB": round((r["Shared_Clean"] + r["Shared_Dirty"]) / 1024, 1),
                }
            )
    finally:
        stop(server)
    snapshot_mib = round(du(os.path.join(data, "snapshots", version)) / 2**20, 1)
    print(
        json.dumps(
            {"scale": args.scale, "snapshot_on_disk_MiB": snapshot_mib, "workers": rows}, indent=1
        )
    )
    print()
    print(f"snapshot {version} on disk: {snapshot_mib} MiB")
    print("| worker | RSS MiB | PSS MiB | private MiB | shared MiB |")
    print("|---|---|---|---|---|")
    for i, r in enumerate(rows):
        print(
            f"| w{i} | {r['rss_MiB']} | {r['pss_MiB']} | {r['private_MiB']} | {r['shared_MiB']} |"
        )


if __name__ == "__main__":
    sys.exit(main())
