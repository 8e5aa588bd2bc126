"""Explain (`X-Adzerk-Explain`, and listings' `?explain=true`): why each candidate of a
placement won or lost, as much of it as the caller's key may read (nothing of another
network's placement; only its own ads for a key of one advertiser), with each sponsored
candidate's relevance, and the ads a forced placement names that are held back from serving."""

from __future__ import annotations

from typing import Any

import numpy as np

from adserver.common.apikeys import UNSCOPED, Caller
from adserver.serving.bound import BoundSnapshot
from adserver.serving.stages import resolve, select
from adserver.snapshot import format as f

EVERYTHING = Caller("admin", UNSCOPED, None)  # an explain of everything (warm-up, tests)


def unresolved(div: str, why: str) -> dict[str, Any]:
    """A placement the snapshot could not serve, and why."""
    return {
        "placement": {"divName": div},
        "buckets": [],
        "rtb_log": [],
        "results": [],
        "error": why,
    }


def placement(
    snap: BoundSnapshot,
    plan: resolve.Plan,
    rows: np.ndarray,
    reasons: Any,
    fates: list[dict[str, Any]],
    wins: list[select.Win],
    gated: tuple[np.ndarray, np.ndarray] | None = None,
    measured: dict[int, float] | None = None,
    caller: Caller = EVERYTHING,
) -> dict[str, Any]:
    """The explain of one placement, as much of it as `caller` may read: nothing of another
    network's placement, only its own ads for a key of one advertiser."""
    c = snap.columns
    p = plan.placement
    if not caller.may_see(plan.network_id):
        return {
            "placement": {"divName": plan.div},
            "buckets": [],
            "rtb_log": [],
            "results": [],
            "error": "not explained: this key may not read this network",
        }
    mine = caller.advertiser
    results = []
    if gated is not None:  # relevance gate: the filter passed them, so they hold PASS
        why = dict(zip(gated[0].tolist(), gated[1].tolist()))
        reasons = np.array(
            [why.get(r, x) if x == f.PASS else x for r, x in zip(rows.tolist(), reasons.tolist())],
            dtype=np.int8,
        )

    def ids(row: int) -> dict[str, Any]:
        fl = int(c["ad_flight"][row])
        out: dict[str, Any] = {
            "adId": int(c["ad_id"][row]),
            "flightId": int(c["fl_id"][fl]),
            "campaignId": int(c["fl_campaign"][fl]),
            "creativeId": int(c["ad_creative"][row]),
        }
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
            if (
                net == plan.network_id
                and (mine is None or adv == mine)
                and (ad == p.ad_id or fl == p.flight_id or cp == p.campaign_id)
            ):
                results.append(
                    {"adId": ad, "flightId": fl, "campaignId": cp, "result": f"not served: {why}"}
                )
    return {
        "placement": {
            "divName": plan.div,
            "networkId": p.network_id,
            "siteId": p.site_id,
            "zoneIds": plan.zone_ids.tolist(),
            "adTypes": p.ad_types,
            "count": plan.count,
        },
        "buckets": sorted({r["priority"] for r in fates if "priority" in r}),
        "rtb_log": [],
        "results": results,
    }
