"""Stage 3: which candidates may enter the auction (the Cython filter kernel).

Assumes the candidate posting lists and the request-wide Query parts. Returns the passing
rows in list order, with explain a reason code per candidate
(adserver/snapshot/format.REASONS), and how many passing rows (the first ones) came from
matched lists (keyword and category matches of a sponsored-product placement).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from adserver.formats import livestate
from adserver.serving.bound import BoundSnapshot
from adserver.serving.stages.resolve import Plan
from adserver.snapshot.programs import properties
from adserver.snapshot.query import Query, frequency

EMPTY = np.zeros(0, dtype=np.int32)


class Used:
    """What earlier placements of this request chose, for dedupe."""

    def __init__(self) -> None:
        self.flights: list[int] = []
        self.campaigns: list[int] = []
        self.advertisers: list[int] = []
        self.creatives: list[int] = []

    def add(self, d: Any) -> None:
        """Remember a decision made for an earlier placement."""
        self.flights.append(d.flight_id)
        self.campaigns.append(d.campaign_id)
        self.advertisers.append(d.advertiser_id)
        self.creatives.append(d.creative_id)


def run(
    snap: BoundSnapshot,
    plan: Plan,
    lists: Sequence[np.ndarray],
    q: Query,
    used: Used,
    paused: np.ndarray,
    explain: bool,
    limit: int,
    n_matched: tuple[int, int] = (0, 0),
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, tuple[int, int]]:
    """(passing rows, rows considered, reasons per considered row or None, how many of the
    passing rows (the first ones) came from the first `n_matched[0]` lists and from the first
    `n_matched[1]`). At most `limit` passing rows are taken from each list (0: no limit;
    explain considers everything)."""
    p = plan.placement
    q.site_id = plan.site_id
    q.zone_ids = plan.zone_ids
    q.hour_of_week = plan.hour_of_week
    q.forced_campaign = p.campaign_id or 0
    q.forced_flight = p.flight_id or 0
    q.forced_ad = p.ad_id or 0
    q.props = properties(p.properties)
    if used.flights:
        q.used_flights = np.array(used.flights, dtype=np.int64)
        q.used_campaigns = np.array(used.campaigns, dtype=np.int64)
        q.used_advertisers = np.array(used.advertisers, dtype=np.int64)
        q.used_creatives = np.array(used.creatives, dtype=np.int64)
    if not lists:
        return EMPTY, EMPTY, (np.zeros(0, dtype=np.int8) if explain else None), (0, 0)
    considered = (lists[0] if len(lists) == 1 else np.concatenate(lists)) if explain else EMPTY
    given, matched = n_matched
    n_lists = len(lists)
    if (given == 0 or given == n_lists) and (matched == 0 or matched == n_lists):
        passing, reasons = snap.targeting.filter_lists(list(lists), q, paused, explain, limit)
        n = passing.shape[0]
        return passing, considered, reasons, (n if given else 0, n if matched else 0)
    counts = np.zeros(len(lists), dtype=np.int64)  # passing rows per list, in list order
    passing, reasons = snap.targeting.filter_lists(list(lists), q, paused, explain, limit, counts)
    per_list = counts.tolist()
    return passing, considered, reasons, (sum(per_list[:given]), sum(per_list[:matched]))


def read_frequency(
    live: Any, snap: BoundSnapshot, plan: Plan, user: Any, q: Query, read: set[int]
) -> None:
    """Load the user's impression history for frequency caps into `q`, once per network a
    request's placements name (`read`), when the snapshot has caps and the user a key."""
    if (
        live is None
        or not snap.columns["fcap_level"].shape[0]
        or user is None
        or not user.key
        or plan.network_id in read
    ):
        return
    read.add(plan.network_id)
    with live.begin() as txn:
        entry = livestate.decode(txn.get(livestate.user_key(plan.network_id, user.key)))
    q.u_level, q.u_id, q.u_ts = frequency(entry)


NO_BIDS = np.zeros(0)


def keyword_bids(snap: BoundSnapshot, rows: np.ndarray, q: Query) -> np.ndarray:
    """Per passing row, the bid of its best matched keyword (-1: the flight's price), or an
    empty array when no keyword of the snapshot has its own bid or the request has none."""
    if not snap.keyword_bids or q.phrase_tok.shape[0] == 0 or rows.shape[0] == 0:
        return NO_BIDS
    return snap.targeting.keyword_bids(rows, q)
