"""What the control process tells about itself: `/metrics` (Prometheus) and `/readyz`.

Metrics (one registry, this process's; the decision workers have their own on their port):

- `adserver_control_aggregator_lag_seconds`: how long the aggregator has been behind the
  event logs (0 while it is caught up); `adserver_control_aggregator_lag_events`: records
  still to read (estimated from the unread bytes and the mean record size);
- `adserver_control_events_total{stream}`: records aggregated (rate(): events/s);
- `adserver_control_pacing_step_seconds`, `adserver_control_snapshot_publish_seconds`,
  `adserver_control_catalog_build_seconds`, `adserver_control_training_seconds{model}`:
  how long each job takes (histograms);
- `adserver_quarantined_total{source}`: records and flights set aside (control/quarantine).

Readiness: the store answers and a snapshot has been published (workers can load it).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)
LAG_SECONDS = Gauge(
    "adserver_control_aggregator_lag_seconds",
    "How long the aggregator has been behind the event logs (0: caught up)",
    registry=REGISTRY,
)
LAG_EVENTS = Gauge(
    "adserver_control_aggregator_lag_events",
    "Event records not yet aggregated (estimated)",
    registry=REGISTRY,
)
EVENTS = Counter(
    "adserver_control_events", "Event records aggregated", ["stream"], registry=REGISTRY
)
BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300)
PACING = Histogram(
    "adserver_control_pacing_step_seconds",
    "One pacing controller step",
    buckets=BUCKETS,
    registry=REGISTRY,
)
PUBLISH = Histogram(
    "adserver_control_snapshot_publish_seconds",
    "Compiling and publishing one snapshot",
    buckets=BUCKETS,
    registry=REGISTRY,
)
CATALOG = Histogram(
    "adserver_control_catalog_build_seconds",
    "Building one product index version",
    buckets=BUCKETS,
    registry=REGISTRY,
)
TRAINING = Histogram(
    "adserver_control_training_seconds",
    "Training one model version",
    ["model"],
    buckets=BUCKETS,
    registry=REGISTRY,
)


@contextlib.contextmanager
def timed(histogram: Any) -> Iterator[None]:
    """Observe how long the block takes (also when it raises)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        histogram.observe(time.perf_counter() - started)


class Lag:
    """The aggregator's lag, updated after each pass from what is left unread."""

    def __init__(self) -> None:
        self.behind_since: float | None = None
        self.record_bytes = 64.0  # mean record size, learnt from what was read

    def update(self, unread_bytes: int, read_bytes: int, records: int, now: float) -> None:
        if records:
            self.record_bytes = 0.9 * self.record_bytes + 0.1 * read_bytes / records
        if unread_bytes <= 0:
            self.behind_since = None
        elif self.behind_since is None:
            self.behind_since = now
        LAG_SECONDS.set(0.0 if self.behind_since is None else now - self.behind_since)
        LAG_EVENTS.set(round(max(unread_bytes, 0) / max(self.record_bytes, 1.0)))


def unread_bytes(
    events_root: str, offsets: dict[tuple[str, str], tuple[str, int]], streams: tuple[str, ...]
) -> int:
    """Bytes of the event logs past the aggregator's offsets."""
    total = 0
    if not os.path.isdir(events_root):
        return 0
    for worker in os.listdir(events_root):
        d = os.path.join(events_root, worker)
        if not os.path.isdir(d):
            continue
        names = os.listdir(d)
        for stream in streams:
            segments = sorted(n for n in names if n.startswith(stream + "-") and n.endswith(".seg"))
            if not segments:
                continue
            segment, offset = offsets.get((worker, stream), (segments[0], 0))
            for s in segments:
                if s < segment:
                    continue
                try:
                    size = os.path.getsize(os.path.join(d, s))
                except FileNotFoundError:
                    continue
                total += max(size - offset, 0) if s == segment else size
    return total


def exposition(quarantined: str) -> bytes:
    """The control process's metrics, the quarantine's counts appended."""
    return generate_latest(REGISTRY) + quarantined.encode()


def readiness(store: Any, data_dir: str) -> tuple[bool, dict[str, Any]]:
    """(ready, body): the store answers and a snapshot is published."""
    from adserver.snapshot.writer import current_version

    try:
        store.read("SELECT 1")
    except Exception as e:  # a store that cannot answer is not ready, whatever the reason
        return False, {"status": "not_ready", "reason": f"the store does not answer: {e}"}
    version = current_version(data_dir)
    if version is None:
        return False, {"status": "not_ready", "reason": "no snapshot published yet"}
    return True, {"status": "ready", "snapshot": version}
