"""The product index: every catalog product's embedding and data, and an HNSW graph per
network over the products that have serve-eligible ads (both planes use this module).

A version directory `products/<version>/` (indexes/README.md) holds, in product-key order:
`keys.npy` (uint64 `key(network, product id)`), `network.npy`, `available.npy`, `seq.npy`
(the catalog change number each row was read at), `vectors.npy` (float32, unit length; zero
rows: no embedding), `catalog/` (LMDB: row -> the product's fields) and
`hnsw-<network>.bin` (hnswlib, inner product over unit vectors = cosine; labels are product
keys, stable across versions). Snapshots name the product index version they were compiled
against, so a worker always pairs a snapshot with the index its ad -> product rows point at.

HNSW parameters (the numbers in one place, as hnswlib's ALGO_PARAMS.md describes them):
M = 32 links per node, ef_construction = 400, ef = EF (128; the decision server's
ADSERVER_HNSW_EF) at query time, raised to k when k is larger. Chosen on the 1M-product
benchmark catalog, whose embeddings form very tight clusters (titles that differ in one
word): M 16 / ef_construction 200 / ef 64 reached recall@10 0.84 there; these settings 0.975
at ~1.6x the query time. Measured recall and latency:
BENCHMARKS.md (`bench/ann.py`).
"""

from __future__ import annotations

import json
import os
import weakref
from typing import Any

import hnswlib
import lmdb
import numpy as np
from msgspec import msgpack

from adserver.common.hashing import cross, hash_str
from adserver.formats import versions
from adserver.formats.versions import sha256_file

FORMAT = 1
PRODUCT_SEED = 0x70726F64
M = 32
EF_CONSTRUCTION = 400
EF = 128
NEAREST_CACHE = 20000  # remembered searches per index version
ARRAYS = ("keys", "network", "available", "seq", "vectors")
_run = [0]  # HNSW searches run in this process, every index version (metrics)

_catalogs: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()


def key(network_id: int, product_id: str) -> int:
    """The stable 64-bit key of a product (network, retailer's id)."""
    return cross(network_id, hash_str(product_id, PRODUCT_SEED))


def root_of(data_dir: str) -> str:
    return os.path.join(data_dir, "products")


def current(data_dir: str) -> str | None:
    return versions.current(root_of(data_dir))


def versions_of(data_dir: str) -> list[str]:
    """The product index versions on disk, oldest first."""
    root = root_of(data_dir)
    return sorted(n for n in os.listdir(root) if n.isdigit()) if os.path.isdir(root) else []


class ProductIndexError(Exception):
    """A product index version that cannot be used."""


