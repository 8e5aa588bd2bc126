"""Aggregator throughput: records applied per second in one pass (one transaction).

./dev bench -k aggregator
"""

from __future__ import annotations

import shutil
from pathlib import Path

from adserver.control.aggregator import Aggregator
from adserver.control.store import Store
from adserver.formats.segment import SegmentWriter

N = 20000


def _events(root: Path) -> None:
    w = SegmentWriter(str(root / "events" / "w0"), "events")
    for i in range(N):
        kind = "imp" if i % 10 else "click"
        w.append(
            {
                "t": kind,
                "id": f"{kind[0]}:{i}",
                "ts": 1_790_000_000.0 + i,
                "req": str(i),
                "ad": i % 500 + 1,
                "flight": i % 50 + 1,
                "creative": i % 500 + 1,
                "campaign": i % 20 + 1,
                "advertiser": i % 10 + 1,
                "network": 1,
                "site": 1,
                "zone": i % 5 + 10,
                "div": "d",
                "price": 2_000_000,
                "rate": 1,
                "user": f"u{i % 3000}",
                "ev": 1 if kind == "imp" else 2,
                "bot": False,
                "botf": 0,
            }
        )
    w.close()


def test_aggregator(benchmark, tmp_path: Path) -> None:
    source = tmp_path / "source"
    _events(source)
    rounds = iter(range(1000))

    def setup() -> tuple:
        d = tmp_path / f"r{next(rounds)}"
        shutil.copytree(source, d)
        return (Aggregator(Store(str(d)), str(d)),), {}

    benchmark.group = f"aggregator: {N} events (90 % impressions, 10 % clicks), one pass"
    batch = benchmark.pedantic(lambda agg: agg.run_once(N), setup=setup, rounds=5)
    assert batch is not None
