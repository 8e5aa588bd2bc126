"""Build product index versions (adserver/snapshot/products.py) in the control process.

A new version is built when the catalog changed (its change number or row count), the set of
products with serve-eligible ads changed (the compiler reports it after every snapshot), or
the embedding model changed. Building never blocks snapshot compiles: it runs in its own
thread, and the publisher picks the new version up when it is published.

Work is reused from the previous version: a product whose row did not change keeps its
vector (same model), and a network whose sponsored products and their vectors are unchanged
keeps its HNSW graph (hard link). The first build trains the embedding model from the catalog
when models/embed has none. Ops can drop a static model (vocab.txt, matrix.npy, weights.npy)
into models/inbox/embed/<name>/: it is checked, published and used for the next build, or
refused with the reason in models/inbox/embed/<name>/REJECTED.txt.

Product vectors given in the catalog live in the space of an ops-supplied (static) model: they
are used as they are when such a model of their dimension is current (one of another dimension
is refused at the inbox, and product writes must match it), never with the model built from
the catalog, whose space they are not in. Other products are embedded from their text.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from typing import Any

import hnswlib
import lmdb
import numpy as np
from msgspec import msgpack

from adserver.common.entities import CATEGORY_SEPARATOR
from adserver.control import telemetry
from adserver.control.store import Store
from adserver.formats import versions
from adserver.formats.versions import sha256_file
from adserver.learn import embed
from adserver.snapshot import products as px

log = logging.getLogger("adserver.catalog")
CHECK_EVERY_S = 2.0
MAP_SIZE = 64 << 30  # sparse: grows with the data
Sponsored = dict[int, set[str]]  # network id -> product ids with serve-eligible ads


def catalog_digest(store: Store) -> tuple[int, int, int]:
    row = store.read(
        "SELECT count(*), coalesce(max(seq), 0), (SELECT n FROM catalog_seq) FROM products"
    )[0]
    return int(row[0]), int(row[1]), int(row[2])


def read_catalog(store: Store) -> list[Any]:
    return store.read(
        "SELECT network_id, id, title, brand, category, price_micros, available,"
        " image_url, url, data, vector, seq FROM products"
    )


def _text(r: Any) -> str:
    return embed.product_text(r["title"], r["brand"], r["category"].split(CATEGORY_SEPARATOR))


def inbox_dir(data_dir: str) -> str:
    return os.path.join(data_dir, "models", "inbox", "embed")


def take_inbox(store: Store, data_dir: str) -> str | None:
    """Publish the first acceptable static model waiting in the inbox; returns its version.
    A refused one gets REJECTED.txt with the reason and stays where it is."""
    inbox = inbox_dir(data_dir)
    if not os.path.isdir(inbox):
        return None
    for name in sorted(os.listdir(inbox)):
        src = os.path.join(inbox, name)
        if not os.path.isdir(src) or os.path.exists(os.path.join(src, "REJECTED.txt")):
            continue
        try:
            matrix, weights, vocab = embed.read_static(src)
            dims = {
                len(r["vector"]) // 4
                for r in store.read(
                    "SELECT vector FROM products WHERE vector IS NOT NULL GROUP BY length(vector)"
                )
            }
            other = sorted(d for d in dims if d != matrix.shape[1])
            if other:
                raise embed.ModelError(
                    f"the model has dimension {matrix.shape[1]} but catalog products carry"
                    f" vectors of dimension {', '.join(map(str, other))}"
                )
        except embed.ModelError as e:
            with open(os.path.join(src, "REJECTED.txt"), "w") as out:
                out.write(f"{e}\n")
            log.error("embedding model %s refused: %s", name, e)
            continue
        version = embed.write(data_dir, "static", matrix, weights, {"source": name}, vocab)
        embed.publish(data_dir, version)
        shutil.rmtree(src, ignore_errors=True)
        log.info("embedding model %s published as %s", name, version)
        return version
    return None


GROWTH = 2.0  # the catalog doubled since the model was trained: train again
DRIFT = 0.8  # a product with less than this share of words the model was trained on
NEW_SAMPLE = 1000  # products written since the model was trained that are checked
KEEP_MODELS = 3  # embedding model versions kept besides those a kept product index names


def outgrown(store: Store, model: embed.Model) -> str | None:
    """Why a model trained from the catalog no longer fits it, or None: the catalog doubled,
    or a product written since (of the newest NEW_SAMPLE) is poorly represented: a fifth or
    more of its words are new to the model (vocabulary drift). Models dropped in by ops are
    never replaced."""
    m = model.manifest
    if model.kind != "hashed" or "catalog_seq" not in m:
        return None
    count = catalog_digest(store)[0]
    trained = int(m["trained_on"])
    if count >= GROWTH * trained and count - trained >= 8:
        return f"the catalog grew from {trained} to {count} products"
    rows = store.read(
        "SELECT title, brand, category FROM products WHERE seq > ? ORDER BY seq DESC LIMIT ?",
        (int(m["catalog_seq"]), NEW_SAMPLE),
    )
    poor = [t for t in map(_text, rows) if model.known_share(t) < DRIFT]
    if poor:
        return (
            f"{len(poor)} of {len(rows)} products written since it was trained are"
            f" poorly represented (e.g. {poor[0]!r})"
        )
    return None


def train(store: Store, data_dir: str, reason: str) -> str | None:
    """Train a model on the whole catalog and make it CURRENT; returns its version (None
    while the catalog is empty)."""
    digest = catalog_digest(store)
    texts = [_text(r) for r in store.read("SELECT title, brand, category FROM products")]
    if not texts:
        return None
    from adserver.training import embed_train  # scipy: only when a model is trained

    started = time.perf_counter()
    version = embed_train.build(data_dir, texts, catalog_seq=digest[1], reason=reason)
    embed.publish(data_dir, version)
    log.info(
        "embedding model %s trained on %d products in %.1f s (%s)",
        version,
        len(texts),
        time.perf_counter() - started,
        reason,
    )
    return version


def ensure_model(store: Store, data_dir: str, check: bool = False) -> embed.Model | None:
    """The CURRENT embedding model; trains one from the catalog when there is none (None
    while the catalog is empty) and, with `check`, a new one when the catalog has outgrown
    it (`outgrown`)."""
    take_inbox(store, data_dir)
    version = embed.current(data_dir)
    if version is None:
        version = train(store, data_dir, "first catalog")
        if version is None:
            return None
    model = embed.load(data_dir, version)
    why = outgrown(store, model) if check else None
    if why is not None:
        model = embed.load(data_dir, train(store, data_dir, why) or version)
    return model


def prune_models(data_dir: str) -> list[str]:
    """Delete embedding model versions no kept product index names, beyond the newest
    KEEP_MODELS (CURRENT is always kept)."""
    root = embed.models_dir(data_dir)
    named = set()
    for v in px.versions_of(data_dir):
        try:
            with open(os.path.join(px.root_of(data_dir), v, "manifest.json")) as src:
                named.add(json.load(src)["model"])
        except (OSError, ValueError, KeyError):
            continue
    return versions.prune(root, KEEP_MODELS, 60.0, keep_also=named)


def _vector_bytes(vectors: np.ndarray, rows: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(vectors[rows]).tobytes())
    return h.hexdigest()


def build(
    store: Store,
    data_dir: str,
    model: embed.Model,
    sponsored: Sponsored,
    prev: px.ProductIndex | None = None,
    progress: bool = False,
) -> str:
    """Write and publish a product index version; returns its name."""
    started = time.perf_counter()
    catalog = read_catalog(store)
    n = len(catalog)
    keys = np.array([px.key(r["network_id"], r["id"]) for r in catalog], dtype=np.uint64)
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    dup = np.flatnonzero(keys[1:] == keys[:-1]) + 1 if n else np.zeros(0, dtype=np.int64)
    if dup.shape[0]:  # a 64-bit key collision: keep the first product, name the others
        log.warning("product key collision: %d products skipped", dup.shape[0])
        keep = np.ones(n, dtype=bool)
        keep[dup] = False
        order, keys = order[keep], keys[keep]
    rows_in = [catalog[i] for i in order.tolist()]
    n = len(rows_in)
    vectors = np.zeros((n, model.dim), dtype=np.float32)
    seq = np.array([r["seq"] for r in rows_in], dtype=np.int64)
    reuse = np.full(n, -1, dtype=np.int64)
    if prev is not None and prev.model == model.version and prev.dim == model.dim and n:
        reuse = prev.rows(keys)
        same = reuse >= 0
        same[same] = prev.seq[reuse[same]] == seq[same]
        reuse[~same] = -1
        vectors[same] = prev.vectors[reuse[same]]
    ignored = 0
    from tqdm import tqdm

    for i in tqdm(range(n), desc="embedding", unit="product", disable=not progress):
        if reuse[i] >= 0:
            continue
        r = rows_in[i]
        v = None
        if r["vector"] is not None and model.kind == "static":
            given = np.frombuffer(r["vector"], dtype="<f4")
            if given.shape[0] == model.dim and np.isfinite(given).all():
                norm = float(np.linalg.norm(given))
                v = given / norm if norm > 0 else None
            else:
                ignored += 1
        if v is None:
            v = model.embed(_text(r))
        if v is not None:
            vectors[i] = v
    network = np.array([r["network_id"] for r in rows_in], dtype=np.int64)
    available = np.array([r["available"] for r in rows_in], dtype=np.int8)

    root = px.root_of(data_dir)
    version, tmp = versions.begin(root, 8)
    arrays: dict[str, np.ndarray] = {
        "keys": keys,
        "network": network,
        "available": available,
        "seq": seq,
        "vectors": vectors,
    }
    for name, arr in arrays.items():
        np.save(os.path.join(tmp, name + ".npy"), arr)
    env = lmdb.open(os.path.join(tmp, "catalog"), map_size=MAP_SIZE, subdir=True)
    with env.begin(write=True) as txn:
        for i, r in enumerate(rows_in):
            txn.put(
                i.to_bytes(4, "big"),
                msgpack.encode(
                    {
                        "id": r["id"],
                        "network_id": r["network_id"],
                        "title": r["title"],
                        "brand": r["brand"],
                        "category": [c for c in r["category"].split(CATEGORY_SEPARATOR) if c],
                        "price": r["price_micros"] / 1e6,
                        "available": bool(r["available"]),
                        "image_url": r["image_url"],
                        "url": r["url"],
                        "data": json.loads(r["data"]),
                    }
                ),
                append=True,
            )
    env.sync(True)
    env.close()
    graphs = _graphs(tmp, keys, network, vectors, sponsored, prev, progress)
    names = (
        [a + ".npy" for a in arrays] + ["catalog/data.mdb"] + [f"hnsw-{net}.bin" for net in graphs]
    )
    manifest = {
        "format": px.FORMAT,
        "version": version,
        "model": model.version,
        "dim": model.dim,
        "created_at": time.time(),
        "products": n,
        "catalog": list(catalog_digest(store)),
        "graphs": graphs,
        "vectors_ignored": ignored,
        "reused_vectors": int((reuse >= 0).sum()),
        "hnsw": {"M": px.M, "ef_construction": px.EF_CONSTRUCTION, "ef": px.EF},
        "build_s": 0.0,
        "checksums": {name: sha256_file(os.path.join(tmp, name)) for name in names},
    }
    manifest["build_s"] = round(time.perf_counter() - started, 3)
    versions.seal_with_manifest(root, tmp, version, manifest, names)
    versions.publish(root, version)
    versions.prune(root, 3, 60.0)  # a snapshot still served may name an older one
    return version


def _graphs(
    tmp: str,
    keys: np.ndarray,
    network: np.ndarray,
    vectors: np.ndarray,
    sponsored: Sponsored,
    prev: px.ProductIndex | None,
    progress: bool,
) -> dict[str, dict[str, Any]]:
    """Write hnsw-<network>.bin for each network with sponsored products; reuse the previous
    version's graph (hard link) when its products, their vectors and the HNSW parameters
    are the same."""
    out: dict[str, dict[str, Any]] = {}
    for net, ids in sorted(sponsored.items()):
        want = np.array(sorted({px.key(net, pid) for pid in ids}), dtype=np.uint64)
        pos = np.searchsorted(keys, want)
        pos = np.minimum(pos, max(keys.shape[0] - 1, 0))
        found = keys.shape[0] > 0
        rows = pos[(keys[pos] == want) & (network[pos] == net)] if found else pos[:0]
        rows = rows[np.abs(vectors[rows]).sum(axis=1) > 0]  # products with an embedding
        if rows.shape[0] == 0:
            continue
        digest = _vector_bytes(vectors, rows)
        file = os.path.join(tmp, f"hnsw-{net}.bin")
        old = prev.manifest.get("graphs", {}).get(str(net)) if prev is not None else None
        params = [px.M, px.EF_CONSTRUCTION]
        if (
            old is not None
            and old["digest"] == digest
            and old["dim"] == vectors.shape[1]
            and old.get("params") == params
        ):
            os.link(os.path.join(prev.path, f"hnsw-{net}.bin"), file)  # type: ignore[union-attr]
        else:
            g = hnswlib.Index(space="ip", dim=vectors.shape[1])
            g.init_index(
                max_elements=rows.shape[0],
                ef_construction=px.EF_CONSTRUCTION,
                M=px.M,
                random_seed=net,
            )
            g.add_items(vectors[rows], keys[rows], num_threads=-1)
            g.save_index(file)
        out[str(net)] = {
            "count": int(rows.shape[0]),
            "digest": digest,
            "dim": int(vectors.shape[1]),
            "params": params,
        }
    return out


def model_status(model: embed.Model) -> dict[str, Any]:
    """What the catalog status says of the embedding model: which, how made, how fresh."""
    m = model.manifest
    return {
        "version": model.version,
        "kind": model.kind,
        "dim": model.dim,
        "trained_at": m.get("created_at"),
        "trained_on": m.get("trained_on"),
        "reason": m.get("reason", m.get("source")),
    }


class CatalogBuilder:
    """The control process's catalog thread: builds a product index when its inputs change
    and tells the publisher, which compiles a snapshot against it."""

    def __init__(
        self,
        store: Store,
        data_dir: str,
        on_built: Callable[[], None],
        rebuild_every_s: float = 600.0,
    ):
        self.store, self.data_dir, self.on_built = store, data_dir, on_built
        # how often the embedding model is checked against the catalog (outgrown)
        self.rebuild_every_s = rebuild_every_s
        self.checked_at = time.monotonic()
        self.checked_digest: tuple[int, int, int] | None = None
        self.sponsored: Sponsored | None = None
        self.wake = threading.Event()
        self.stopping = False
        self.built_from: tuple[Any, ...] | None = None
        self.status: dict[str, Any] = {"version": px.current(data_dir), "error": None}
        prev = px.load_current(data_dir, graphs=False) if self.status["version"] else None
        self.status["manifest"] = prev.manifest if prev is not None else None
        model = embed.current(data_dir)
        try:
            self.status["model"] = model_status(embed.load(data_dir, model)) if model else None
        except embed.ModelError:
            self.status["model"] = None

    def want(self, sponsored: Sponsored) -> None:
        """The sponsored products of the snapshot just compiled (the compiler calls this)."""
        if sponsored != self.sponsored:
            self.sponsored = sponsored
            self.wake.set()

    def inputs(self) -> tuple[Any, ...]:
        inbox = inbox_dir(self.data_dir)
        waiting = sorted(os.listdir(inbox)) if os.path.isdir(inbox) else []
        # `want` replaces the sponsored dict, never changes it: comparing it is enough
        return (
            catalog_digest(self.store),
            embed.current(self.data_dir),
            tuple(waiting),
            self.sponsored,
        )

    def step(self) -> str | None:
        """Build if anything changed since the last build; returns the new version."""
        if self.sponsored is None:
            return None  # no snapshot compiled yet
        inputs = self.inputs()
        # the model is checked against the catalog at most every rebuild_every_s, once per
        # catalog change (a check that finds it fits changes nothing)
        check = (
            inputs[0] != self.checked_digest
            and time.monotonic() - self.checked_at >= self.rebuild_every_s
        )
        if inputs == self.built_from and not check:
            return None
        try:
            if check:
                self.checked_at, self.checked_digest = time.monotonic(), inputs[0]
            model = ensure_model(self.store, self.data_dir, check)
            if inputs == self.built_from and model is not None and model.version == inputs[1]:
                return None  # checked: the model still fits, and nothing else changed
            if model is None:
                self.built_from = inputs
                return None
            prev = px.load_current(self.data_dir, graphs=False)
            with telemetry.timed(telemetry.CATALOG):
                version = build(self.store, self.data_dir, model, self.sponsored, prev)
            log.info("product index %s built with embedding model %s", version, model.version)
        except Exception as e:  # the previous version keeps serving
            log.exception("product index build failed")
            self.status["error"] = f"{type(e).__name__}: {e}"
            self.built_from = inputs  # retried when an input changes
            return None
        self.built_from = self.inputs()
        prune_models(self.data_dir)
        self.status.update(
            version=version,
            error=None,
            built_at=time.time(),
            model=model_status(model),
            manifest=px.ProductIndex(self.data_dir, version, graphs=False, verify=False).manifest,
        )
        self.on_built()
        return version

    def loop(self) -> None:
        while not self.stopping:
            self.wake.wait(CHECK_EVERY_S)
            self.wake.clear()
            if not self.stopping:
                self.step()

    def start(self) -> None:
        threading.Thread(target=self.loop, name="catalog", daemon=True).start()

    def stop(self) -> None:
        self.stopping = True
        self.wake.set()
