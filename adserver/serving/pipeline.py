"""The decision pipeline: the stages, called in order, over one bundle (a frozen snapshot
with its kernels, models, signer and settings) and one request's facts.

    check request -> for each placement: 1 resolve -> 2 candidates -> 3 eligible -> 4 the
    relevance gate (sponsored products) -> 5 score -> 6 select -> 7 respond; dedupe carries
    across placements -> response (explain: serving/explain.py), decision record
    (serving/record.py)

A request runs entirely on the bundle it started with, even if a newer snapshot or model is
published meanwhile.
"""

from __future__ import annotations

import itertools
import os
from typing import Any, NamedTuple

import numpy as np

from adserver.common.apikeys import Caller
from adserver.formats.signing import Signer
from adserver.learn.features import hour_of_week
from adserver.serving import explain, record
from adserver.serving.bound import BoundSnapshot
from adserver.serving.explain import EVERYTHING
from adserver.serving.stages import candidates, eligible, resolve, respond, score, select, sponsored
from adserver.snapshot.programs import geo_id
from adserver.snapshot.query import EMPTY_I64, Query, phrases, segment_ids
from adserver.wire import kevel

NO_GEO = (0, 0, 0, 0)
# request ids: 32 hex digits, a random half per process and a counter (unique without a
# getrandom call per request; they name decisions, they are not secrets: tokens are signed)
_ID_PREFIX = os.urandom(8).hex()
_ids = itertools.count()


class Settings(NamedTuple):
    """The configuration a decision reads: eligible ads taken per posting list (0: all), and
    sponsored products' relevance (threshold, keyword floor, alpha, retrieval k, HNSW ef)."""

    limit: int = 0
    relevance: tuple[float, float, float, int, int] = (0.3, 0.1, 1.0, 50, 128)


class Bundle(NamedTuple):
    """What a worker decides with, swapped as one reference (serving/worker.py): a snapshot
    version with its bound kernels, the CTR/CVR models, the signer of tracking tokens, the
    settings, the worker's random generator and its live.lmdb (frequency counters; None
    before it opens). A request keeps the bundle it started with."""

    snap: BoundSnapshot
    models: score.Models
    signer: Signer
    settings: Settings
    rng: np.random.Generator
    live: Any = None


NO_PAUSE = np.zeros(0, dtype=np.int8)


class Facts:
    """A request's facts that are not in its body: the clock, where tracking URLs point, who
    may read an explain, the device class of its User-Agent, and the live view's pauses,
    pacing throttles and hard-cap allowances when it started. The listings auction adds the
    candidates it was given."""

    __slots__ = ("now", "base_url", "explain", "device", "paused", "throttle", "budget", "listings")

    def __init__(
        self,
        now: float,
        base_url: str,
        explain: bool | Caller | None = None,
        device: int = 0,
        paused: np.ndarray = NO_PAUSE,
        throttle: np.ndarray | None = None,
        budget: Any = None,
    ):
        self.now, self.base_url, self.device = now, base_url, device
        # explain: None (none), a caller (what its key may read) or True (everything)
        self.explain = EVERYTHING if explain is True else (explain or None)
        self.paused = paused  # flight rows a cap paused (empty: none)
        self.throttle = throttle  # pacing throttle per flight row, or None (all at 1)
        self.budget = budget  # the worker's LiveView when it holds hard-cap allowances
        self.listings: dict[str, Any] | None = None  # divName -> sponsored.Context given


