"""Stage 5: Kevel Decision objects for the winners: ids, contents, signed tracking URLs,
requested event URLs and, when asked, pricing.

Token fields (adserver/formats/signing.py), in order: request id, ad, flight, creative, campaign,
advertiser, divName, clear price in micro-units, rate type, user key, whether the request
asked for bot filtering, site, first zone (0 when none), network, the click destination (the
placement's clickUrl, else the creative's) and the custom event ids the placement asked for.
One token serves a winner's impression, click and event URLs: the path names the event.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from adserver.formats.signing import Signer
from adserver.serving.bound import BoundSnapshot
from adserver.serving.stages.resolve import Plan
from adserver.serving.stages.select import Win
from adserver.snapshot import format as f
from adserver.wire import kevel

TOKEN_KIND = 1  # the version of the field layout below
KEVEL_RATE = {f.RATE_FLAT: 1, f.RATE_CPM: 2, f.RATE_CPC: 3, f.RATE_CPA: 6}


def decimals(x: float, scale: float) -> float:
    """`x` to the nearest multiple of 1/scale (1e6: micro-units), by way of an integer: the
    result is the double nearest a number with that many decimals, so it encodes as that
    number. round(x, 6) (correct decimal rounding: ~1 us a call, three a winner) differs
    only in which neighbour a value within an ulp of a half-way point goes to."""
    return round(x * scale) / scale


def decisions(
    snap: BoundSnapshot,
    wins: list[Win],
    plan: Plan,
    pricing: bool,
    bot_filter: bool,
    request_id: str,
    user_key: str,
    base_url: str,
    signer: Signer,
    now: float,
    min_ecpm: float = 0.0,
) -> list[kevel.Decision]:
    """The Kevel decisions of a placement's winners, in slot order; `min_ecpm` (the lowest
    eCPM that would have won a slot) goes into their pricing."""
    if not wins:
        return []
    p = plan.placement
    zone = plan.zone
    event_ids = list(p.event_ids or ())
    prio_ids = snap.prio["prio_id"]
    sign = signer.signing(TOKEN_KIND, now)
    to_win = decimals(min_ecpm, 1e6)  # the placement's, the same for each winner
    out = []
    for win in wins:
        ad = snap.ad(win.row)
        # one token per winner: the path says which event it is; custom events must be
        # among those the placement asked for, which the token lists
        token = sign(
            [
                request_id,
                ad.ad_id,
                ad.flight_id,
                ad.creative_id,
                ad.campaign_id,
                ad.advertiser_id,
                plan.div,
                int(round(win.clear * 1_000_000)),
                win.rate,
                user_key,
                int(bot_filter),
                plan.site_id,
                zone,
                plan.network_id,
                p.click_url or ad.dest,
                event_ids,
            ]
        )
        price = None
        if pricing:
            revenue = (
                win.clear / 1000.0
                if win.rate == f.RATE_CPM
                else (win.clear if win.rate in (f.RATE_CPC, f.RATE_CPA) else 0.0)
            )
            price = kevel.Pricing(
                win.bid,
                decimals(win.clear, 1e6),
                decimals(revenue, 1e9),
                KEVEL_RATE[win.rate],
                decimals(win.ecpm, 1e6),
                to_win,
            )
        out.append(
            kevel.Decision(
                ad.ad_id,
                ad.advertiser_id,
                ad.creative_id,
                ad.flight_id,
                ad.campaign_id,
                prio_ids[win.prio],
                f"{base_url}/r?t={token}",
                f"{base_url}/i.gif?t={token}",
                ad.contents,
                [kevel.Event(e, f"{base_url}/e.gif?t={token}&e={e}") for e in event_ids]
                if event_ids
                else [],
                price,
            )
        )
    return out


def charge(budget: Any, snap: BoundSnapshot, made: list[kevel.Decision]) -> np.ndarray:
    """Near a hard cap: count what was just served against the worker's allowance (the
    worker's LiveView); the flight rows now paused."""
    budget.charge([d.flight_id for d in made])
    return budget.paused_for(snap)
