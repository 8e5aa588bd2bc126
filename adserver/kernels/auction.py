"""Auction and lottery kernels (Numba). Twin: adserver/kernels/auction_ref.py.

`auction` ranks a priority's candidates by eCPM (CPM bid; CPC bid x pCTR x 1000; CPA bid x
pCVR x 1000; flat 0), drops those under the floors, takes the top `k` (ties: the higher
tiebreak, then the earlier row) and prices each winner at the least bid that keeps its rank:
the next eCPM divided by its own quality plus one cent, capped at its bid, never under the
floors (the floor alone when nobody follows). Without second pricing a winner pays its bid.
`min_ecpm` is what a newcomer's eCPM must exceed to win a slot.

Two optional per-candidate arrays (aligned with `rows`; pass shape (0,) for none): `bids`
replaces the flight's price where it is >= 0 (a matched keyword's bid, in currency units),
`boost` multiplies the candidate's quality (relevance^alpha for sponsored products), so
both its eCPM and its second price (the least bid that keeps its rank) account for it, and
`ctr` and `cvr` (the active CTR/CVR models' predictions) replace the ad's prior pCTR and
pCVR (`prior_ctr`, `prior_cvr`: columns indexed by ad row).
"""

from __future__ import annotations

import numpy as np
from numba import njit

RATE_FLAT, RATE_CPM, RATE_CPC, RATE_CPA = 0, 1, 2, 3
PASS, FLOOR, OUTBID, LOST_LOTTERY = 0, 12, 13, 14
CENT = 0.01


@njit(cache=True, nogil=True)
def quality(rate: int, ctr: float, cvr: float) -> float:
    if rate == RATE_CPM:
        return 1.0
    if rate == RATE_CPC:
        return ctr * 1000.0
    if rate == RATE_CPA:
        return cvr * 1000.0
    return 0.0


@njit(cache=True, nogil=True)
def auction(rows, ad_flight, fl_rate, fl_price, prior_ctr, prior_cvr,
            floor_cpm, floor_cpc, tiebreak, k, second_price, bids, boost, ctr, cvr):
    n = rows.shape[0]
    has_bid = bids.shape[0] == n
    has_boost = boost.shape[0] == n
    has_ctr = ctr.shape[0] == n
    has_cvr = cvr.shape[0] == n
    ecpm = np.empty(n, dtype=np.float64)
    bid = np.empty(n, dtype=np.float64)
    q = np.empty(n, dtype=np.float64)
    fbid = np.empty(n, dtype=np.float64)
    reasons = np.full(n, OUTBID, dtype=np.int8)
    eligible = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        row = rows[i]
        f = ad_flight[row]
        rate = fl_rate[f]
        bid[i] = bids[i] if has_bid and bids[i] >= 0.0 else fl_price[f] / 1e6
        q[i] = quality(rate, ctr[i] if has_ctr else prior_ctr[row],
                       cvr[i] if has_cvr else prior_cvr[row])
        if has_boost:
            q[i] *= boost[i]
        ecpm[i] = bid[i] * q[i]
        fbid[i] = floor_cpc if rate == RATE_CPC else 0.0
        if ecpm[i] < floor_cpm or bid[i] < fbid[i]:
            reasons[i] = FLOOR
        else:
            eligible[i] = True
    # selection of the top k + 1 by (ecpm, tiebreak), earliest row first on exact ties
    taken = np.zeros(n, dtype=np.bool_)
    order = np.empty(min(k + 1, n), dtype=np.int64)
    m = 0
    while m < order.shape[0]:
        best = -1
        for i in range(n):
            if not eligible[i] or taken[i]:
                continue
            if best < 0 or ecpm[i] > ecpm[best] or (
                    ecpm[i] == ecpm[best] and tiebreak[i] > tiebreak[best]):
                best = i
        if best < 0:
            break
        taken[best] = True
        order[m] = best
        m += 1
    nwin = min(k, m)
    winners = order[:nwin].copy()
    clear = np.empty(nwin, dtype=np.float64)
    for r in range(nwin):
        i = winners[r]
        reasons[i] = PASS
        if not second_price or q[i] == 0.0:
            clear[r] = bid[i]
            continue
        floor_own = floor_cpm / q[i]
        if fbid[i] > floor_own:
            floor_own = fbid[i]
        if r + 1 < m:
            price = ecpm[order[r + 1]] / q[i] + CENT
        else:
            price = floor_own
        if price < floor_own:
            price = floor_own
        if price > bid[i]:
            price = bid[i]
        clear[r] = price
    if nwin == k and nwin > 0:
        min_ecpm = ecpm[winners[nwin - 1]] + CENT
    else:
        min_ecpm = floor_cpm
    return winners, clear, ecpm, reasons, min_ecpm


