"""Versioned directories published through a CURRENT pointer: snapshots, product indexes and
embedding models all follow this protocol (indexes/README.md).

Write a version into `<root>/.tmp-<version>-<pid>/`, fsync each file and the directory,
`seal` it (rename to `<root>/<version>/`, fsync the root), then `publish`: write
`CURRENT.tmp`, fsync, rename over `CURRENT`, fsync the root. A reader sees the old version or
the new one, never a mix. Only the control process writes these directories.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterable, Sequence
from typing import Any


def fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_file(path: str) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as src:
        for block in iter(lambda: src.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def begin(root: str, width: int) -> tuple[str, str]:
    """(next version name, its temporary directory, created)."""
    os.makedirs(root, exist_ok=True)
    numbers = [int(n) for n in os.listdir(root) if n.isdigit()]
    version = f"{max(numbers, default=0) + 1:0{width}d}"
    tmp = os.path.join(root, f".tmp-{version}-{os.getpid()}")
    os.makedirs(tmp)
    return version, tmp


def seal(root: str, tmp: str, version: str, files: list[str]) -> None:
    """fsync `files` (relative to tmp) and the directory, then rename it into place."""
    for name in files:
        fsync_path(os.path.join(tmp, name))
    fsync_path(tmp)
    os.rename(tmp, os.path.join(root, version))
    fsync_path(root)


def seal_with_manifest(
    root: str, tmp: str, version: str, manifest: dict[str, Any], files: Sequence[str]
) -> None:
    """Write `manifest` as tmp/manifest.json (sorted keys, one space indent), then `seal`
    the version with it and `files`: the one way every versioned store finishes a
    version."""
    with open(os.path.join(tmp, "manifest.json"), "w") as out:
        json.dump(manifest, out, indent=1, sort_keys=True)
    seal(root, tmp, version, [*dict.fromkeys([*files, "manifest.json"])])


def publish(root: str, version: str, pointer: str = "CURRENT") -> None:
    """Point `<root>/CURRENT` (or another pointer file) at `version` atomically; an empty
    `version` points at nothing."""
    os.makedirs(root, exist_ok=True)
    tmp = os.path.join(root, pointer + ".tmp")
    with open(tmp, "w") as out:
        out.write(version + "\n" if version else "")
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, os.path.join(root, pointer))
    fsync_path(root)


def current(root: str, pointer: str = "CURRENT") -> str | None:
    try:
        with open(os.path.join(root, pointer)) as src:
            return src.read().strip() or None
    except FileNotFoundError:
        return None


def prune(root: str, keep: int, min_age_s: float, keep_also: Iterable[str] = ()) -> list[str]:
    """Delete versions beyond the newest `keep` that are older than `min_age_s` (a reader may
    still be loading one; files a reader has mapped stay readable after deletion), and
    leftovers of a crashed writer. CURRENT, SHADOW and `keep_also` are never deleted."""
    if not os.path.isdir(root):
        return []
    pinned = {current(root), current(root, "SHADOW"), *keep_also}
    versions = sorted(n for n in os.listdir(root) if n.isdigit())
    removed = []
    now = time.time()
    for v in versions[:-keep]:
        path = os.path.join(root, v)
        if v not in pinned and now - os.path.getmtime(path) > min_age_s:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(v)
    for n in os.listdir(root):
        if n.startswith(".tmp-") and now - os.path.getmtime(os.path.join(root, n)) > 600:
            shutil.rmtree(os.path.join(root, n), ignore_errors=True)
    return removed