class ProductIndex:
    """One immutable product index version, opened read-only. `graphs=False` skips loading
    the HNSW graphs (the compiler needs only rows and data)."""

    def __init__(self, data_dir: str, version: str, graphs: bool = True, verify: bool = True):
        self.version = version
        self.path = os.path.join(root_of(data_dir), version)
        try:
            with open(os.path.join(self.path, "manifest.json")) as src:
                self.manifest = json.load(src)
            if self.manifest.get("format") != FORMAT:
                raise ProductIndexError(f"product index {version}: unknown format")
            if verify:
                for name, digest in self.manifest["checksums"].items():
                    if sha256_file(os.path.join(self.path, name)) != digest:
                        raise ProductIndexError(
                            f"product index {version}: {name} does not match its checksum"
                        )
            arrays = {
                name: np.load(os.path.join(self.path, name + ".npy"), mmap_mode="r").view(
                    np.ndarray
                )
                for name in ARRAYS
            }
            path = os.path.join(self.path, "catalog")
            env = _catalogs.get(path)
            if env is None:
                env = _catalogs[path] = lmdb.open(
                    path, readonly=True, lock=False, subdir=True, readahead=False
                )
            self.env = env
        except (OSError, ValueError, KeyError, lmdb.Error) as e:
            raise ProductIndexError(f"product index {version}: {e}") from e
        self.keys: np.ndarray = arrays["keys"]
        self.network: np.ndarray = arrays["network"]
        self.available: np.ndarray = arrays["available"]
        self.seq: np.ndarray = arrays["seq"]
        self.vectors: np.ndarray = arrays["vectors"]
        self.model: str | None = self.manifest.get("model")
        self.dim: int = int(self.vectors.shape[1]) if self.vectors.ndim == 2 else 0
        self.txn = self.env.begin(buffers=False)
        self.graphs: dict[int, Any] = {}
        # per graph, its labels sorted and the row of each: a search maps its k labels to
        # rows in this small array, not by binary search over every product's key (~20
        # cache misses a label at 1,000,000 products)
        self._labels: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._products: dict[int, dict[str, Any]] = {}
        # what `nearest` found, per (network, k, ef, context key): searches repeat, and this
        # index outlives the snapshots that name it (a bid or budget change publishes a new
        # snapshot over the same index; its retrieval need not be redone)
        self._nearest: dict[Any, tuple[np.ndarray, np.ndarray]] = {}
        if graphs:
            for net in self.manifest.get("graphs", {}):
                g = hnswlib.Index(space="ip", dim=self.dim)
                try:
                    g.load_index(os.path.join(self.path, f"hnsw-{net}.bin"))
                except RuntimeError as e:
                    raise ProductIndexError(f"product index {version}: hnsw-{net}.bin: {e}") from e
                g.set_ef(EF)
                self.graphs[int(net)] = g
                labels = np.sort(np.array(g.get_ids_list(), dtype=np.uint64))
                self._labels[int(net)] = (labels, self.rows(labels))

    def __len__(self) -> int:
        return int(self.keys.shape[0])

    def rows(self, keys: np.ndarray) -> np.ndarray:
        """Row of each key, -1 where the index has no such product."""
        if self.keys.shape[0] == 0:
            return np.full(keys.shape[0], -1, dtype=np.int64)
        pos = np.searchsorted(self.keys, keys)
        pos = np.minimum(pos, self.keys.shape[0] - 1)
        return np.where(self.keys[pos] == keys, pos, -1).astype(np.int64)

    def row(self, network_id: int, product_id: str) -> int:
        return int(self.rows(np.array([key(network_id, product_id)], dtype=np.uint64))[0])

    def product(self, row: int) -> dict[str, Any]:
        """A product's fields (id, title, brand, category, price, available, image_url, url,
        data), cached."""
        found = self._products.get(row)
        if found is None:
            raw = self.txn.get(row.to_bytes(4, "big"))
            if raw is None:
                raise ProductIndexError(f"row {row} missing from product index {self.version}")
            found = self._products[row] = msgpack.decode(raw)
        return found

    def search(
        self, network_id: int, vector: np.ndarray, k: int, ef: int = EF
    ) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cosine similarities) of the k sponsored products nearest to `vector` in a
        network, best first (fewer when the network has fewer), searching `ef` wide (at
        least k)."""
        g = self.graphs.get(network_id)
        if g is None or k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        _run[0] += 1
        k = min(k, g.get_current_count())
        if g.ef != max(ef, k):
            g.set_ef(max(ef, k))
        labels, dist = g.knn_query(vector, k=k)
        sorted_labels, rows = self._labels[network_id]
        found = labels[0].astype(np.uint64)
        return rows[np.searchsorted(sorted_labels, found)], (1.0 - dist[0]).astype(np.float32)

    def nearest(
        self, network_id: int, vector: np.ndarray, k: int, ef: int, key: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        """`search`, remembered under `key` (what the vector came from: a query text, a
        viewed product; None: not remembered) for as long as this index version serves.
        Callers must not modify the arrays."""
        if key is None:
            return self.search(network_id, vector, k, ef)
        full = (network_id, k, ef, key)
        found = self._nearest.get(full)
        if found is None:
            if len(self._nearest) >= NEAREST_CACHE:
                self._nearest.clear()
            found = self._nearest[full] = self.search(network_id, vector, k, ef)
        return found


def searches_run() -> int:
    """HNSW searches run in this process so far (adserver_retrieval_searches_total)."""
    return _run[0]


def load_current(data_dir: str, graphs: bool = True) -> ProductIndex | None:
    version = current(data_dir)
    return None if version is None else ProductIndex(data_dir, version, graphs)
