"""Prometheus metrics of the decision workers (multiprocess mode when several workers run:
PROMETHEUS_MULTIPROC_DIR is set by `adserver serve` before any worker imports this)."""

from __future__ import annotations

import bisect
import collections
import os
from collections.abc import Sequence

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from adserver.snapshot import products

LATENCY_BUCKETS = (
    0.0001,
    0.0002,
    0.0003,
    0.0005,
    0.00075,
    0.001,
    0.0015,
    0.002,
    0.003,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
)

decision_seconds = Histogram(
    "adserver_decision_seconds",
    "Server time per decision request, from the worker reading it "
    "(event-loop wait included) to its response",
    buckets=LATENCY_BUCKETS,
)
decision_wait_seconds = Histogram(
    "adserver_decision_wait_seconds",
    "Part of the server time spent waiting for the worker's event loop: from reading the "
    "request to its handler starting (grows as the worker nears saturation)",
    buckets=LATENCY_BUCKETS,
)
decision_handler_seconds = Histogram(
    "adserver_decision_handler_seconds",
    "Part of the server time spent deciding: from the handler starting to the response "
    "handed to the socket",
    buckets=LATENCY_BUCKETS,
)
decisions = Counter("adserver_decision_requests", "Decision requests answered", ["status"])
placements = Counter("adserver_placements", "Placements decided", ["filled"])
snapshot_version = Gauge(
    "adserver_snapshot_version", "Snapshot version being served", multiprocess_mode="max"
)
swaps = Counter("adserver_snapshot_swaps", "Snapshot versions swapped in")
beacons = Counter("adserver_beacons", "Tracking events recorded", ["kind", "traffic"])
refused_tokens = Counter(
    "adserver_refused_tokens", "Tracking tokens refused, never billed", ["reason"]
)
swap_failures = Counter("adserver_snapshot_swap_failures", "Snapshot versions refused")
model_version = Gauge(
    "adserver_model_version",
    "CTR/CVR model version serving (0: none)",
    ["model", "role"],
    multiprocess_mode="liveall",
)
retrieval_searches = Counter(
    "adserver_retrieval_searches",
    "Nearest-neighbour (HNSW) searches run for sponsored products: retrieval cache misses",
)
model_failures = Counter(
    "adserver_model_refused", "Model versions a worker refused to load", ["model"]
)


# label children bound once: .labels() costs a dictionary walk per call
DECIDED_OK = decisions.labels("200")
DECIDED_BAD = decisions.labels("400")
FILLED = placements.labels("yes")
UNFILLED = placements.labels("no")


class Tally:
    """The decision route's counts in plain ints and a list of latencies, added to the
    Prometheus metrics by the worker's flush timer (every 50 ms) and before an exposition.
    In multiprocess mode each Prometheus update writes a memory-mapped file under a lock
    (~3 us); a decision made four of them."""

    __slots__ = ("ok", "bad", "filled", "unfilled", "seconds", "waits", "searched")

    def __init__(self) -> None:
        self.ok = self.bad = self.filled = self.unfilled = 0
        self.seconds: list[float] = []  # server time per answered decision
        self.waits: list[float] = []  # of which waiting for the event loop (same order)
        self.searched = 0  # products.searches_run() at the last flush

    def flush(self) -> None:
        ok, bad, filled, unfilled, seconds, waits = (
            self.ok,
            self.bad,
            self.filled,
            self.unfilled,
            self.seconds,
            self.waits,
        )
        self.ok = self.bad = self.filled = self.unfilled = 0
        self.seconds, self.waits = [], []
        for counter, n in (
            (DECIDED_OK, ok),
            (DECIDED_BAD, bad),
            (FILLED, filled),
            (UNFILLED, unfilled),
        ):
            if n:
                counter.inc(n)
        observe_many(decision_seconds, seconds)
        observe_many(decision_wait_seconds, waits)
        observe_many(decision_handler_seconds, [t - w for t, w in zip(seconds, waits)])
        searched = products.searches_run()
        if searched > self.searched:
            retrieval_searches.inc(searched - self.searched)
            self.searched = searched


def observe_many(histogram: Histogram, values: Sequence[float]) -> None:
    """`histogram.observe(v)` for each value, as one update per bucket and one of the sum:
    at 2,000 decisions/s, 100 single observations every 50 ms stalled the worker ~0.5 ms
    (tests/serving/test_metrics.py checks the result is the same). Falls back to observing
    one by one if prometheus_client's histogram ever stops having these parts."""
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None or len(buckets) != len(bounds):
        for v in values:
            histogram.observe(v)
        return
    if not values:
        return
    total.inc(sum(values))
    for i, n in collections.Counter(bisect.bisect_left(bounds, v) for v in values).items():
        buckets[i].inc(n)


TALLY = Tally()


def exposition() -> tuple[bytes, str]:
    TALLY.flush()
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
