"""HNSW retrieval at catalog scale: recall@k against brute force, and query latency.

    .venv/bin/python -m bench.ann [--data-dir DIR] [--queries 1000] [--ef 16,32,64,128]

Takes the product vectors of the product index in DIR (default: the `--scale bench` data of
bench/e2e.py, 1,000,000 seeded products embedded by the model built from that catalog),
measures the serving graph (the sponsored products of network 1) and one graph over all of
them built with the serving parameters (adserver/snapshot/products.py; cached in
DIR/ann-cache/), asking short queries made of two words of random product titles, embedded as
the decision path embeds a search. Recall counts ties:
a result is right when its similarity reaches the k-th best one's (the seeded titles repeat,
so many products share a vector). Latency: one query at a time, one thread, k results.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import hnswlib
import numpy as np

from adserver.learn import embed
from adserver.snapshot import products


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--data-dir", default=os.path.join(tempfile.gettempdir(), "adserver-bench-bench")
    )
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--ef", default="32,64,128,256")
    ap.add_argument("--k", default="10,50")
    args = ap.parse_args()
    index = products.load_current(args.data_dir, graphs=False)
    if index is None:
        raise SystemExit(f"no product index in {args.data_dir}: run bench.e2e --scale bench")
    model = embed.load(args.data_dir, index.model or "")
    vectors = np.ascontiguousarray(index.vectors)
    n, dim = vectors.shape
    cache = os.path.join(
        args.data_dir,
        "ann-cache",
        f"{index.version}-M{products.M}-efc{products.EF_CONSTRUCTION}.bin",
    )
    g = hnswlib.Index(space="ip", dim=dim)
    if os.path.exists(cache):
        g.load_index(cache)
        with open(cache + ".json") as src:
            build_s = json.load(src)["build_s"]
    else:
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        started = time.perf_counter()
        g.init_index(
            max_elements=n, ef_construction=products.EF_CONSTRUCTION, M=products.M, random_seed=1
        )
        g.add_items(vectors, np.arange(n), num_threads=-1)
        build_s = round(time.perf_counter() - started, 1)
        g.save_index(cache)
        with open(cache + ".json", "w") as out:
            json.dump({"build_s": build_s}, out)
    rng = np.random.default_rng(3)
    texts = []
    for row in rng.choice(n, args.queries, replace=False).tolist():
        words = index.product(row)["title"].replace(",", "").split()
        texts.append(" ".join(rng.choice(words, 2, replace=False)))
    qs = [model.query(t) for t in texts]
    queries = np.stack([v for v, _ in qs if v is not None])
    ks = [int(x) for x in args.k.split(",")]
    serving = index.__class__(args.data_dir, index.version).graphs.get(1)
    print(
        f"{n:,} products x {dim} dims; {len(queries)} queries; HNSW M {products.M},"
        f" ef_construction {products.EF_CONSTRUCTION}"
    )
    print()
    print("| graph | products | build s | k | ef | recall@k (ties count) | p50 us | p99 us |")
    print("|---|---|---|---|---|---|---|---|")
    if serving is not None:  # what the decision path searches: the sponsored products
        labels = np.array(serving.get_ids_list(), dtype=np.uint64)
        rows = index.rows(labels)
        order = np.argsort(labels)
        measure(
            serving,
            vectors[rows[order]],
            labels[order],
            rows[order],
            queries,
            ks,
            args.ef,
            f"sponsored (serving) | {len(rows):,} | {index.manifest['build_s']}",
        )
    measure(g, vectors, None, None, queries, ks, args.ef, f"all products | {n:,} | {build_s}")


def measure(
    g: hnswlib.Index,
    vectors: np.ndarray,
    labels: np.ndarray | None,
    rows: np.ndarray | None,
    queries: np.ndarray,
    ks: list[int],
    efs: str,
    name: str,
) -> None:
    """Recall against brute force over `vectors` (the graph's points; `labels` sorted, with
    their `rows` in `vectors`'s source, map labels back when they are not positions)."""
    kth = np.empty((len(queries), len(ks)), dtype=np.float32)
    for start in range(0, len(queries), 50):
        sims = queries[start : start + 50] @ vectors.T
        for j, k in enumerate(ks):
            kth[start : start + 50, j] = -np.partition(-sims, k - 1, axis=1)[:, k - 1]
    for j, k in enumerate(ks):
        for ef in [int(x) for x in efs.split(",")]:
            g.set_ef(max(ef, k))
            hits, times = 0, []
            for i, q in enumerate(queries):
                t0 = time.perf_counter_ns()
                found, _ = g.knn_query(q, k=k)
                times.append((time.perf_counter_ns() - t0) / 1000)
                pos = (
                    found[0]
                    if labels is None
                    else np.searchsorted(labels, found[0].astype(np.uint64))
                )
                hits += int((vectors[pos] @ q >= kth[i, j] - 1e-5).sum())
            print(
                f"| {name} | {k} | {max(ef, k)} | {hits / (k * len(queries)):.3f} |"
                f" {np.percentile(times, 50):.0f} | {np.percentile(times, 99):.0f} |"
            )


if __name__ == "__main__":
    main()
