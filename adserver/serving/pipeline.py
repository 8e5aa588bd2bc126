"""The decision pipeline: the stages, called in order, over one frozen snapshot.

    check request -> for each placement: resolve -> candidates -> eligible -> (sponsored
    gate) -> score -> select -> respond; dedupe carries across placements -> response,
    decision record

A request runs entirely on the snapshot it started with, even if a newer one is published
meanwhile.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from adserver import livestate
from adserver.apikeys import UNSCOPED, Caller
from adserver.learn.features import hour_of_week
from adserver.serving.stages import candidates, eligible, resolve, respond, score, select, sponsored
from adserver.signing import Signer
from adserver.snapshot import format as f
from adserver.snapshot.loader import Snapshot
from adserver.snapshot.programs import geo_id
from adserver.snapshot.query import EMPTY_I64, Query, frequency, phrases, segment_ids
from adserver.wire import kevel

NO_GEO = (0, 0, 0, 0)
# request ids: 32 hex digits, a random half per process and a counter (unique without a
# getrandom call per request; they name decisions, they are not secrets: tokens are signed)
_ID_PREFIX = os.urandom(8).hex()
_ids = itertools.count()


EVERYTHING = Caller("admin", UNSCOPED, None)  # an explain of everything (warm-up, tests)


class Context:
    """Per-request facts that are not in the body."""

    __slots__ = ("now", "base_url", "explain", "signer", "rng", "paused", "live", "limit",
                 "throttle", "budget", "relevance", "listings", "models", "device")

    def __init__(self, now: float, base_url: str, explain: bool | Caller | None, signer: Signer,
                 rng: np.random.Generator, paused: np.ndarray, live: Any, limit: int = 0,
                 throttle: np.ndarray | None = None, budget: Any = None,
                 relevance: tuple[float, float, float, int, int] = (0.3, 0.1, 1.0, 50, 128)):
        # explain: None (none), a caller (what its key may read) or True (everything)
        self.explain = EVERYTHING if explain is True else (explain or None)
        self.now, self.base_url, self.signer, self.rng = now, base_url, signer, rng
        self.paused = paused  # flight rows a cap paused (empty: none)
        self.live = live  # live.lmdb for frequency counters, or None
        self.limit = limit  # eligible ads taken per posting list (0: all)
        self.throttle = throttle  # pacing throttle per flight row, or None (all at 1)
        self.budget = budget  # the worker's LiveView when it holds hard-cap allowances
        # sponsored products: (threshold, keyword floor, alpha, retrieval k, HNSW ef)
        self.relevance = relevance
        self.listings: dict[str, Any] | None = None  # divName -> sponsored.Context given
        self.models: score.Models = score.NO_MODELS  # the worker's CTR/CVR models
        self.device = 0  # learn/features.DEVICES, from the User-Agent


def decide(snap: Snapshot, req: kevel.DecisionRequest, ctx: Context
           ) -> tuple[kevel.DecisionResponse, dict[str, Any]]:
    """Answer a decision request; returns the response and the decision record."""
    divs = resolve.check(req)
    request_id = f"{_ID_PREFIX}{next(_ids):016x}"
    user = req.user
    user_key = user.key if user is not None and user.key else "ue-" + os.urandom(16).hex()
    personalized = not (req.consent and req.consent.get("gdpr") is False)
    ptr, tok, tokens = phrases(req.search_term, req.keywords)
    geo = req.geo
    q = Query(
        now=int(ctx.now),
        blocked_creatives=np.array(req.blocked_creatives, dtype=np.int64)
        if req.blocked_creatives else EMPTY_I64,
        segments=segment_ids(user.segments if user is not None and personalized else None),
        personalized=personalized,
        geo=NO_GEO if geo is None else (geo_id(geo.country), geo_id(geo.region),
                                        geo_id(geo.metro), geo_id(geo.city)),
        phrase_ptr=ptr, phrase_tok=tok,
    )
    if ctx.throttle is not None:
        q.throttle = ctx.throttle
        q.seed = int(ctx.rng.bit_generator.random_raw())
    # the CTR/CVR models' request context (learn/features.py), also logged for training
    feats = {"hour_of_week": hour_of_week(ctx.now), "device": ctx.device,
             "segment": q.segments.tolist(), "token": tokens}
    used = eligible.Used()
    freq_read: set[int] = set()
    hours: dict[str, int] = {}
    decisions: dict[str, Any] = {}
    explain: dict[str, Any] = {}
    record_placements = []
    for i, (div, p) in enumerate(zip(divs, req.placements or ())):
        plan = resolve.placement(snap, i, div, p, ctx.now, hours)
        if isinstance(plan, str):
            decisions[div] = None
            record_placements.append([div, 0, [], 0, p.site_id or 0,
                                      (p.zone_ids or [0])[0], p.network_id or 0, 0])
            if ctx.explain:
                explain[div] = {"placement": {"divName": div}, "buckets": [], "rtb_log": [],
                                "results": [], "error": plan}
            continue
        pctx = ctx.listings[div] if ctx.listings else sponsored.context(snap, req, plan,
                                                                         ctx.live)
        lists, n_matched, n_candidates = _candidates(snap, plan, tokens, pctx,
                                                     *ctx.relevance[3:])
        if ctx.live is not None and snap.columns["fcap_level"].shape[0] and user is not None \
                and user.key and plan.network_id not in freq_read:
            freq_read.add(plan.network_id)
            with ctx.live.begin() as txn:
                entry = livestate.decode(txn.get(livestate.user_key(plan.network_id, user.key)))
            q.u_level, q.u_id, q.u_ts = frequency(entry)
        limit = sponsored.candidate_limit(ctx.limit, plan.count) if pctx is not None \
            and pctx.active else ctx.limit
        passing, rows, reasons, n_from_matches = eligible.run(
            snap, plan, lists, q, used, ctx.paused, ctx.explain is not None, limit, n_matched)
        boost = select.NONE
        gated = None
        measured: dict[int, float] | None = {} if ctx.explain else None
        if pctx is not None and passing.shape[0]:
            passing, boost, dropped, why = sponsored.gate(
                snap, passing, pctx, n_from_matches, ctx.relevance, measured)
            gated = (dropped, why)
        bids = eligible.keyword_bids(snap, passing, q)
        zone = plan.zone
        category = score.page_category(snap, pctx)
        raw = {**feats, "site": plan.site_id, "zone": zone, "category": category} \
            if ctx.models.any else {}
        scorer = score.Scorer(snap, ctx.models, raw)
        ctr, cvr = scorer.auction(passing)
        fates: list[dict[str, Any]] | None = [] if ctx.explain else None
        wins, min_ecpm = select.select(snap, plan, passing, ctx.rng, fates, boost, bids,
                                       ctr, cvr)
        made = respond.decisions(snap, wins, plan, bool(req.include_pricing_data),
                                 bool(req.enable_bot_filtering), request_id, user_key,
                                 ctx.base_url, ctx.signer, ctx.now)
        if i + 1 < len(divs):  # what later placements of the request must not repeat
            for d in made:
                used.add(d)
        if ctx.budget is not None and made:  # near a hard cap: count against the allowance
            ctx.budget.charge([d.flight_id for d in made])
            ctx.paused = ctx.budget.paused_for(snap)
        decisions[div] = (made or None) if plan.count > 1 else (made[0] if made else None)
        record_placements.append([
            div, n_candidates,
            _winners(snap, scorer, made, wins, ctr, cvr),
            int(round(min_ecpm * 1e6)), plan.site_id, zone, plan.network_id, category,
        ])
        if ctx.explain:
            explain[div] = _explain(snap, plan, rows, reasons, fates or [], wins, gated,
                                    measured, ctx.explain)
    response = kevel.DecisionResponse(user=kevel.UserKey(key=user_key), decisions=decisions,
                                      explain=explain if ctx.explain else None)
    record = {"t": "d", "id": request_id, "ts": ctx.now, "user": user_key,
              "snapshot": snap.version, "placements": record_placements,
              "f": {"hour_of_week": feats["hour_of_week"], "device": ctx.device,
                    "segment": feats["segment"], "token": tokens},
              "models": ctx.models.versions}
    return response, record


def _winners(snap: Snapshot, scorer: score.Scorer, made: list[kevel.Decision],
             wins: list[select.Win], ctr: np.ndarray, cvr: np.ndarray) -> list[list[Any]]:
    """The decision record's winners: ids, prices, pCTR and pCVR (what the auction used, or
    with a shadow model score.Scorer.logged) and the ad's model features."""
    if not made:
        return []
    wins = wins[:len(made)]
    ads = [snap.ad(w.row) for w in wins]
    if scorer.models.shadow_ctr is None and scorer.models.shadow_cvr is None:
        # what the auction used: the model's prediction where it scored, else the prior
        used_ctr = ctr[[w.pos for w in wins]].tolist() if ctr.shape[0] else \
            [a.prior_ctr for a in ads]
        used_cvr = cvr[[w.pos for w in wins]].tolist() if cvr.shape[0] else \
            [a.prior_cvr for a in ads]
        sh_ctr = sh_cvr = [None] * len(wins)
    else:
        used_ctr, sh_ctr, used_cvr, sh_cvr = scorer.logged(
            np.array([w.row for w in wins], dtype=np.int64))
    return [[a.ad_id, a.flight_id, int(round(w.clear * 1e6)), w.ecpm, used_ctr[i],
             sh_ctr[i], used_cvr[i], sh_cvr[i], a.features]
            for i, (a, w) in enumerate(zip(ads, wins))]


