"""Write a snapshot version and publish it atomically (the control process's job).

Protocol (adserver/formats/versions.py): write everything into `snapshots/.tmp-<version>/`, fsync
each file and the directory, rename it to `snapshots/<version>/`, then write `CURRENT.tmp`,
fsync and rename it over `CURRENT`. A reader sees the old version or the new one, never a mix.
"""

from __future__ import annotations

import os
import time
from typing import Any

import lmdb
import numpy as np
from msgspec import msgpack

from adserver.formats import versions
from adserver.formats.versions import sha256_file
from adserver.snapshot import format as f

__all__ = ["current_version", "prune", "publish", "sha256_file", "write"]

CATALOG_MAP_SIZE = 8 << 30  # a sparse file: grows with the data, not to this size


def write(
    root: str,
    arrays: dict[str, np.ndarray],
    catalog: dict[bytes, bytes],
    meta: dict[str, Any],
    counts: dict[str, int],
) -> str:
    """Write a new version under root/snapshots and return its name (not yet published)."""
    missing = set(f.COLUMNS) - set(arrays)
    if missing:
        raise ValueError(f"snapshot lacks columns {sorted(missing)}")
    snaps = os.path.join(root, "snapshots")
    version, tmp = versions.begin(snaps, 8)
    checksums = {}
    for name, dtype in f.COLUMNS.items():
        path = os.path.join(tmp, name + ".npy")
        np.save(path, np.ascontiguousarray(arrays[name], dtype=dtype))
        versions.fsync_path(path)
        checksums[name + ".npy"] = sha256_file(path)
    env = lmdb.open(
        os.path.join(tmp, "catalog"),
        map_size=CATALOG_MAP_SIZE,
        subdir=True,
        metasync=True,
        sync=True,
    )
    with env.begin(write=True) as txn:
        for key in sorted(catalog):
            txn.put(key, catalog[key], append=True)
        txn.put(b"~meta", msgpack.encode(meta))
    env.sync(True)
    env.close()
    checksums["catalog/data.mdb"] = sha256_file(os.path.join(tmp, "catalog", "data.mdb"))
    manifest = {
        "format": f.FORMAT_VERSION,
        "version": version,
        "created_at": time.time(),
        "counts": counts,
        "checksums": checksums,
    }
    versions.seal_with_manifest(snaps, tmp, version, manifest, [])
    return version


def publish(root: str, version: str) -> None:
    """Point snapshots/CURRENT at `version` atomically."""
    versions.publish(os.path.join(root, "snapshots"), version)


def prune(root: str, keep: int = 3, min_age_s: float = 30.0) -> list[str]:
    """Delete versions beyond the newest `keep` that are older than `min_age_s`."""
    return versions.prune(os.path.join(root, "snapshots"), keep, min_age_s)


def current_version(root: str) -> str | None:
    return versions.current(os.path.join(root, "snapshots"))
