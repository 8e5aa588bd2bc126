"""Server time of the console's pages at demo scale: a fresh `adserver demo` (its shoppers
browsing for `--wait` seconds first, so reports and models have data), each page fetched
`--n` times by a signed-in user over loopback; the median, 95th percentile and maximum of
the time from sending the request to the last byte (an upper bound of the server's time).

    .venv/bin/python -m bench.console [--wait 60] [--n 20]
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import httpx

PAGES = [
    ("advertiser", "/console/"),
    ("advertiser", "/console/flights"),
    ("advertiser", "/console/flights/1"),
    ("advertiser", "/console/creatives"),
    ("advertiser", "/console/reports?group=flight&interval=day"),
    ("advertiser", "/console/reports?group=creative&interval=hour"),
    ("advertiser", "/console/preview?site_id=1&zone_id=11&ad_type_id=2&count=2&show=1"),
    ("admin", "/console/review"),
    ("admin", "/console/catalog"),
    ("admin", "/console/models"),
    ("admin", "/console/keys"),
    ("admin", "/console/audit"),
    ("admin", "/console/flights/new"),
]


@contextlib.contextmanager
def demo(wait: float) -> Iterator[tuple[str, dict[str, str]]]:
    """A fresh demo on ephemeral ports: (the management API's URL, email -> password)."""
    data = tempfile.mkdtemp(prefix="adserver-console-")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "adserver",
            "demo",
            "--data-dir",
            data,
            "--port",
            "0",
            "--api-port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        text = ""
        assert proc.stdout is not None
        while "Press Ctrl-C" not in text:
            line = proc.stdout.readline()
            if not line:
                raise SystemExit("the demo stopped:\n" + text)
            text += line
        found = re.search(r"console\s+(http://\S+)/console/", text)
        assert found, text
        time.sleep(wait)
        yield found.group(1), dict(re.findall(r"(\S+@demo\.example)\s+password (\S+)", text))
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(data, ignore_errors=True)


def signed_in(base: str, email: str, password: str) -> httpx.Client:
    """A client holding a console session (its cookie sent by hand: it is Secure)."""
    c = httpx.Client(base_url=base, timeout=30)
    form = c.get("/console/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    r = c.post(
        "/console/login",
        data={"email": email, "password": password, "csrf": csrf},
        headers={"cookie": f"adserver_login={form.cookies['adserver_login']}"},
    )
    assert r.status_code == 303, r.text
    c.headers["cookie"] = f"adserver_session={r.cookies['adserver_session']}"
    return c


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--wait", type=float, default=60, help="seconds of demo traffic first")
    ap.add_argument("--n", type=int, default=20, help="fetches per page")
    args = ap.parse_args()
    with demo(args.wait) as (base, people):
        clients: dict[str, Any] = {
            who: signed_in(base, f"{who}@demo.example", people[f"{who}@demo.example"])
            for who in ("advertiser", "admin")
        }
        print(f"{'page':<72} {'median':>8} {'p95':>8} {'max':>8}  (ms, {args.n} fetches)")
        for who, path in PAGES:
            c = clients[who]
            c.get(path)  # warm
            times = []
            for _ in range(args.n):
                started = time.perf_counter()
                r = c.get(path)
                times.append((time.perf_counter() - started) * 1000)
                assert r.status_code == 200, (path, r.status_code)
            times.sort()
            p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
            print(
                f"{who + ' ' + path:<72} {statistics.median(times):8.1f} {p95:8.1f} {times[-1]:8.1f}"
            )
        for c in clients.values():
            c.close()


if __name__ == "__main__":
    main()
