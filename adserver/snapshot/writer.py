"""Write a snapshot version and publish it atomically (the control process's job).

Protocol: write everything into `snapshots/.tmp-<version>/`, fsync each file and the
directory, rename it to `snapshots/<version>/`, then write `CURRENT.tmp`, fsync and rename it
over `CURRENT`. A reader sees the old version or the new one, never a mix.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from typing import Any

import lmdb
import numpy as np
from msgspec import msgpack

from adserver.snapshot import format as f

CATALOG_MAP_SIZE = 8 << 30  # a sparse file: grows with the data, not to this size


def _fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def next_version(root: str) -> str:
    snaps = os.path.join(root, "snapshots")
    numbers = [int(n) for n in os.listdir(snaps) if n.isdigit()] if os.path.isdir(snaps) else []
    return f"{max(numbers, default=0) + 1:08d}"


def write(
    root: str, arrays: dict[str, np.ndarray], catalog: dict[bytes, bytes], meta: dict[str, Any],
    counts: dict[str, int],
) -> str:
    """Write a new version under root/snapshots and return its name (not yet published)."""
    missing = set(f.COLUMNS) - set(arrays)
    if missing:
        raise ValueError(f"snapshot lacks columns {sorted(missing)}")
    snaps = os.path.join(root, "snapshots")
    os.makedirs(snaps, exist_ok=True)
    version = next_version(root)
    tmp = os.path.join(snaps, f".tmp-{version}-{os.getpid()}")
    os.makedirs(tmp)
    checksums = {}
    for name, dtype in f.COLUMNS.items():
        path = os.path.join(tmp, name + ".npy")
        np.save(path, np.ascontiguousarray(arrays[name], dtype=dtype))
        _fsync_path(path)
        checksums[name + ".npy"] = sha256_file(path)
    env = lmdb.open(os.path.join(tmp, "catalog"), map_size=CATALOG_MAP_SIZE, subdir=True,
                    metasync=True, sync=True)
    with env.begin(write=True) as txn:
        for key in sorted(catalog):
            txn.put(key, catalog[key], append=True)
        txn.put(b"~meta", msgpack.encode(meta))
    env.sync(True)
    env.close()
    checksums["catalog/data.mdb"] = sha256_file(os.path.join(tmp, "catalog", "data.mdb"))
    manifest = {"format": f.FORMAT_VERSION, "version": version, "created_at": time.time(),
                "counts": counts, "checksums": checksums}
    with open(os.path.join(tmp, "manifest.json"), "w") as out:
        json.dump(manifest, out, indent=1, sort_keys=True)
        out.flush()
        os.fsync(out.fileno())
    _fsync_path(tmp)
    final = os.path.join(snaps, version)
    os.rename(tmp, final)
    _fsync_path(snaps)
    return version


def publish(root: str, version: str) -> None:
    """Point CURRENT at `version` atomically."""
    snaps = os.path.join(root, "snapshots")
    tmp = os.path.join(snaps, "CURRENT.tmp")
    with open(tmp, "w") as out:
        out.write(version + "\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, os.path.join(snaps, "CURRENT"))
    _fsync_path(snaps)


def prune(root: str, keep: int = 3, min_age_s: float = 30.0) -> list[str]:
    """Delete versions beyond the newest `keep` that are older than `min_age_s` (a worker may
    still be loading one; files a worker has mapped stay readable after deletion)."""
    snaps = os.path.join(root, "snapshots")
    current = current_version(root)
    versions = sorted(n for n in os.listdir(snaps) if n.isdigit())
    removed = []
    now = time.time()
    for v in versions[:-keep]:
        path = os.path.join(snaps, v)
        if v != current and now - os.path.getmtime(path) > min_age_s:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(v)
    for n in os.listdir(snaps):  # leftovers of a crashed writer
        if n.startswith(".tmp-") and now - os.path.getmtime(os.path.join(snaps, n)) > 600:
            shutil.rmtree(os.path.join(snaps, n), ignore_errors=True)
    return removed


def current_version(root: str) -> str | None:
    try:
        with open(os.path.join(root, "snapshots", "CURRENT")) as f_:
            return f_.read().strip() or None
    except FileNotFoundError:
        return None


def sha256_file(path: str) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as src:
        for block in iter(lambda: src.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
