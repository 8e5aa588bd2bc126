"""Stage 5: Kevel Decision objects for the winners: ids, contents, signed tracking URLs,
requested event URLs and, when asked, pricing.

Token fields (adserver/signing.py), in order: request id, ad, flight, creative, campaign,
advertiser, divName, clear price in micro-units, rate type, user key, whether the request
asked for bot filtering, site, first zone (0 when none), network, the click destination (the
placement's clickUrl, else the creative's) and the custom event ids the placement asked for.
One token serves a winner's impression, click and event URLs: the path names the event.
"""

from __future__ import annotations

from typing import Any

import msgspec

from adserver.serving.stages.resolve import Plan
from adserver.serving.stages.select import Win
from adserver.signing import Signer
from adserver.snapshot import format as f
from adserver.snapshot.loader import Snapshot
from adserver.wire import kevel

TOKEN_KIND = 1  # the version of the field layout below
KEVEL_RATE = {f.RATE_FLAT: 1, f.RATE_CPM: 2, f.RATE_CPC: 3, f.RATE_CPA: 6}


def decision(snap: Snapshot, win: Win, plan: Plan, pricing: bool, bot_filter: bool,
             request_id: str, user_key: str, base_url: str, signer: Signer, now: float
             ) -> kevel.Decision:
    c = snap.columns
    row = win.row
    fl = int(c["ad_flight"][row])
    ad_id, creative_id = int(c["ad_id"][row]), int(c["ad_creative"][row])
    campaign, advertiser = int(c["fl_campaign"][fl]), int(c["fl_advertiser"][fl])
    contents, dest = snap.creative(creative_id)
    clear_micros = int(round(win.clear * 1_000_000))
    p = plan.placement
    zone = int(plan.zone_ids[0]) if plan.zone_ids.shape[0] else 0
    fields: list[Any] = [request_id, ad_id, int(c["fl_id"][fl]), creative_id, campaign,
                         advertiser, plan.div, clear_micros, win.rate, user_key,
                         int(bot_filter), plan.site_id, zone, plan.network_id]

    # one token per winner: the path says which event it is; custom events must be among
    # those the placement asked for, which the token lists
    event_ids = list(p.event_ids or ())
    token = signer.sign(TOKEN_KIND, fields + [p.click_url or dest, event_ids], now)
    click = f"{base_url}/r?t={token}"
    events = [kevel.Event(id=e, url=f"{base_url}/e.gif?t={token}&e={e}") for e in event_ids]
    price = None
    if pricing:
        revenue = win.clear / 1000.0 if win.rate == f.RATE_CPM else (
            win.clear if win.rate in (f.RATE_CPC, f.RATE_CPA) else 0.0)
        price = kevel.Pricing(price=win.bid, clear_price=round(win.clear, 6),
                              revenue=round(revenue, 9), rate_type=KEVEL_RATE[win.rate],
                              e_cpm=round(win.ecpm, 6))
    return kevel.Decision(
        ad_id=ad_id, advertiser_id=advertiser, creative_id=creative_id,
        flight_id=int(c["fl_id"][fl]), campaign_id=campaign,
        priority_id=int(snap.prio["prio_id"][win.prio]), click_url=click,
        impression_url=f"{base_url}/i.gif?t={token}", contents=msgspec.Raw(contents),
        events=events, pricing=price,
    )