CANDIDATES_CACHE = 20000


def _candidates(snap: Snapshot, plan: resolve.Plan, tokens: tuple[int, ...],
                pctx: sponsored.Context | None, k: int, ef: int
                ) -> tuple[Sequence[np.ndarray], tuple[int, int], int]:
    """A placement's candidate lists, how many of the first ones are given (category
    matches, or a listings auction's own candidates when no query measures them) and how
    many are given or keyword matches, and how many rows they hold in all. Cached (as tuples of arrays and ints: once the cycle collector
    has seen such an entry it stops tracking it, so full passes do not grow with the caches)
    per snapshot and what they depend on (storefronts repeat placements, queries and pages;
    callers must not modify them)."""
    if pctx is not None and pctx.candidates is not None:  # a listings auction's own
        lists = [pctx.candidates] if pctx.candidates.shape[0] else []
        given = len(lists) if pctx.vector is None else 0
        return lists, (given, given), pctx.candidates.shape[0]
    p = plan.placement
    key = None
    if pctx is None or pctx.vector is None or pctx.key is not None:
        key = (plan.network_id, tuple(p.ad_types or ()), plan.site_id, tuple(p.zone_ids or ()),
               tokens, None if pctx is None else
               (pctx.types, tuple(pctx.categories), pctx.key, pctx.active), k, ef)
        found = snap.candidates.get(key)
        if found is not None:
            return found
    if pctx is None or not pctx.active:
        lists, matches = candidates.lists(snap, plan, tokens), (0, 0)
    else:  # the category's products, then keyword matches, then the nearest products
        lists = snap.lists(sponsored.category_keys(plan, pctx))
        given = len(lists)
        lists += candidates.lists(snap, plan, tokens, pctx.types)
        matches = (given, len(lists))
        lists += sponsored.retrieved(snap, plan, pctx, k, ef)
    found = tuple(lists), matches, sum(x.shape[0] for x in lists)
    if key is not None:
        if len(snap.candidates) >= CANDIDATES_CACHE:
            snap.candidates.clear()
        snap.candidates[key] = found
    return found