@njit(cache=True, nogil=True)
def lottery(rows, ad_weight, uniforms, k):
    """Draw up to k distinct rows with probability proportional to weight; uniforms[s] in
    [0, 1) drives draw s."""
    n = rows.shape[0]
    reasons = np.full(n, LOST_LOTTERY, dtype=np.int8)
    taken = np.zeros(n, dtype=np.bool_)
    winners = np.empty(min(k, n), dtype=np.int64)
    m = 0
    for s in range(winners.shape[0]):
        total = 0.0
        for i in range(n):
            if not taken[i]:
                total += ad_weight[rows[i]]
        if total <= 0.0:
            break
        target = uniforms[s] * total
        acc = 0.0
        pick = -1
        for i in range(n):
            if taken[i]:
                continue
            acc += ad_weight[rows[i]]
            pick = i
            if target < acc:
                break
        taken[pick] = True
        reasons[pick] = PASS
        winners[m] = pick
        m += 1
    return winners[:m].copy(), reasons


# the columns of waterfall's winners array, one row per slot filled
W_ROW, W_POS, W_PRIO, W_ECPM, W_CLEAR, W_BID, W_RATE = range(7)
# the rows of waterfall's detail array (explain): reason code, eCPM, priority reached
D_REASON, D_ECPM, D_REACHED = range(3)


