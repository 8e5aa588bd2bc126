"""Sponsored products: a placement's relevance context, its retrieved candidates, and the
relevance gate and boost (between stages 2 and 4 of adserver/serving/pipeline.py).

Applies to placements that ask for a sponsored-product ad type when the snapshot has a
product index. The context comes from the request:

- search: the request's `searchTerm` (else its `keywords`) -> the query's embedding and the
  model's confidence in it (adserver/learn/embed.Model.query);
- product page: the placement's `properties.productId` -> that product's vector (the product
  itself is never advertised on its own page);
- category page: `properties.category` (a level, or a path "A > B") -> the ads of products in
  that category, and the category name's embedding;
- home or cart: `properties.recentProductIds` (the user's recent products, newest first),
  else the user's profile (products they clicked or bought, kept by the control process in
  live.lmdb) -> the mean of their vectors.

With a context, a sponsored-product ad type takes its candidates from keyword matches, the
category's products and the `retrieval_k` nearest sponsored products (HNSW), not from the
placement's generic lists; without one (a home page with nothing known), the generic lists
serve as before. A page that names a query, product or category the model cannot represent
(words it never saw, an unknown product id) has a context with no vector: nothing is relevant
to it, so it shows no sponsored products (never the home page's lists). Relevance of a
candidate = cosine of the context and its product times the confidence (0 without a product
vector), 1 for a category match, and 1 for a keyword match whose product's own relevance is
at least `keyword_relevance_floor` (a keyword bought on a flight never shows a product that
does not plausibly match the query, as Topsort and Amazon Ads do). Candidates
under `relevance_threshold` or whose product is unavailable are dropped; the others enter the
auction with quality x relevance^`relevance_alpha`, where an ad carrying a Kevel relevancy
score (1-1000) ranks with score / 1000 instead (the gate still uses the measured relevance).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from adserver.formats import livestate
from adserver.kernels import sponsored as kernel
from adserver.serving.bound import BoundSnapshot
from adserver.serving.stages.resolve import Plan
from adserver.snapshot import format as f
from adserver.snapshot.products import key
from adserver.wire.kevel import DecisionRequest

EMPTY = np.zeros(0, dtype=np.int32)
RETRIEVED_CACHE = 20000
# eligible ads taken from each candidate list of a placement with a context: PER_SLOT per
# slot, at least MIN_CANDIDATES (ADSERVER_MAX_CANDIDATES still caps it). Keyword and
# category lists are ordered by the most an ad can bid x prior quality and their matches
# have relevance 1 (a Kevel relevancy score only lowers it), so an ad further down cannot
# outrank the ones taken; the retrieved list is nearest first, so what is cut there is the
# least relevant (retrieval depth, like retrieval_k).
PER_SLOT = 8
MIN_CANDIDATES = 16


def candidate_limit(limit: int, slots: int) -> int:
    """Eligible ads taken per list for a placement with a context (`limit`: the configured
    cap, 0 for none)."""
    wanted = max(MIN_CANDIDATES, PER_SLOT * slots)
    return min(limit, wanted) if limit else wanted


class Context:
    """What relevance is measured against for one placement."""

    __slots__ = (
        "types",
        "vector",
        "confidence",
        "categories",
        "exclude",
        "candidates",
        "quality",
        "key",
        "named",
    )

    def __init__(self, types: tuple[int, ...]):
        self.types = types  # the placement's sponsored-product ad types
        self.vector: np.ndarray | None = None
        self.confidence = 1.0  # how well the model represents a query text (0-1)
        self.categories: list[int] = []
        self.exclude = -1  # the viewed product's row
        # a listings auction's own candidates (ad rows), and the retailer's quality score per
        # product row as (sorted rows, scores): relevance is then given, not measured
        self.candidates: np.ndarray | None = None
        self.quality: tuple[np.ndarray, np.ndarray] | None = None
        self.key: tuple[Any, ...] | None = None  # what the vector came from (retrieval cache)
        # the page names what it is about (a search text, a product, a category): relevance is
        # measured against it even when the model cannot represent it (then nothing matches)
        self.named = False

    @property
    def active(self) -> bool:
        return (
            self.vector is not None
            or bool(self.categories)
            or self.candidates is not None
            or self.named
        )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def context(
    snap: BoundSnapshot, req: DecisionRequest, plan: Plan, live: Any = None
) -> Context | None:
    """The placement's context, or None when it asks for no sponsored-product ad type.
    `live`: live.lmdb, for the user's recent products when the request names none."""
    index, model = snap.products, snap.embedder
    if index is None or model is None or not snap.sponsored_ad_types:
        return None
    types = tuple(t for t in plan.placement.ad_types or () if t in snap.sponsored_ad_types)
    if not types:
        return None
    ctx = Context(types)
    props = plan.placement.properties or {}
    net = plan.network_id
    viewed = _text(props.get("productId"))
    if viewed is not None:
        ctx.named = True
        row = index.row(net, viewed)
        if row >= 0:
            ctx.exclude = row
            if index.vectors[row].any():
                ctx.vector, ctx.key = index.vectors[row], ("p", row)
    category = _text(props.get("category"))
    if category is not None:
        levels = [c.strip() for c in category.split(">") if c.strip()]
        if levels:
            ctx.categories = [f.category_id(levels[-1])]
            if ctx.vector is None:
                ctx.key = ("q", " ".join(levels))
                ctx.vector, ctx.confidence = model.query(ctx.key[1])
    query = _text(req.search_term) or " ".join(k for k in req.keywords or () if isinstance(k, str))
    if query and ctx.vector is None:
        ctx.named = True
        ctx.vector, ctx.confidence = model.query(query)
        ctx.key = ("q", query)
    recent = props.get("recentProductIds")
    user = req.user.key if req.user is not None else None
    if ctx.named and ctx.vector is None:
        return ctx  # the page is about something the model cannot represent: nothing matches
    if ctx.vector is None and not recent and live is not None and user:
        with live.begin() as txn:
            recent = livestate.decode(txn.get(livestate.recent_key(net, user)))
    if ctx.vector is None and isinstance(recent, list) and recent:
        rows = [index.row(net, p) for p in recent[:20] if isinstance(p, str)]
        rows = [r for r in rows if r >= 0 and index.vectors[r].any()]
        if rows:
            mean = index.vectors[rows].mean(axis=0)
            norm = float(np.linalg.norm(mean))
            if norm > 0:
                ctx.vector, ctx.key = (mean / norm).astype(np.float32), ("r", tuple(rows))
    return ctx


