"""Open a published snapshot version read-only (the decision workers' side).

Columns are memory-mapped, so every worker shares one copy in the page cache; the LMDB
catalog is opened without a lock file (the version is immutable) and read through one
long-lived read transaction.
"""

from __future__ import annotations

import json
import os
import weakref
from typing import Any, NamedTuple

import lmdb
import msgspec
import numpy as np
from msgspec import msgpack

from adserver import _auction, _sponsored, _targeting
from adserver.learn import embed, features
from adserver.learn.embed import Model
from adserver.snapshot import format as f
from adserver.snapshot.products import ProductIndex, ProductIndexError
from adserver.snapshot.writer import current_version, sha256_file

# LMDB allows one open environment per file and process: Snapshot objects of one version in
# one process (the workers of `adserver simulate`) share it; it closes with the last of them
_catalogs: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()


def _catalog(path: str) -> Any:
    env = _catalogs.get(path)
    if env is None:
        env = lmdb.open(path, readonly=True, lock=False, subdir=True, readahead=False)
        _catalogs[path] = env
    return env


class SnapshotError(Exception):
    """A version that cannot be served (missing or damaged files)."""


class Ad(NamedTuple):
    """An ad row's ids, contents and logged fields (Snapshot.ad)."""

    ad_id: int
    creative_id: int
    flight_id: int
    campaign_id: int
    advertiser_id: int
    contents: msgspec.Raw  # Kevel contents JSON
    dest: str  # the creative's (or product's) click destination
    features: tuple[int, ...]  # learn/features.AD_ORDER values, as the decision record logs them
    prior_ctr: float
    prior_cvr: float