@njit(cache=True, nogil=True)
def waterfall(rows, ad_flight, fl_priority, fl_rate, fl_price, prior_ctr, prior_cvr, ad_weight,
              prio_order, prio_selection, prio_second, prio_floor_cpm, prio_floor_cpc,
              floor_cpm, floor_cpc, uniforms, k, detail, bids, boost, ctr, cvr):
    """Fill up to k slots from the candidate rows down the priority waterfall: priorities in
    `prio_order` (tier, then id), each by lottery or auction over its own candidates, with
    the higher of the placement's and the priority's floors (floors in currency units).
    `uniforms` holds n + k values in [0, 1): the first n break eCPM ties, the last k drive
    the lottery draws.

    Returns (winners, min eCPM to win the last auction run): winners is one float64 row per
    slot filled, in slot order, with the columns W_*: the ad row, its position in `rows`,
    its priority row, eCPM, clear price, bid (currency units) and rate type. One array out:
    boxing each returned array costs about a microsecond. When `detail` has shape (3, n)
    (explain), its rows D_* get every candidate's reason code, eCPM and whether its
    priority was reached; pass shape (3, 0) otherwise. `bids`, `boost`, `ctr` and `cvr`: as
    in `auction`, aligned with `rows`, shape (0,) for none."""
    n = rows.shape[0]
    has_bid = bids.shape[0] == n
    has_boost = boost.shape[0] == n
    has_ctr = ctr.shape[0] == n
    has_cvr = cvr.shape[0] == n
    explain = detail.shape[1] == n and n > 0
    tiebreak = uniforms[:n]
    draws = uniforms[n:]
    prio = np.empty(n, dtype=np.int32)
    present = np.zeros(prio_order.shape[0], dtype=np.bool_)
    for i in range(n):
        prio[i] = fl_priority[ad_flight[rows[i]]]
        present[prio[i]] = True
    if explain:
        for i in range(n):
            detail[D_REASON, i] = OUTBID
            detail[D_ECPM, i] = 0.0
            detail[D_REACHED, i] = 0.0
    wins = np.empty((k, 7), dtype=np.float64)
    m = 0
    drawn = 0
    min_ecpm = 0.0
    for j in range(prio_order.shape[0]):
        pr = prio_order[j]
        if not present[pr]:
            continue
        need = k - m
        if need <= 0:
            break
        idx = np.nonzero(prio == pr)[0]
        sub = rows[idx]
        if explain:
            for i in idx:
                detail[D_REACHED, i] = 1.0
        if prio_selection[pr] == 0:
            winners, r = lottery(sub, ad_weight, draws[drawn:drawn + need], need)
            drawn += len(winners)  # k draws in all: one per slot filled
            if explain:
                for t in range(idx.shape[0]):
                    detail[D_REASON, idx[t]] = r[t]
            for w in winners:
                f = ad_flight[sub[w]]
                b = fl_price[f] / 1e6
                if has_bid and bids[idx[w]] >= 0.0:
                    b = bids[idx[w]]
                wins[m, W_ROW] = sub[w]
                wins[m, W_POS] = idx[w]
                wins[m, W_PRIO] = pr
                wins[m, W_ECPM] = 0.0
                wins[m, W_CLEAR] = b
                wins[m, W_BID] = b
                wins[m, W_RATE] = fl_rate[f]
                m += 1
        else:
            fcpm = max(floor_cpm, prio_floor_cpm[pr])
            fcpc = max(floor_cpc, prio_floor_cpc[pr])
            winners, clear, e, r, me = auction(
                sub, ad_flight, fl_rate, fl_price, prior_ctr, prior_cvr, fcpm, fcpc,
                tiebreak[idx], need, prio_second[pr] != 0,
                bids[idx] if has_bid else bids, boost[idx] if has_boost else boost,
                ctr[idx] if has_ctr else ctr, cvr[idx] if has_cvr else cvr)
            min_ecpm = me
            if explain:
                for t in range(idx.shape[0]):
                    detail[D_REASON, idx[t]] = r[t]
                    detail[D_ECPM, idx[t]] = e[t]
            for q in range(winners.shape[0]):
                w = winners[q]
                f = ad_flight[sub[w]]
                wins[m, W_ROW] = sub[w]
                wins[m, W_POS] = idx[w]
                wins[m, W_PRIO] = pr
                wins[m, W_ECPM] = e[w]
                wins[m, W_CLEAR] = clear[q]
                wins[m, W_BID] = bids[idx[w]] if has_bid and bids[idx[w]] >= 0.0 \
                    else fl_price[f] / 1e6
                wins[m, W_RATE] = fl_rate[f]
                m += 1
    return wins[:m].copy(), min_ecpm


def warm() -> None:
    """Compile (or load from cache) every signature the decision path uses."""
    rows = np.zeros(1, dtype=np.int32)
    i32, i8, i64 = np.zeros(1, np.int32), np.ones(1, np.int8), np.ones(1, np.int64)
    f8 = np.ones(1, np.float64)
    none = np.zeros(0)
    auction(rows, i32, i8, i64, f8, f8, 0.0, 0.0, f8, 1, True, none, none, none, none)
    lottery(rows, i32, f8, 1)
    for detail in (np.zeros((3, 0)), np.zeros((3, 1))):
        for extra in (none, f8):
            for pred in (none, f8):
                waterfall(rows, i32, i32, i8, i64, f8, f8, i32, i32, i8, i8, f8, f8, 0.0, 0.0,
                          np.zeros(2), 1, detail, extra, extra, pred, pred)