def decide(
    b: Bundle, req: kevel.DecisionRequest, ctx: Facts
) -> tuple[kevel.DecisionResponse, dict[str, Any]]:
    """Answer a decision request with a bundle; returns the response and the decision
    record."""
    divs = resolve.check(req)
    snap, models, live, relevance = b.snap, b.models, b.live, b.settings.relevance
    request_id = f"{_ID_PREFIX}{next(_ids):016x}"
    user = req.user
    user_key = user.key if user is not None and user.key else "ue-" + os.urandom(16).hex()
    q, tokens = _query(req, ctx, b.rng)
    # the CTR/CVR models' request context (learn/features.py), also logged for training
    feats = {
        "hour_of_week": hour_of_week(ctx.now),
        "device": ctx.device,
        "segment": q.segments.tolist(),
        "token": tokens,
    }
    used = eligible.Used()
    freq_read: set[int] = set()
    hours: dict[str, int] = {}
    decisions: dict[str, Any] = {}
    explained: dict[str, Any] = {}
    placements = []
    for i, (div, p) in enumerate(zip(divs, req.placements or ())):
        # 1. resolve the placement
        plan = resolve.placement(snap, i, div, p, ctx.now, hours)
        if isinstance(plan, str):
            decisions[div] = None
            placements.append(record.unresolved(div, p))
            if ctx.explain:
                explained[div] = explain.unresolved(div, plan)
            continue
        # 2. candidates (sponsored products: from the page's context)
        pctx, limit = sponsored.prepare(snap, req, plan, live, ctx.listings, b.settings.limit)
        lists, n_matched, n_candidates = candidates.for_placement(
            snap, plan, tokens, pctx, *relevance[3:]
        )
        # 3. eligibility (targeting, dates, caps, pacing, frequency, dedupe)
        if user is not None and live is not None:  # (the call only when it can read)
            eligible.read_frequency(live, snap, plan, user, q, freq_read)
        passing, rows, reasons, n_from_matches = eligible.run(
            snap, plan, lists, q, used, ctx.paused, ctx.explain is not None, limit, n_matched
        )
        # 4. the relevance gate of sponsored products
        boost = select.NONE
        gated = None
        measured: dict[int, float] | None = {} if ctx.explain else None
        if pctx is not None and passing.shape[0]:
            passing, boost, dropped, why = sponsored.gate(
                snap, passing, pctx, n_from_matches, relevance, measured
            )
            gated = (dropped, why)
        # 5. score: keyword bids, pCTR and pCVR
        bids = eligible.keyword_bids(snap, passing, q)
        category = score.page_category(snap, pctx)
        raw = (
            {**feats, "site": plan.site_id, "zone": plan.zone, "category": category}
            if models.any
            else {}
        )
        scorer = score.Scorer(snap, models, raw)
        ctr, cvr = scorer.auction(passing)
        # 6. select: the priority waterfall, lotteries and auctions
        fates: list[dict[str, Any]] | None = [] if ctx.explain else None
        wins, min_ecpm = select.select(snap, plan, passing, b.rng, fates, boost, bids, ctr, cvr)
        # 7. respond: the decisions, their signed tracking URLs, the budget they spend
        made = respond.decisions(
            snap,
            wins,
            plan,
            bool(req.include_pricing_data),
            bool(req.enable_bot_filtering),
            request_id,
            user_key,
            ctx.base_url,
            b.signer,
            ctx.now,
            min_ecpm,
        )
        if i + 1 < len(divs):  # what later placements of the request must not repeat
            for d in made:
                used.add(d)
        if ctx.budget is not None and made:  # near a hard cap
            ctx.paused = respond.charge(ctx.budget, snap, made)
        decisions[div] = (made or None) if plan.count > 1 else (made[0] if made else None)
        placements.append(
            record.placement(
                snap, plan, n_candidates, scorer, made, wins, ctr, cvr, min_ecpm, category
            )
        )
        if ctx.explain:
            explained[div] = explain.placement(
                snap, plan, rows, reasons, fates or [], wins, gated, measured, ctx.explain
            )
    response = kevel.DecisionResponse(
        user=kevel.UserKey(key=user_key),
        decisions=decisions,
        explain=explained if ctx.explain else None,
    )
    return response, record.decision(
        request_id, ctx.now, user_key, snap, placements, feats, models.versions
    )


def _query(
    req: kevel.DecisionRequest, ctx: Facts, rng: np.random.Generator
) -> tuple[Query, tuple[int, ...]]:
    """The request's facts the filter reads (consent, segments, geo, blocked creatives, the
    search phrases, the pacing throttle) and the search's tokens."""
    user = req.user
    personalized = not (req.consent and req.consent.get("gdpr") is False)
    ptr, tok, tokens = phrases(req.search_term, req.keywords)
    geo = req.geo
    q = Query(
        now=int(ctx.now),
        blocked_creatives=np.array(req.blocked_creatives, dtype=np.int64)
        if req.blocked_creatives
        else EMPTY_I64,
        segments=segment_ids(user.segments if user is not None and personalized else None),
        personalized=personalized,
        geo=NO_GEO
        if geo is None
        else (geo_id(geo.country), geo_id(geo.region), geo_id(geo.metro), geo_id(geo.city)),
        phrase_ptr=ptr,
        phrase_tok=tok,
    )
    if ctx.throttle is not None:
        q.throttle = ctx.throttle
        q.seed = int(rng.bit_generator.random_raw())
    return q, tokens
