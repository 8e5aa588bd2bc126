"""How one generated brand, flight and creative of `adserver seed` look (control/seed.py):
the mix of sponsored-product, display, native and sponsorship flights, their bids, caps,
keywords, targeting and pacing, and creatives mostly approved."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import Any

from adserver.common import entities as e
from adserver.control.seed_names import (
    BRAND_HEADS,
    BRAND_TAILS,
    REGIONS,
    SEGMENTS,
)


def money(rng: random.Random, lo: float, hi: float, places: int = 2) -> Decimal:
    return Decimal(f"{rng.uniform(lo, hi):.{places}f}")


def brands(n: int) -> list[str]:
    names = []
    for i in range(n):
        head = BRAND_HEADS[i % len(BRAND_HEADS)]
        tail = BRAND_TAILS[(i // len(BRAND_HEADS)) % len(BRAND_TAILS)]
        gen = i // (len(BRAND_HEADS) * len(BRAND_TAILS))
        names.append(f"{head}{tail}" + (f" {gen + 1}" if gen else ""))
    return names


def flight(
    rng: random.Random,
    kind: str,
    cid: int,
    brand: str,
    today: dt.datetime,
    zone_ids: list[int],
    cat: str,
) -> e.Flight:
    start = today - dt.timedelta(days=rng.randint(0, 30))
    end = today + dt.timedelta(days=rng.randint(7, 90)) if rng.random() < 0.8 else None
    words = brand.split()[0].lower()
    common: dict[str, Any] = dict(
        campaign_id=cid,
        start=start,
        end=end,
        pacing=rng.choice(["even", "even", "even", "asap", "front_loaded"]),
    )
    if rng.random() < 0.15:
        common["segments"] = rng.sample(SEGMENTS, 1)
    if rng.random() < 0.1:
        common["geo"] = [e.GeoTarget(country="US", region=rng.choice(REGIONS))]
    if rng.random() < 0.1:
        common["dayparts"] = [e.Daypart(start_hour=rng.choice([6, 8, 17]), end_hour=23)]
    if kind == "product":
        # half target keywords (manual), half rely on relevance to the query or page (auto)
        leaf = cat.split(" > ")[-1].lower()
        kws = [e.Keyword(text=leaf, match="broad"), e.Keyword(text=words, match="phrase")]
        if rng.random() < 0.3:
            kws.append(e.Keyword(text="cheap", negative=True))
        if rng.random() < 0.5:
            kws = [e.Keyword(text="cheap", negative=True)] if rng.random() < 0.3 else []
        return e.Flight(
            **common,
            priority_id=2,
            name=f"{brand} sponsored {leaf}",
            rate_type="cpc",
            price=money(rng, 0.15, 2.5),
            keywords=kws,
            daily_cap=e.Cap(metric="spend", value=money(rng, 20, 500, 0)),
            lifetime_cap=e.Cap(metric="spend", value=money(rng, 1000, 20000, 0)),
            custom_targeting='$page_type in ["search", "category", "product"]'
            if rng.random() < 0.3
            else None,
        )
    if kind == "sponsorship":
        return e.Flight(
            **common,
            priority_id=1,
            name=f"{brand} homepage takeover",
            rate_type="flat",
            price=money(rng, 500, 5000, 0),
            zone_ids=[z for z in zone_ids if z % 10 == 0],
            lifetime_cap=e.Cap(metric="impressions", value=Decimal(rng.randint(50, 500) * 1000)),
        )
    return e.Flight(
        **common,
        priority_id=3,
        name=f"{brand} {kind} awareness",
        rate_type="cpm",
        price=money(rng, 0.8, 12),
        dedupe=rng.choice(["none", "advertiser", "flight"]),
        daily_cap=e.Cap(metric="spend", value=money(rng, 50, 1000, 0)),
        frequency_caps=[e.FrequencyCap(count=rng.choice([3, 5, 10]), window_seconds=86400)]
        if rng.random() < 0.5
        else [],
        custom_targeting='$device == "mobile"' if rng.random() < 0.1 else None,
    )


def creative(
    rng: random.Random, kind: str, adv: int, brand: str, products: list[str]
) -> e.Creative:
    status: Any = "approved" if rng.random() < 0.95 else rng.choice(["pending", "draft"])
    slug = brand.lower().replace(" ", "-")
    click = f"https://shop.example/brands/{slug}"
    if kind == "product" and products:
        pid = rng.choice(products)
        return e.Creative(
            advertiser_id=adv,
            ad_type_id=1,
            name=f"{brand} {pid}",
            kind="product",
            status=status,
            product_id=pid,
            click_url=f"https://shop.example/p/{pid}",
            image_url=f"https://img.shop.example/p/{pid}.jpg",
        )
    if kind == "native" or (kind == "product" and not products):
        return e.Creative(
            advertiser_id=adv,
            ad_type_id=4,
            name=f"{brand} native card",
            kind="native",
            status=status,
            click_url=click,
            title=f"Discover {brand}",
            data={
                "headline": f"Discover {brand}",
                "cta": "Shop now",
                "image": f"https://img.shop.example/b/{slug}.jpg",
            },
        )
    size, type_id = rng.choice([("728x90", 2), ("300x250", 3)])
    return e.Creative(
        advertiser_id=adv,
        ad_type_id=type_id,
        name=f"{brand} {size}",
        kind="image",
        status=status,
        click_url=click,
        image_url=f"https://img.shop.example/b/{slug}-{size}.png",
        title=f"{brand}: new season",
    )
