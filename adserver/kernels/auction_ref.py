"""Plain-Python twin of the auction, lottery and waterfall (native/_auction.pyx), written as
the rules in adserver/kernels/auction.py read."""

from __future__ import annotations

import numpy as np

from adserver.kernels.auction import (
    CENT,
    FLOOR,
    LOST_LOTTERY,
    OUTBID,
    PASS,
    RATE_CPC,
    quality,
)


def auction(
    rows,
    ad_flight,
    fl_rate,
    fl_price,
    prior_ctr,
    prior_cvr,
    floor_cpm,
    floor_cpc,
    tiebreak,
    k,
    second_price,
    bids,
    boost,
    ctr,
    cvr,
):
    n = len(rows)
    cands = []
    reasons = np.full(n, OUTBID, dtype=np.int8)
    ecpm = np.zeros(n)
    for i, row in enumerate(rows.tolist()):
        f = int(ad_flight[row])
        rate = int(fl_rate[f])
        bid = fl_price[f] / 1e6
        if len(bids) == n and bids[i] >= 0:
            bid = float(bids[i])
        q = quality(
            rate,
            float(ctr[i] if len(ctr) == n else prior_ctr[row]),
            float(cvr[i] if len(cvr) == n else prior_cvr[row]),
        )
        if len(boost) == n:
            q *= float(boost[i])
        ecpm[i] = bid * q
        fbid = floor_cpc if rate == RATE_CPC else 0.0
        if ecpm[i] < floor_cpm or bid < fbid:
            reasons[i] = FLOOR
        else:
            cands.append((i, bid, q, fbid))
    ranked = sorted(cands, key=lambda c: (-ecpm[c[0]], -tiebreak[c[0]]))  # stable: row order
    winners, clear = [], []
    for r, (i, bid, q, fbid) in enumerate(ranked[:k]):
        reasons[i] = PASS
        winners.append(i)
        if not second_price or q == 0.0:
            clear.append(bid)
            continue
        floor_own = max(floor_cpm / q, fbid)
        price = ecpm[ranked[r + 1][0]] / q + CENT if r + 1 < len(ranked) else floor_own
        clear.append(min(max(price, floor_own), bid))
    min_ecpm = ecpm[winners[-1]] + CENT if len(winners) == k and k > 0 else floor_cpm
    return (
        np.array(winners, dtype=np.int64),
        np.array(clear, dtype=np.float64),
        ecpm,
        reasons,
        min_ecpm,
    )


def lottery(rows, ad_weight, uniforms, k):
    n = len(rows)
    reasons = np.full(n, LOST_LOTTERY, dtype=np.int8)
    remaining = list(range(n))
    winners = []
    for s in range(min(k, n)):
        weights = [float(ad_weight[rows[i]]) for i in remaining]
        total = sum(weights)
        if total <= 0.0:
            break
        target, acc, pick = uniforms[s] * total, 0.0, remaining[-1]
        for i, w in zip(remaining, weights):
            acc += w
            if target < acc:
                pick = i
                break
        remaining.remove(pick)
        reasons[pick] = PASS
        winners.append(pick)
    return np.array(winners, dtype=np.int64), reasons


def waterfall(
    rows,
    ad_flight,
    fl_priority,
    fl_rate,
    fl_price,
    prior_ctr,
    prior_cvr,
    ad_weight,
    prio_order,
    prio_selection,
    prio_second,
    prio_floor_cpm,
    prio_floor_cpc,
    floor_cpm,
    floor_cpc,
    uniforms,
    k,
    detail,
    bids,
    boost,
    ctr,
    cvr,
):
    n = len(rows)

    def bid_of(i: int) -> float:
        if len(bids) == n and bids[i] >= 0:
            return float(bids[i])
        return fl_price[ad_flight[rows[i]]] / 1e6

    tiebreak, draws = uniforms[:n], uniforms[n:]
    prio = [int(fl_priority[ad_flight[r]]) for r in rows.tolist()]
    reasons = np.full(n, OUTBID, dtype=np.int8)
    ecpm = np.zeros(n)
    reached = np.zeros(n, dtype=bool)
    wins: list[tuple] = []

    def win(i: int, pr: int, e: float, clear: float) -> tuple:
        f = int(ad_flight[rows[i]])
        return (int(rows[i]), i, pr, e, clear, bid_of(i), int(fl_rate[f]))

    drawn, min_ecpm = 0, 0.0
    for pr in prio_order.tolist():
        if pr not in prio:
            continue
        need = k - len(wins)
        if need <= 0:
            break
        idx = np.array([i for i in range(n) if prio[i] == pr], dtype=np.int64)
        sub = rows[idx]
        reached[idx] = True
        if prio_selection[pr] == 0:
            winners, r = lottery(sub, ad_weight, draws[drawn : drawn + need], need)
            drawn += len(winners)  # k draws in all: one per slot filled
            reasons[idx] = r
            wins += [win(int(idx[w]), pr, 0.0, bid_of(int(idx[w]))) for w in winners.tolist()]
        else:
            winners, clear, e, r, min_ecpm = auction(
                sub,
                ad_flight,
                fl_rate,
                fl_price,
                prior_ctr,
                prior_cvr,
                max(floor_cpm, prio_floor_cpm[pr]),
                max(floor_cpc, prio_floor_cpc[pr]),
                tiebreak[idx],
                need,
                prio_second[pr] != 0,
                bids[idx] if len(bids) == n else bids,
                boost[idx] if len(boost) == n else boost,
                ctr[idx] if len(ctr) == n else ctr,
                cvr[idx] if len(cvr) == n else cvr,
            )
            reasons[idx] = r
            ecpm[idx] = e
            wins += [
                win(int(idx[w]), pr, float(e[w]), float(c))
                for w, c in zip(winners.tolist(), clear.tolist())
            ]
    if detail.shape[1] == n:
        detail[0], detail[1], detail[2] = reasons, ecpm, reached
    return np.array(wins, dtype=np.float64).reshape(len(wins), 7), min_ecpm


class Waterfall:
    """`waterfall` bound to a snapshot's columns and priorities, as the kernel's `Waterfall`
    is (a pipeline of twins uses it)."""

    def __init__(
        self, columns, prio_order, prio_selection, prio_second, prio_floor_cpm, prio_floor_cpc
    ):
        self.columns = [
            columns[name]
            for name in (
                "ad_flight",
                "fl_priority",
                "fl_rate",
                "fl_price",
                "ad_prior_ctr",
                "ad_prior_cvr",
                "ad_weight",
            )
        ]
        self.prios = (prio_order, prio_selection, prio_second, prio_floor_cpm, prio_floor_cpc)

    def run(self, rows, floor_cpm, floor_cpc, uniforms, k, detail, bids, boost, ctr, cvr):
        return waterfall(
            rows,
            *self.columns,
            *self.prios,
            floor_cpm,
            floor_cpc,
            uniforms,
            k,
            detail,
            bids,
            boost,
            ctr,
            cvr,
        )
