"""Stage 4: fill a placement's slots down the priority waterfall.

Assumes the rows that passed the filter. Priorities are tried in tier order (then id); each
fills what slots remain by weighted lottery or by auction, all in one Cython kernel bound
to the snapshot (native/_auction.pyx; the rules: adserver/kernels/auction.py).
Returns the winners in slot order, and with explain the fate of every candidate.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from adserver.kernels.auction import D_ECPM, D_REACHED, D_REASON, OUTBID
from adserver.serving.bound import BoundSnapshot
from adserver.serving.stages.resolve import Plan


class Win:
    """A slot's winner: its ad row, position among the candidates, priority, eCPM and clearing
    price."""

    __slots__ = ("row", "pos", "prio", "ecpm", "bid", "clear", "rate")

    def __init__(
        self, row: int, pos: int, prio: int, ecpm: float, bid: float, clear: float, rate: int
    ):
        self.row, self.pos, self.prio, self.ecpm, self.bid, self.clear, self.rate = (
            row,
            pos,
            prio,
            ecpm,
            bid,
            clear,
            rate,
        )


NO_DETAIL = np.zeros((3, 0))
NONE = np.zeros(0)


def select(
    snap: BoundSnapshot,
    plan: Plan,
    rows: np.ndarray,
    rng: np.random.Generator,
    explain: list[dict[str, Any]] | None,
    boost: np.ndarray = NONE,
    bids: np.ndarray = NONE,
    ctr: np.ndarray = NONE,
    cvr: np.ndarray = NONE,
) -> tuple[list[Win], float]:
    """(winners, min eCPM to win the placement's last slot). `boost` (relevance^alpha),
    `bids` (keyword bids, -1: the flight's price) and `ctr`/`cvr` (model predictions, in
    place of the ads' priors), when given, align with `rows`."""
    n = rows.shape[0]
    if n == 0:
        return [], 0.0
    p = plan.placement
    detail = np.zeros((3, n)) if explain is not None else NO_DETAIL
    won, min_ecpm = snap.waterfall.run(
        rows,
        p.floor_price or 0.0,
        p.floor_cpc or 0.0,
        rng.random(n + plan.count),
        plan.count,
        detail,
        bids,
        boost,
        ctr,
        cvr,
    )
    wins = [
        Win(int(row), int(pos), int(prio), ecpm, bid, clear, int(rate))
        for row, pos, prio, ecpm, clear, bid, rate in won.tolist()
    ]
    if explain is not None:
        _explain(snap, rows, wins, detail, explain)
    return wins, float(min_ecpm)


def _explain(
    snap: BoundSnapshot,
    rows: np.ndarray,
    wins: list[Win],
    detail: np.ndarray,
    out: list[dict[str, Any]],
) -> None:
    """The fate of each candidate whose priority was reached; an outbid one is told the
    lowest winning eCPM of its priority."""
    c = snap.columns
    lowest: dict[int, float] = {}
    for w in wins:
        lowest[w.prio] = min(w.ecpm, lowest.get(w.prio, w.ecpm))
    reasons, ecpm, reached = detail[D_REASON].astype(np.int8), detail[D_ECPM], detail[D_REACHED]
    for i, row in enumerate(rows.tolist()):
        if not reached[i]:
            continue
        pr = int(c["fl_priority"][c["ad_flight"][row]])
        entry: dict[str, Any] = {
            "row": row,
            "priority": snap.prio["prio_id"][pr],
            "reason": int(reasons[i]),
        }
        if snap.prio["prio_selection"][pr] == 1:
            entry["eCPM"] = round(float(ecpm[i]), 6)
            if reasons[i] == OUTBID and pr in lowest:
                entry["winningECPM"] = round(lowest[pr], 6)
        out.append(entry)