def prepare(
    snap: BoundSnapshot,
    req: DecisionRequest,
    plan: Plan,
    live: Any,
    given: dict[str, Any] | None,
    limit: int,
) -> tuple[Context | None, int]:
    """A placement's sponsored-product context (a listings auction's own when `given`) and
    the eligible ads to take per candidate list (`limit`, the configured cap; PER_SLOT per
    slot for a placement with a context)."""
    ctx = given[plan.div] if given else context(snap, req, plan, live)
    return ctx, candidate_limit(limit, plan.count) if ctx is not None and ctx.active else limit


def category_keys(plan: Plan, ctx: Context) -> list[int]:
    return [f.posting_key("cat", plan.network_id, t, c) for t in ctx.types for c in ctx.categories]


def retrieved(
    snap: BoundSnapshot, plan: Plan, ctx: Context, k: int, ef: int
) -> tuple[np.ndarray, ...]:
    """Ad rows of the k sponsored products nearest the context (HNSW search breadth `ef`),
    nearest first, as a candidate list, limited to the placement's sponsored ad types; cached
    per snapshot and context (callers must not modify the arrays)."""
    if ctx.vector is None:
        return ()
    key = (plan.network_id, ctx.types, k, ef, ctx.key) if ctx.key is not None else None
    found = snap.retrieved.get(key) if key is not None else None
    if found is None:  # searches and pages repeat: keep what they retrieved, per snapshot
        # (the products found are kept by the index, which later snapshots share; their
        # ads are this snapshot's)
        rows, _ = snap.products.nearest(plan.network_id, ctx.vector, k, ef, ctx.key)  # type: ignore[union-attr]
        found = product_lists(snap, rows, ctx.types)
        if key is not None:
            if len(snap.retrieved) >= RETRIEVED_CACHE:
                snap.retrieved.clear()
            snap.retrieved[key] = found
    return found


