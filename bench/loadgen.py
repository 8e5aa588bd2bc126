"""An open-loop HTTP/1.1 load generator on asyncio + uvloop that records every latency.

Requests are sent on a fixed schedule (rate per second) over keep-alive connections; a
request's latency counts from when it was due, not from when a connection was free, so a
stalled server shows up in the percentiles (no coordinated omission). Loopback only.

`awake(cpu)` keeps the load generator's CPU from halting while it waits for responses (a
busy loop at SCHED_IDLE priority: it runs only when nothing else wants that CPU). On this
machine (a Firecracker VM with 2 vCPUs) a response written to a client whose vCPU halted
must wake that vCPU, and the server's write(2) then takes ~1 ms now and then instead of
~40 us: in a 1,000/s run, 29 of the 41 slowest decisions (top 1 %) spent over 0.5 ms in
the write with the client's vCPU idle, none with it kept awake. A client across a network
is not woken from inside the server's system call, so the server-side latency at a fixed
rate is measured with `awake` (bench.e2e reports both).
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from urllib.parse import urlparse

import numpy as np
import uvloop

_SPIN = """
import os, sys, time
os.sched_setaffinity(0, {int(sys.argv[1])})
os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    for _ in range(100000):
        pass
"""


@contextlib.contextmanager
def awake(cpu: int, limit_s: float = 900.0) -> Iterator[None]:
    """Keep `cpu` from halting for the duration (a SCHED_IDLE busy loop pinned to it, which
    stops by itself after `limit_s` should this process die first)."""
    spin = subprocess.Popen([sys.executable, "-c", _SPIN, str(cpu), str(limit_s)])
    try:
        yield
    finally:
        spin.kill()
        spin.wait()


async def _conn(host: str, port: int, payloads: list[bytes], due: asyncio.Queue,
                sent: list[float], out: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while True:
            item = await due.get()
            if item is None:
                return
            t, i = item
            writer.write(payloads[i % len(payloads)])
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            status = int(head[9:12])
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            sent.append(t)
            out.append(time.perf_counter() - t)
            if status != 200:
                errors.append(status)
    finally:
        writer.close()


async def timed(url: str, body: bytes | list[bytes], rate: float, seconds: float,
                connections: int = 32) -> tuple[np.ndarray, np.ndarray, int, float]:
    """(due times, latencies in s, non-200 answers, achieved rate) of one run; with a list of
    bodies, request i sends body i (cycling)."""
    u = urlparse(url)
    payloads = [(f"POST {u.path} HTTP/1.1\r\nHost: {u.netloc}\r\nContent-Type: application/json"
                 f"\r\nContent-Length: {len(b)}\r\n\r\n").encode() + b
                for b in ([body] if isinstance(body, bytes) else body)]
    due: asyncio.Queue = asyncio.Queue()
    sent: list[float] = []
    out: list[float] = []
    errors: list[int] = []
    workers = [asyncio.create_task(_conn(u.hostname or "127.0.0.1", u.port or 80, payloads,
                                         due, sent, out, errors)) for _ in range(connections)]
    start = time.perf_counter()
    n = int(rate * seconds)
    for i in range(n):
        at = start + i / rate
        delay = at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        due.put_nowait((at, i))
    for _ in workers:
        due.put_nowait(None)
    await asyncio.gather(*workers)
    elapsed = time.perf_counter() - start
    return np.array(sent), np.array(out), len(errors), len(out) / elapsed


def run(url: str, body: bytes | list[bytes], rate: float, seconds: float,
        connections: int = 32) -> dict[str, float]:
    """Latency percentiles (ms) and achieved throughput at a fixed offered rate."""
    _, lat, errors, achieved = uvloop.run(timed(url, body, rate, seconds, connections))
    ms = lat * 1000
    return {"offered": rate, "achieved": round(achieved), "errors": errors,
            "p50": round(float(np.percentile(ms, 50)), 3),
            "p99": round(float(np.percentile(ms, 99)), 3),
            "p99.9": round(float(np.percentile(ms, 99.9)), 3)}
