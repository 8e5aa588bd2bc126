"""Shared data for the benchmarks: the demo network, seeded and compiled once."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest

from adserver.control.compiler import compile_snapshot
from adserver.control.seed import Scale, seed
from adserver.control.store import Store
from adserver.formats.signing import Signer, ensure_keys
from adserver.serving.bound import load_current


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    """(snapshot, signer) of the default demo network."""
    root = str(tmp_path_factory.mktemp("bench"))
    store = Store(root)
    seed(store, Scale(), progress=False)
    compile_snapshot(store, root)
    store.close()
    snap = load_current(root)
    yield snap, Signer(ensure_keys(root))


def requests() -> list[dict]:
    """A storefront's mix: display on home and category, sponsored products on search."""
    rng = np.random.default_rng(3)
    out = []
    for i in range(200):
        zone = int(rng.choice([10, 11, 12, 13, 14]))
        out.append(
            {
                "placements": [
                    {
                        "divName": "banner",
                        "networkId": 1,
                        "siteId": 1,
                        "zoneIds": [zone],
                        "adTypes": [2, 3],
                    },
                    {
                        "divName": "sp",
                        "networkId": 1,
                        "siteId": 1,
                        "zoneIds": [zone],
                        "adTypes": [1],
                        "count": 4,
                        "properties": {"page_type": ["home", "search", "category"][i % 3]},
                    },
                ],
                "user": {"key": f"u{i}", "segments": ["fitness"] if i % 4 == 0 else []},
                "searchTerm": str(
                    rng.choice(["coffee", "headphones", "dog food", "yoga mat", "chips", "shampoo"])
                ),
                "includePricingData": True,
            }
        )
    return out


def now() -> float:
    return time.time()
