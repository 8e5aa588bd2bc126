"""Open a published snapshot version read-only: its format, nothing more (the decision
workers bind their kernels and caches to it: adserver/serving/bound.py).

Columns are memory-mapped, so every worker shares one copy in the page cache; the LMDB
catalog is opened without a lock file (the version is immutable) and read through one
long-lived read transaction.
"""

from __future__ import annotations

import json
import os
import weakref
from typing import Any

import lmdb
import numpy as np
from msgspec import msgpack

from adserver.snapshot import format as f
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


class Snapshot:
    """One immutable version as its format holds it: columns, lookups, posting lists and
    the catalog. What serving binds to it (kernels, the product index, caches) is
    adserver/serving/bound.BoundSnapshot."""

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
                name: np.load(os.path.join(self.path, name + ".npy"), mmap_mode="r").view(
                    np.ndarray
                )
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
        self.sponsored_ad_types: frozenset[int] = frozenset(self.meta.get("sponsored_ad_types", ()))
        # plain-Python copies of the per-priority values read one at a time when responding
        # and explaining (cheaper than numpy scalar access)
        self.prio = {name: c[name].tolist() for name in ("prio_id", "prio_selection")}
        # the waterfall's order (tier, then id) and floors in currency units
        self.prio_order = np.lexsort((c["prio_id"], c["prio_tier"])).astype(np.int32)
        self.prio_floor_cpm = c["prio_floor_cpm"] / 1e6
        self.prio_floor_cpc = c["prio_floor_cpc"] / 1e6

    def _verify(self) -> None:
        """Every file the manifest names has its checksum (a torn or damaged copy is refused)."""
        for name, digest in self.manifest["checksums"].items():
            if sha256_file(os.path.join(self.path, name)) != digest:
                raise SnapshotError(f"snapshot {self.version}: {name} does not match its checksum")

    def lists(self, keys: list[int]) -> list[np.ndarray]:
        """The non-empty posting lists under `keys` (views; each best first)."""
        post_rows = self.columns["post_rows"]
        return [post_rows[a:b] for a, b in (self.posting.get(k, (0, 0)) for k in keys) if b > a]

    def _entry(self, prefix: bytes, ident: int, what: str) -> tuple[bytes, str]:
        """(Kevel contents JSON, click URL) stored under a catalog key."""
        raw = self.txn.get(prefix + ident.to_bytes(8, "big"))
        if raw is None:
            raise SnapshotError(f"{what} {ident} missing from {self.version}")
        contents, click = msgpack.decode(raw)
        return contents, click


def load_current(root: str) -> Snapshot | None:
    """The version CURRENT points at, or None before the first publish."""
    version = current_version(root)
    return None if version is None else Snapshot(root, version)