def product_lists(
    snap: BoundSnapshot, prows: np.ndarray, types: tuple[int, ...]
) -> tuple[np.ndarray, ...]:
    """The ads of the given product rows that are of one of `types`, as one candidate list
    in the order of `prows` (each product's ads best first); empty: no list. A tuple, as
    the caches hold it (the cycle collector stops tracking it once seen). (One kernel call,
    `Gate.product_ads`: the numpy version of the same took ~60 us for 50 products, most of
    it in the overhead of ten calls on small arrays.)"""
    if snap.columns["sp_prow"].shape[0] == 0 or prows.shape[0] == 0:
        return ()
    rows = snap.gate.product_ads(prows.astype(np.int64, copy=False), _types(types))  # type: ignore[union-attr]
    return (rows,) if rows.shape[0] else ()


def product_rows(snap: BoundSnapshot, network_id: int, product_ids: list[str]) -> np.ndarray:
    """Product-index rows of retailer product ids (-1 for unknown ones)."""
    if snap.products is None:
        return np.full(len(product_ids), -1, dtype=np.int64)
    keys = np.array([key(network_id, p) for p in product_ids], dtype=np.uint64)
    return snap.products.rows(keys)


NO_VECTOR = np.zeros(0, dtype=np.float32)
NO_QUALITY = (np.zeros(0, dtype=np.int64), np.zeros(0))
NO_REASONS = np.zeros(0, dtype=np.int8)
_TYPES: dict[tuple[int, ...], np.ndarray] = {}


def _types(types: tuple[int, ...]) -> np.ndarray:
    """A placement's sponsored ad types as the kernel's array (a handful of distinct ones)."""
    found = _TYPES.get(types)
    if found is None:
        found = _TYPES[types] = np.array(types, dtype=np.int64)
    return found


def gate(
    snap: BoundSnapshot,
    rows: np.ndarray,
    ctx: Context,
    n_matched: tuple[int, int],
    relevance: tuple[float, float, float, int, int],
    measured: dict[int, float] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(kept rows, their relevance^alpha, dropped rows, their reason codes): the Cython
    kernel native/_sponsored.pyx (the rules: adserver/kernels/sponsored_ref.gate). Rows of other ad
    types pass with boost 1; of the first rows, `n_matched[0]` came from category lists (or were
    given) and the rest up to `n_matched[1]` from keyword lists. `relevance`: the settings
    (adserver/config.relevance).
    Without an active context nothing is measured: only availability and one ad per product
    count. `measured` (explain) receives each sponsored row's relevance; without it the
    dropped rows are not listed."""
    n = rows.shape[0]
    if n == 0:
        return rows, np.zeros(0), EMPTY, np.zeros(0, dtype=np.int8)
    qrows, qscores = ctx.quality if ctx.quality is not None else NO_QUALITY
    kept_rows, boost, rel = np.empty(n, dtype=rows.dtype), np.empty(n), np.empty(n)
    reasons = np.empty(n, dtype=np.int8)
    threshold, floor, alpha = relevance[:3]
    gate = snap.gate
    assert gate is not None  # context() gives no context without a product index
    kept = gate.run(
        rows,
        n_matched[0],
        n_matched[1],
        _types(ctx.types),
        ctx.vector if ctx.vector is not None else NO_VECTOR,
        ctx.confidence,
        ctx.active,
        qrows,
        qscores,
        ctx.quality is not None,
        ctx.exclude,
        threshold,
        floor,
        alpha,
        kept_rows,
        boost,
        reasons,
        rel,
    )
    if measured is None:  # the dropped ones only matter to explain
        return kept_rows[:kept], boost[:kept], EMPTY, NO_REASONS
    ours = np.isin(snap.columns["ad_type"][rows], ctx.types)
    measured.update(zip(rows[ours].tolist(), np.round(rel[ours], 4).tolist()))
    dropped = reasons != kernel.KEPT
    return kept_rows[:kept], boost[:kept], rows[dropped], reasons[dropped]
