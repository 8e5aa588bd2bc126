"""The data the end-to-end benchmarks run on (bench/e2e.py, ab.py, memory.py, rank_e2e.py,
swap_under_load.py, pipeline_ab.py): the demo or benchmark-scale store seeded once into a data
root and reused, its product index, a CTR model to switch on, and the request bodies and
search mixes the load generators send."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable


SCALES = {
    "demo": ["--ads", "600", "--products", "2000", "--users", "1000"],
    "bench": ["--ads", "100000", "--products", "1000000", "--users", "1000000"],
}
BODIES = {
    "sponsored": {
        "placements": [
            {
                "divName": "sponsored",
                "networkId": 1,
                "siteId": 1,
                "zoneIds": [11],
                "adTypes": [1],
                "count": 4,
                "properties": {"page_type": "search"},
            }
        ],
        "user": {"key": "u0000042"},
        "searchTerm": "wireless headphones",
        "includePricingData": True,
    },
    "display": {
        "placements": [
            {"divName": "banner", "networkId": 1, "siteId": 1, "zoneIds": [12], "adTypes": [2, 3]}
        ],
        "user": {"key": "u0000042"},
    },
    "multi": {
        "placements": [
            {"divName": "banner", "networkId": 1, "siteId": 1, "zoneIds": [11], "adTypes": [2, 3]},
            {"divName": "native", "networkId": 1, "siteId": 1, "zoneIds": [11], "adTypes": [4]},
            {
                "divName": "sponsored",
                "networkId": 1,
                "siteId": 1,
                "zoneIds": [11],
                "adTypes": [1],
                "count": 4,
                "properties": {"page_type": "search"},
            },
        ],
        "user": {"key": "u0000042", "segments": ["fitness"]},
        "searchTerm": "organic coffee",
        "includePricingData": True,
    },
}


def search_mix(n: int, seed: int) -> list[bytes]:
    """`n` sponsored-product searches as a storefront sends them: 80 % from 300 head queries
    (Zipf, s = 1: most repeat, and the worker's caches serve them), 20 % from a long tail
    of brand + adjective + product + variant queries that seldom repeat (embedding and HNSW
    search each time), each from one of the seeded users. Another `seed`, other queries."""
    import random

    from adserver.control.seed_names import ADJECTIVES, BRAND_HEADS, CATEGORIES, VARIANTS

    rng = random.Random(seed)
    nouns = [x.lower() for v in CATEGORIES.values() for x in v]
    head = [*nouns, *(f"{a.lower()} {x}" for a in ADJECTIVES for x in nouns)]
    random.Random(0).shuffle(head)  # the same head queries whatever the seed
    head = head[:300]
    weights = [1 / (r + 1) for r in range(len(head))]
    out = []
    for _ in range(n):
        if rng.random() < 0.8:
            query = rng.choices(head, weights)[0]
        else:
            query = " ".join(
                (
                    rng.choice(BRAND_HEADS).lower(),
                    rng.choice(ADJECTIVES).lower(),
                    rng.choice(nouns),
                    rng.choice(VARIANTS).lower(),
                )
            )
        body = {
            **BODIES["sponsored"],
            "searchTerm": query,
            "user": {"key": f"u{rng.randrange(1_000_000):07d}"},
        }
        out.append(json.dumps(body).encode())
    return out


# request kinds made of many bodies: name -> (bodies for a run of n requests, given a seed)
MIXES = {"search-mix": search_mix}


def prepare(data: str, scale: str) -> None:
    from adserver.control.compiler import compile_snapshot
    from adserver.control.store import Store
    from adserver.formats.signing import ensure_keys
    from adserver.snapshot.writer import current_version

    if current_version(data) is None and not os.path.exists(os.path.join(data, "control.sqlite3")):
        subprocess.run(
            [PY, "-m", "adserver", "seed", "--data-dir", data, *SCALES[scale]], check=True
        )
    store = Store(data)
    build_products(store, data)
    compile_snapshot(store, data)  # always with the code being measured
    store.close()
    ensure_keys(data)


def build_products(store: object, data: str) -> None:
    """The product index the control process would build (embedding model, vectors, HNSW
    over the sponsored products), reused while the catalog and the ads are unchanged."""
    from adserver.control import catalog, compiler
    from adserver.snapshot import products

    sponsored = compiler.sponsored(compiler.read_inputs(store))  # type: ignore[arg-type]
    current = products.load_current(data, graphs=False)
    digest = list(catalog.catalog_digest(store))  # type: ignore[arg-type]
    spons = {str(k): len(v) for k, v in sponsored.items()}
    if (
        current is not None
        and current.manifest["catalog"] == digest
        and {k: g["count"] for k, g in current.manifest["graphs"].items()} == spons
        and current.manifest["hnsw"]
        == {"M": products.M, "ef": products.EF, "ef_construction": products.EF_CONSTRUCTION}
    ):
        return
    started = time.perf_counter()
    model = catalog.ensure_model(store, data)  # type: ignore[arg-type]
    assert model is not None
    version = catalog.build(store, data, model, sponsored, current, progress=True)  # type: ignore[arg-type]
    print(
        f"product index {version}: {sum(spons.values())} sponsored products,"
        f" {time.perf_counter() - started:.0f} s",
        file=sys.stderr,
    )


def install_model(data: str) -> str:
    """A CTR model version under models/ctr/ (not active); returns its version."""
    import numpy as np

    from adserver.learn import ctr
    from adserver.learn.features import Spec

    w = np.random.default_rng(5).normal(0, 0.3, 1 << 20).astype(np.float32)
    return ctr.write(data, "ctr", w, -4.0, Spec(), 0.25, {"label": "bench"})


def use_model(data: str, version: str | None, url: str, body: bytes) -> None:
    """Point models/ctr/CURRENT at `version` (None: no model) and wait for the worker."""
    from adserver.formats import versions
    from adserver.learn import ctr

    versions.publish(ctr.models_root(data, "ctr"), version or "")
    want = f"ctr={version}" if version else ""
    for _ in range(100):
        if httpx.post(url + "/api/v2", content=body).headers.get("x-adserver-models", "") == want:
            return
        time.sleep(0.05)
    raise RuntimeError(f"the worker did not switch to model {version}")