class Snapshot:
    """One immutable version: columns, lookups, the targeting kernel and the catalog."""

    def __init__(self, root: str, version: str):
        self.version = version
        self.path = os.path.join(root, "snapshots", version)
        try:
            with open(os.path.join(self.path, "manifest.json")) as src:
                self.manifest = json.load(src)
            if self.manifest.get("format") != f.FORMAT_VERSION:
                raise SnapshotError(f"snapshot {version}: format {self.manifest.get('format')}")
            self._verify()
            # plain ndarray views of the maps: same shared pages, without np.memmap's
            # Python-level __getitem__ on every scalar read
            self.columns: dict[str, np.ndarray] = {
                name: np.load(os.path.join(self.path, name + ".npy"),
                              mmap_mode="r").view(np.ndarray)
                for name in f.COLUMNS
            }
            self.env = _catalog(os.path.join(self.path, "catalog"))
        except (OSError, ValueError, lmdb.Error) as e:
            raise SnapshotError(f"snapshot {version}: {e}") from e
        self.txn = self.env.begin(buffers=False)
        self.meta: dict[str, Any] = msgpack.decode(self.txn.get(b"~meta"))
        self.networks: dict[int, str] = self.meta["networks"]
        # hosts each network's clicks may go to (absent: any http(s) host)
        self.click_domains: dict[int, list[str]] = self.meta.get("click_domains", {})
        self.sites: dict[int, int] = self.meta["sites"]
        self.zones: dict[int, list[int]] = self.meta["zones"]
        self.keys = {k[0]: k for k in self.meta["keys"]}
        # ads held back from serving: [ad, flight, campaign, advertiser, network, reason]
        self.held: list[list[Any]] = self.meta.get("held", [])
        c = self.columns
        self.posting: dict[int, tuple[int, int]] = {
            int(k): (int(a), int(b))
            for k, a, b in zip(c["post_key"], c["post_ptr"][:-1], c["post_ptr"][1:])
        }
        self.keyword_bids: bool = bool(self.meta.get("keyword_bids"))
        # the product index this version was compiled against, and its embedding model
        self.products: ProductIndex | None = None
        self.embedder: Model | None = None
        self.sponsored_ad_types: frozenset[int] = frozenset(self.meta.get("sponsored_ad_types", ()))
        self.retrieved: dict[Any, tuple[np.ndarray, ...]] = {}  # serving/stages/sponsored.retrieved
        self.candidates: dict[Any, Any] = {}  # serving/stages/candidates.for_placement
        if self.meta.get("products"):
            self.products, self.embedder = _product_index(root, self.meta["products"])
        self.no_pause = np.zeros(0, dtype=np.int8)
        self._ads: dict[int, Ad] = {}
        # plain-Python copies of the per-priority values read one at a time when responding
        # and explaining (cheaper than numpy scalar access)
        self.prio = {name: c[name].tolist() for name in ("prio_id", "prio_selection")}
        # the waterfall's order (tier, then id) and floors in currency units
        self.prio_order = np.lexsort((c["prio_id"], c["prio_tier"])).astype(np.int32)
        self.prio_floor_cpm = c["prio_floor_cpm"] / 1e6
        self.prio_floor_cpc = c["prio_floor_cpc"] / 1e6
        self._bind_kernels()
        # every ad row's CTR-model fields (learn/features.AD_ORDER), for scoring and records
        self.ad_features = features.ad_matrix(c)
        self.ad_rate = c["fl_rate"][c["ad_flight"]]  # each ad row's flight rate type

    def _bind_kernels(self) -> None:
        """The native kernels, bound once to this version's columns: the filter (which
        builds the hot records), the relevance gate (the records and the product index) and
        the auction waterfall (the records and the priorities). They read rows without
        bounds checks, so data that points nowhere is refused here, not in a request."""
        c = self.columns
        try:
            self.targeting = _targeting.Targeting(c, self.meta["strings"])
            self.gate: _sponsored.Gate | None = None if self.products is None else \
                _sponsored.Gate(self.targeting.records, self.products.vectors,
                                self.products.available,
                                (c["sp_prow"], c["sp_ptr"], c["sp_rows"]))
            self.waterfall = _auction.Waterfall(
                self.targeting.records, self.prio_order, c["prio_selection"],
                c["prio_second"], self.prio_floor_cpm, self.prio_floor_cpc)
        except (ValueError, TypeError) as e:
            raise SnapshotError(f"snapshot {self.version}: {e}") from e

    def _verify(self) -> None:
        """Every file the manifest names has its checksum (a torn or damaged copy is refused)."""
        for name, digest in self.manifest["checksums"].items():
            if sha256_file(os.path.join(self.path, name)) != digest:
                raise SnapshotError(f"snapshot {self.version}: {name} does not match its checksum")

    def lists(self, keys: list[int]) -> list[np.ndarray]:
        """The non-empty posting lists under `keys` (views; each best first)."""
        post_rows = self.columns["post_rows"]
        return [post_rows[a:b] for a, b in (self.posting.get(k, (0, 0)) for k in keys) if b > a]

    def ad(self, row: int) -> Ad:
        """What responding and logging need of an ad row, read once per version (winners
        repeat: a few plain-Python fields beat six numpy fancy-index reads per winner). Its
        contents are its product's when it promotes one the product index holds, else its
        creative's."""
        found = self._ads.get(row)
        if found is None:
            c = self.columns
            fl = int(c["ad_flight"][row])
            creative = int(c["ad_creative"][row])
            if c["ad_product"][row] < 0:
                contents, dest = self._entry(b"cr", creative, "creative")
            else:
                contents, dest = self._entry(b"ap", int(c["ad_id"][row]),
                                             "product contents of ad")
            found = self._ads[row] = Ad(
                int(c["ad_id"][row]), creative, int(c["fl_id"][fl]), int(c["fl_campaign"][fl]),
                int(c["fl_advertiser"][fl]), msgspec.Raw(contents), dest,
                tuple(self.ad_features[row].tolist()), float(c["ad_prior_ctr"][row]),
                float(c["ad_prior_cvr"][row]))
        return found

    def _entry(self, prefix: bytes, ident: int, what: str) -> tuple[bytes, str]:
        """(Kevel contents JSON, click URL) stored under a catalog key."""
        raw = self.txn.get(prefix + ident.to_bytes(8, "big"))
        if raw is None:
            raise SnapshotError(f"{what} {ident} missing from {self.version}")
        contents, click = msgpack.decode(raw)
        return contents, click


_indexes: dict[str, tuple[ProductIndex, Model]] = {}


def _product_index(root: str, version: str) -> tuple[ProductIndex, Model]:
    """A product index version with its HNSW graphs and embedding model, shared by the
    snapshots that name it (the last two versions stay open)."""
    found = _indexes.get(version)
    if found is None:
        try:
            index = ProductIndex(root, version)
            model = embed.load(root, index.model or "")
        except (ProductIndexError, embed.ModelError) as e:
            raise SnapshotError(str(e)) from e
        while len(_indexes) >= 2:
            _indexes.pop(next(iter(_indexes)))
        found = _indexes[version] = (index, model)
    return found


def load_current(root: str) -> Snapshot | None:
    """The version CURRENT points at, or None before the first publish."""
    version = current_version(root)
    return None if version is None else Snapshot(root, version)
