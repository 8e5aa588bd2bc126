"""Durable beacon ingest through HTTP: impressions acknowledged per second by one worker.

    .venv/bin/python -m bench.beacon_ingest [--seconds 5] [--connections 64]

Starts `adserver run` (one decision worker) on ephemeral ports over a fresh data root with the
golden test network, makes 20,000 decisions, then fires their impression URLs from an asyncio
paths with wrk (Debian's package) for a fixed time. Every 200 means the event was fsynced
(group commit). Prints wrk's report. Loopback only; bounded in time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from urllib.parse import urlparse

import httpx

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.procs import env_for, running  # noqa: E402
from tests.serving.conftest import Stack  # noqa: E402


def fire(base: str, paths: list[str], seconds: float, connections: int) -> str:
    """Run wrk (Debian's package) against the paths; returns its report."""
    if shutil.which("wrk") is None:
        raise SystemExit("beacon_ingest needs wrk: apt-get install wrk")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(paths))
    env = {**os.environ, "PATHS": f.name}
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "beacons.lua")
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--latency", "-s", script, base],
        env=env,
        capture_output=True,
        text=True,
    )
    os.unlink(f.name)
    return out.stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--decisions", type=int, default=20000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as data:
        with running(["run", "--api-port", "0", "--port", "0"], env_for(data), want=2) as p:
            s = Stack(p, __import__("pathlib").Path(data))
            s.start_golden()
            body = {"placements": [{"networkId": 1, "siteId": 1, "zoneIds": [1], "adTypes": [2]}]}
            urls = []
            with httpx.Client(base_url=s.decisions) as c:
                while len(urls) < args.decisions:
                    d = c.post("/api/v2", json={**body, "user": {"key": f"u{len(urls)}"}})
                    urls.append(d.json()["decisions"]["div0"]["impressionUrl"])
            paths = [urlparse(u)._replace(scheme="", netloc="").geturl() for u in urls]
            print(fire(s.decisions, paths, args.seconds, args.connections))
            s.admin.close()
            s.client.close()


if __name__ == "__main__":
    main()
