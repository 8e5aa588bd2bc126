"""An open-loop HTTP/1.1 load generator on asyncio + uvloop that records every latency.

Requests are sent on a fixed schedule (rate per second; evenly spaced or Poisson arrivals)
over keep-alive connections; a request's latency counts from when it was due, not from when
a connection was free, so a stalled server shows up in the percentiles (no coordinated
omission). The sender polls near each due time instead of trusting the event loop's
millisecond timers, and reads responses with a bare protocol, so requests leave within tens
of microseconds of their time (each run reports the p99 of that lateness). Loopback only.

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
import collections
import contextlib
import gc
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from urllib.parse import urlparse

import numpy as np
import uvloop

_SPIN = """
import sys, time
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    for _ in range(100000):
        pass
"""


def _idle_on(cpu: int) -> None:
    os.sched_setaffinity(0, {cpu})
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


@contextlib.contextmanager
def awake(cpu: int, limit_s: float = 900.0) -> Iterator[None]:
    """Keep `cpu` from halting for the duration (a SCHED_IDLE busy loop pinned to it, which
    stops by itself after `limit_s` should this process die first). Pinned and idle from
    before its interpreter starts: its start-up competes with nothing."""
    spin = subprocess.Popen(
        [sys.executable, "-S", "-c", _SPIN, str(limit_s)], preexec_fn=lambda: _idle_on(cpu)
    )
    time.sleep(0.2)  # (running by the time the caller's run starts)
    try:
        yield
    finally:
        spin.kill()
        spin.wait()


class _Conn(asyncio.Protocol):
    """One keep-alive connection: sends a request when the schedule gives it one and reads
    the response's head and Content-Length bytes of body (no Python stream layers)."""

    def __init__(self, gen: _Schedule):
        self.gen, self.buf, self.need, self.due = gen, bytearray(), -1, 0.0
        self.transport: asyncio.Transport | None = None
        self.status = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, payload: bytes, due: float) -> None:
        self.due = due
        self.transport.write(payload)  # type: ignore[union-attr]
        self.gen.late.append(time.perf_counter() - due)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while True:
            if self.need < 0:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(buf[:end]).lower()
                self.status = int(head[9:12])
                at = head.find(b"content-length:")
                length = 0
                if at >= 0:
                    eol = head.find(b"\r\n", at)
                    length = int(head[at + 15 : eol if eol >= 0 else len(head)])
                self.need = end + 4 + length
            if len(buf) < self.need:
                return
            del buf[: self.need]
            self.need = -1
            self.gen.done(self, self.status)

    def connection_lost(self, exc: Exception | None) -> None:
        self.gen.lost(self)


class _Schedule:
    """Hands each due request to an idle connection, or queues it until one frees up (its
    latency still counts from when it was due)."""

    def __init__(self, payloads: list[bytes]):
        self.payloads = payloads
        self.idle: list[_Conn] = []
        self.backlog: collections.deque[tuple[float, int]] = collections.deque()
        self.due: list[float] = []
        self.latency: list[float] = []
        self.late: list[float] = []  # how late each request was sent, in s
        self.errors = 0
        self.errors_lost = 0  # requests in flight on a connection that closed
        self.open = 0
        self.finished = asyncio.Event()
        self.expected = 0

    def submit(self, due: float, i: int) -> None:
        if self.idle:
            self.idle.pop().send(self.payloads[i % len(self.payloads)], due)
        else:
            self.backlog.append((due, i))

    def done(self, conn: _Conn, status: int) -> None:
        self.due.append(conn.due)
        self.latency.append(time.perf_counter() - conn.due)
        if status != 200:
            self.errors += 1
        if len(self.latency) + self.errors_lost >= self.expected:
            self.finished.set()
        if self.backlog:
            due, i = self.backlog.popleft()
            conn.send(self.payloads[i % len(self.payloads)], due)
        else:
            self.idle.append(conn)

    def lost(self, conn: _Conn) -> None:
        if conn in self.idle:
            self.idle.remove(conn)
        elif conn.due:  # a request in flight on it is lost
            self.errors_lost += 1
            self.errors += 1
        self.open -= 1
        if self.open == 0 or len(self.latency) + self.errors_lost >= self.expected:
            self.finished.set()


