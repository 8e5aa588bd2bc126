"""The auction, lottery and priority waterfall: their rules and shared codes. The kernel is
Cython (native/_auction.pyx, `Waterfall`, bound to a snapshot's records and priorities);
its plain-Python twin: adserver/kernels/auction_ref.py.

`waterfall` fills up to k slots from a placement's candidate rows down the priority
waterfall: priorities in order (tier, then id), each by lottery or auction over its own
candidates, with the higher of the placement's and the priority's floors (currency units).
Its uniforms hold n + k values in [0, 1): the first n break eCPM ties, the last k drive the
lottery draws. It returns (winners, min eCPM to win the last auction run): winners is one
float64 row per slot filled, in slot order, with the columns W_* below: the ad row, its
position in the candidates, its priority row, eCPM, clear price, bid (currency units) and
rate type. With explain, a (3, n) detail array gets the rows D_*: every candidate's reason
code, eCPM and whether its priority was reached.

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

`lottery` draws up to k distinct candidates with probability proportional to their ads'
weights; uniform s drives draw s.
"""

from __future__ import annotations

from adserver.kernels.codes import (  # noqa: F401  (the auction's codes, declared once)
    FLOOR,
    LOST_LOTTERY,
    OUTBID,
    PASS,
    RATE_CPA,
    RATE_CPC,
    RATE_CPM,
    RATE_FLAT,
)

CENT = 0.01


def quality(rate: int, ctr: float, cvr: float) -> float:
    """eCPM per unit of bid: 1 for CPM, pCTR x 1000 for CPC, pCVR x 1000 for CPA, 0 flat."""
    return {RATE_CPM: 1.0, RATE_CPC: ctr * 1000.0, RATE_CPA: cvr * 1000.0}.get(rate, 0.0)


# the columns of waterfall's winners array, one row per slot filled
W_ROW, W_POS, W_PRIO, W_ECPM, W_CLEAR, W_BID, W_RATE = range(7)
# the rows of waterfall's detail array (explain): reason code, eCPM, priority reached
D_REASON, D_ECPM, D_REACHED = range(3)
