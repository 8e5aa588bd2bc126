"""Credit a conversion to the ad that earned it: the user's last click within its flight's
click window, else the last impression within the view window, on an ad promoting one of the
ordered products (or, with `attribution_match = "brand"`, a product of the same brand).

The credited ad's flight gets the conversion and the GMV of the matching items (which feed
ROAS), and, when the flight buys conversions (CPA), the charge. An order that nothing earned
is kept, unattributed.
"""

from __future__ import annotations

import json
from typing import Any

RATE_CPA = 3
DAY_S = 86400


def ad_product(db: Any, ad_id: int) -> str | None:
    """The product an ad promotes (its own, else its creative's)."""
    row = db.execute(
        "SELECT COALESCE(a.product_id, c.product_id) FROM ads a"
        " JOIN creatives c ON c.id = a.creative_id WHERE a.id = ?",
        (ad_id,),
    ).fetchone()
    return row[0] if row else None


def _brands(db: Any, network_id: int, products: list[str]) -> dict[str, str]:
    marks = ",".join("?" * len(products))
    return {
        r[0]: r[1]
        for r in db.execute(
            f"SELECT id, brand FROM products WHERE network_id = ? AND id IN ({marks})",
            [network_id, *products],
        )
    }


def credit(db: Any, rec: dict[str, Any], batch: Any, match: str) -> None:
    """Record the order and credit it (inside the aggregator's transaction)."""
    ts, network, user = rec["ts"], rec["network"], rec["user"]
    items = rec["items"]
    ordered = [i[0] for i in items]
    brand_of = _brands(db, network, ordered) if match == "brand" else {}
    touches = db.execute(
        "SELECT t.id, t.kind, t.at, t.ad_id, t.flight_id, t.advertiser_id, t.campaign_id,"
        " t.creative_id, t.site_id, t.zone_id, t.price_micros, f.click_window_days,"
        " f.view_window_days, f.rate_type FROM touches t JOIN flights f ON f.id = t.flight_id"
        " WHERE t.network_id = ? AND t.user_key = ? AND t.at <= ? AND t.at >= ?"
        " ORDER BY t.at DESC",
        (network, user, ts, ts - 90 * DAY_S),
    ).fetchall()
    best = None
    for kind in ("click", "imp"):
        for t in touches:
            window = t[11] if kind == "click" else t[12]
            if t[1] != kind or ts - t[2] > window * DAY_S:
                continue
            product = ad_product(db, t[3])
            if product is None:
                continue
            if match == "brand":
                wanted = _brands(db, network, [product]).get(product)
                matching = [i for i in items if wanted and brand_of.get(i[0]) == wanted]
            else:
                matching = [i for i in items if i[0] == product]
            if matching:
                best = (t, sum(i[1] * i[2] for i in matching))
                break
        if best:
            break
    gmv = spend = 0
    touch = None
    if best is not None:
        touch, gmv = best
        spend = touch[10] * 1000 if touch[13] == "cpa" else 0
        keys = (network, touch[8], touch[9], touch[5], touch[6], touch[4], touch[3], touch[7])
        batch.add(ts, keys, conversions=1, gmv_micros=gmv, spend_nanos=spend)
        batch.flights.add(touch[4])
    db.execute(
        "INSERT INTO conversions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            rec["id"],
            rec["order"],
            network,
            user,
            ts,
            rec["revenue"],
            json.dumps(items),
            touch[1] if touch else None,
            touch[0] if touch else None,
            touch[3] if touch else None,
            touch[4] if touch else None,
            touch[5] if touch else None,
            gmv,
            spend,
        ),
    )
