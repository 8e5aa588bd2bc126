"""The decision record of a request (written to the worker's decision log; the aggregator,
the trainer and the Personalizer read it): its placements, each with its winners' ids,
prices, the pCTR and pCVR the auction used (and a shadow model's), their features, the lowest
eCPM that would have won, and where it was; and the request's model features."""

from __future__ import annotations

from typing import Any

import numpy as np

from adserver.serving.bound import BoundSnapshot
from adserver.serving.stages import resolve, score, select
from adserver.wire import kevel


def unresolved(div: str, p: kevel.Placement) -> list[Any]:
    """A placement the snapshot could not serve: no candidates, no winners."""
    return [div, 0, [], 0, p.site_id or 0, (p.zone_ids or [0])[0], p.network_id or 0, 0]


def placement(
    snap: BoundSnapshot,
    plan: resolve.Plan,
    n_candidates: int,
    scorer: score.Scorer,
    made: list[kevel.Decision],
    wins: list[select.Win],
    ctr: np.ndarray,
    cvr: np.ndarray,
    min_ecpm: float,
    category: int,
) -> list[Any]:
    """A served placement's entry."""
    return [
        plan.div,
        n_candidates,
        winners(snap, scorer, made, wins, ctr, cvr),
        int(round(min_ecpm * 1e6)),
        plan.site_id,
        plan.zone,
        plan.network_id,
        category,
    ]


def decision(
    request_id: str,
    now: float,
    user_key: str,
    snap: BoundSnapshot,
    placements: list[list[Any]],
    feats: dict[str, Any],
    versions: Any,
) -> dict[str, Any]:
    """The request's record."""
    return {
        "t": "d",
        "id": request_id,
        "ts": now,
        "user": user_key,
        "snapshot": snap.version,
        "placements": placements,
        "f": {
            "hour_of_week": feats["hour_of_week"],
            "device": feats["device"],
            "segment": feats["segment"],
            "token": feats["token"],
        },
        "models": versions,
    }


def winners(
    snap: BoundSnapshot,
    scorer: score.Scorer,
    made: list[kevel.Decision],
    wins: list[select.Win],
    ctr: np.ndarray,
    cvr: np.ndarray,
) -> list[list[Any]]:
    """The decision record's winners: ids, prices, pCTR and pCVR (what the auction used, or
    with a shadow model score.Scorer.logged) and the ad's model features."""
    if not made:
        return []
    wins = wins[: len(made)]
    ads = [snap.ad(w.row) for w in wins]
    if scorer.models.shadow_ctr is None and scorer.models.shadow_cvr is None:
        # what the auction used: the model's prediction where it scored, else the prior
        used_ctr = (
            ctr[[w.pos for w in wins]].tolist() if ctr.shape[0] else [a.prior_ctr for a in ads]
        )
        used_cvr = (
            cvr[[w.pos for w in wins]].tolist() if cvr.shape[0] else [a.prior_cvr for a in ads]
        )
        sh_ctr = sh_cvr = [None] * len(wins)
    else:
        used_ctr, sh_ctr, used_cvr, sh_cvr = scorer.logged(
            np.array([w.row for w in wins], dtype=np.int64)
        )
    return [
        [
            a.ad_id,
            a.flight_id,
            int(round(w.clear * 1e6)),
            w.ecpm,
            used_ctr[i],
            sh_ctr[i],
            used_cvr[i],
            sh_cvr[i],
            a.features,
        ]
        for i, (a, w) in enumerate(zip(ads, wins))
    ]