def _explain(snap: Snapshot, plan: resolve.Plan, rows: np.ndarray, reasons: Any,
             fates: list[dict[str, Any]], wins: list[select.Win],
             gated: tuple[np.ndarray, np.ndarray] | None = None,
             measured: dict[int, float] | None = None, caller: Caller = EVERYTHING
             ) -> dict[str, Any]:
    """The explain of one placement, as much of it as `caller` may read: nothing of another
    network's placement, only its own ads for a key of one advertiser."""
    c = snap.columns
    p = plan.placement
    if not caller.may_see(plan.network_id):
        return {"placement": {"divName": plan.div}, "buckets": [], "rtb_log": [],
                "results": [], "error": "not explained: this key may not read this network"}
    mine = caller.advertiser
    results = []
    if gated is not None:  # relevance gate: the filter passed them, so they hold PASS
        why = dict(zip(gated[0].tolist(), gated[1].tolist()))
        reasons = np.array([why.get(r, x) if x == f.PASS else x
                            for r, x in zip(rows.tolist(), reasons.tolist())], dtype=np.int8)

    def ids(row: int) -> dict[str, Any]:
        fl = int(c["ad_flight"][row])
        out: dict[str, Any] = {
            "adId": int(c["ad_id"][row]), "flightId": int(c["fl_id"][fl]),
            "campaignId": int(c["fl_campaign"][fl]), "creativeId": int(c["ad_creative"][row])}
        if measured and row in measured:  # sponsored products: relevance to the context
            out["relevance"] = measured[row]
        return out

    def visible(row: int) -> bool:
        return mine is None or int(c["fl_advertiser"][int(c["ad_flight"][row])]) == mine

    for row, reason in zip(rows.tolist(), [] if reasons is None else reasons.tolist()):
        if reason not in (f.PASS, f.DUPLICATE) and visible(row):
            results.append({**ids(row), "result": f.REASONS[reason]})
    for fate in fates:
        if visible(fate["row"]):
            extra = {k: v for k, v in fate.items() if k not in ("row", "reason")}
            results.append({**ids(fate["row"]), **extra, "result": f.REASONS[fate["reason"]]})
    if p.ad_id or p.flight_id or p.campaign_id:  # forced: say why a held ad is not here
        for ad, fl, cp, adv, net, why in snap.held:
            if net == plan.network_id and (mine is None or adv == mine) and (
                    ad == p.ad_id or fl == p.flight_id or cp == p.campaign_id):
                results.append({"adId": ad, "flightId": fl, "campaignId": cp,
                                "result": f"not served: {why}"})
    return {
        "placement": {"divName": plan.div, "networkId": p.network_id, "siteId": p.site_id,
                      "zoneIds": plan.zone_ids.tolist(), "adTypes": p.ad_types,
                      "count": plan.count},
        "buckets": sorted({r["priority"] for r in fates if "priority" in r}),
        "rtb_log": [],
        "results": results,
    }