async def timed(
    url: str,
    body: bytes | list[bytes],
    rate: float,
    seconds: float,
    connections: int = 32,
    arrivals: str = "uniform",
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, int, float, np.ndarray]:
    """(due times, latencies in s, failed requests, achieved rate, how late each request was
    sent in s) of one run; with a list of bodies, request i sends body i (cycling).
    `arrivals`: "uniform" (one every 1/rate s) or "poisson" (exponential gaps, seeded). The
    sender sleeps until ~1 ms before the next due time, then polls (yielding to the
    responses) so that requests leave on time: a sleeping Python client sent ~1 % of them
    over 1.3 ms late, in bursts of up to 19 within 1 ms, and the server queued the bursts."""
    u = urlparse(url)
    payloads = [
        (
            f"POST {u.path} HTTP/1.1\r\nHost: {u.netloc}\r\nContent-Type: application/json"
            f"\r\nContent-Length: {len(b)}\r\n\r\n"
        ).encode()
        + b
        for b in ([body] if isinstance(body, bytes) else body)
    ]
    loop = asyncio.get_running_loop()
    gen = _Schedule(payloads)
    conns = [_Conn(gen) for _ in range(connections)]
    for conn in conns:
        await loop.create_connection(lambda c=conn: c, u.hostname or "127.0.0.1", u.port or 80)
        gen.idle.append(conn)
        gen.open += 1
    n = int(rate * seconds)
    gen.expected = n
    if arrivals == "poisson":
        offsets = np.cumsum(np.random.default_rng(seed).exponential(1.0 / rate, n)).tolist()
    elif arrivals == "uniform":
        offsets = (np.arange(n) / rate).tolist()
    else:
        raise ValueError(f"arrivals: uniform or poisson, not {arrivals!r}")
    clock = time.perf_counter
    start = clock()
    i = 0
    while i < n:
        now = clock()
        while i < n and start + offsets[i] <= now:
            gen.submit(start + offsets[i], i)
            i += 1
        if i < n:
            wait = start + offsets[i] - clock()
            await asyncio.sleep(wait - 0.001 if wait > 0.002 else 0)
    try:
        if n:
            await asyncio.wait_for(gen.finished.wait(), timeout=max(10.0, seconds))
    except asyncio.TimeoutError:
        pass  # what has not come back by now counts as failed
    elapsed = clock() - start
    for conn in conns:  # (one still waiting for a response too)
        if conn.transport is not None:
            conn.transport.close()
    failed = gen.errors + (n - len(gen.latency) - gen.errors_lost)
    return (
        np.array(gen.due),
        np.array(gen.latency),
        failed,
        len(gen.latency) / elapsed,
        np.array(gen.late),
    )


def run(
    url: str,
    body: bytes | list[bytes],
    rate: float,
    seconds: float,
    connections: int = 32,
    arrivals: str = "uniform",
    seed: int = 0,
) -> dict[str, float]:
    """Latency percentiles (ms) and achieved throughput at a fixed offered rate, and the
    p99 of how late the client sent its requests (ms: the client's own precision)."""
    gc.collect()
    gc.disable()  # a full collection in the client (~ms) would send a burst late
    try:
        _, lat, errors, achieved, late = uvloop.run(
            timed(url, body, rate, seconds, connections, arrivals, seed)
        )
    finally:
        gc.enable()
    ms = lat * 1000
    return {
        "offered": rate,
        "achieved": round(achieved),
        "errors": errors,
        "p50": round(float(np.percentile(ms, 50)), 3),
        "p99": round(float(np.percentile(ms, 99)), 3),
        "p99.9": round(float(np.percentile(ms, 99.9)), 3),
        "late_p99": round(float(np.percentile(late, 99)) * 1000, 3),
    }
