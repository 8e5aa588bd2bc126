"""Stage 4: fill a placement's slots down the priority waterfall.

Assumes the rows that passed the filter. Priorities are tried in tier order (then id); each
fills what slots remain by weighted lottery or by auction (adserver/kernels/auction.py).
Returns the winners in slot order, and with explain the fate of every candidate.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from adserver.kernels import auction as k
from adserver.serving.stages.resolve import Plan
from adserver.snapshot.loader import Snapshot


class Win:
    __slots__ = ("row", "prio", "ecpm", "bid", "clear", "rate")

    def __init__(self, row: int, prio: int, ecpm: float, bid: float, clear: float, rate: int):
        self.row, self.prio, self.ecpm, self.bid, self.clear, self.rate = (
            row, prio, ecpm, bid, clear, rate)


def select(snap: Snapshot, plan: Plan, rows: np.ndarray, rng: np.random.Generator,
           explain: list[dict[str, Any]] | None) -> tuple[list[Win], float]:
    """(winners, min eCPM to win the placement's last slot)."""
    c = snap.columns
    if rows.shape[0] == 0:
        return [], 0.0
    prio_rows = c["fl_priority"][c["ad_flight"][rows]]
    first = int(prio_rows[0])
    distinct = [first] if (prio_rows == first).all() else np.unique(prio_rows).tolist()
    order = sorted(distinct, key=lambda p: (snap.prio["prio_tier"][p], p))
    p = plan.placement
    wins: list[Win] = []
    min_ecpm = 0.0
    for prio in order:
        need = plan.count - len(wins)
        if need <= 0:
            break
        members = rows if len(distinct) == 1 else rows[prio_rows == prio]
        floor_cpm = max(p.floor_price or 0.0, snap.prio["prio_floor_cpm"][prio] / 1e6)
        floor_cpc = max(p.floor_cpc or 0.0, snap.prio["prio_floor_cpc"][prio] / 1e6)
        if snap.prio["prio_selection"][prio] == 0:
            winners, reasons = k.lottery(members, c["ad_weight"], rng.random(need), need)
            for i in winners.tolist():
                row = int(members[i])
                f = int(c["ad_flight"][row])
                bid = int(c["fl_price"][f]) / 1e6
                wins.append(Win(row, prio, 0.0, bid, bid, int(c["fl_rate"][f])))
            ecpm = None
            win_ecpm = {}
        else:
            winners, clear, ecpm, reasons, min_ecpm = k.auction(
                members, c["ad_flight"], c["fl_rate"], c["fl_price"], c["ad_prior_ctr"],
                c["ad_prior_cvr"], floor_cpm, floor_cpc, rng.random(members.shape[0]), need,
                bool(snap.prio["prio_second"][prio]))
            win_ecpm = {}
            for r, i in enumerate(winners.tolist()):
                row = int(members[i])
                f = int(c["ad_flight"][row])
                wins.append(Win(row, prio, float(ecpm[i]), int(c["fl_price"][f]) / 1e6,
                                float(clear[r]), int(c["fl_rate"][f])))
                win_ecpm[i] = float(ecpm[i])
        if explain is not None:
            top = min(win_ecpm.values(), default=None)
            for i, row in enumerate(members.tolist()):
                entry = {"row": row, "priority": snap.prio["prio_id"][prio],
                         "reason": int(reasons[i])}
                if ecpm is not None:
                    entry["eCPM"] = round(float(ecpm[i]), 6)
                    if top is not None and reasons[i] == k.OUTBID:
                        entry["winningECPM"] = round(top, 6)
                explain.append(entry)
    return wins, min_ecpm
