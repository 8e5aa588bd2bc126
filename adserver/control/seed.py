"""`adserver seed`: a deterministic, realistic retail media network at a chosen scale.

Same seed and scale, same network, byte for byte. Rows are built from the entity Structs and
their column mapping (the same path the API writes through) and inserted in bulk in one
transaction, with one audit row summarising the seed.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

import msgspec
from tqdm import tqdm

from adserver.common import entities as e
from adserver.control import seed_entities as gen
from adserver.control.schema import SPECS, to_row
from adserver.control.seed_entities import money
from adserver.control.seed_names import (
    ADJECTIVES,
    CATEGORIES,
    SEGMENTS,
    VARIANTS,
)
from adserver.control.store import Store, now


class Scale(msgspec.Struct, kw_only=True):
    """How big a demo network to generate: ads, products, users and the random seed."""

    ads: int = 600
    products: int = 2000
    users: int = 1000
    seed: int = 7

    @property
    def flights(self) -> int:
        return max(8, self.ads // 10)

    @property
    def campaigns(self) -> int:
        return max(4, self.flights // 3)

    @property
    def advertisers(self) -> int:
        return max(4, min(5000, self.campaigns // 2))


class SeedError(Exception):
    """Seeding refused: the store already holds a network, or the scale is out of range."""

    pass


PAGE_TYPES: list[Any] = ["home", "search", "category", "product", "cart"]


class _Writer:
    """Inserts rows of one entity kind with explicit ids, in bulk."""

    def __init__(self, db: Any, stamp: str):
        self.db, self.stamp = db, stamp
        self.counts: dict[str, int] = {}

    def put(self, name: str, items: Iterable[tuple[int, e.Entity, dict[str, Any]]]) -> None:
        spec = SPECS[name]
        rows: list[dict[str, Any]] = []
        for id_, obj, scope in items:
            rows.append(
                {
                    "id": id_,
                    **to_row(spec, obj),
                    **scope,
                    "created_at": self.stamp,
                    "updated_at": self.stamp,
                }
            )
        if not rows:
            return
        cols = list(rows[0])
        quoted = ", ".join(f'"{c}"' for c in cols)
        sql = f"INSERT INTO {name} ({quoted}) VALUES ({', '.join('?' for _ in cols)})"
        self.db.executemany(sql, ([r[c] for c in cols] for r in rows))
        self.counts[name] = self.counts.get(name, 0) + len(rows)


def seed(store: Store, scale: Scale, progress: bool = True) -> dict[str, int]:
    """Write a whole demo network into an empty store; returns row counts."""
    if store.read("SELECT 1 FROM networks LIMIT 1"):
        raise SeedError("the control store already holds a network (use --reset to start over)")
    rng = random.Random(scale.seed)
    stamp = now()
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    with store.transaction() as db:
        w = _Writer(db, stamp)
        net = 1
        w.put("networks", [(net, e.Network(name="Demo Retail", time_zone="America/New_York"), {})])
        sites: list[tuple[int, str, str, Any]] = [
            (1, "Demo Retail Web", "https://shop.example", "web"),
            (2, "Demo Retail iOS", "", "ios"),
            (3, "Demo Retail Android", "", "android"),
        ]
        w.put(
            "sites",
            [(i, e.Site(network_id=net, name=n, url=u, platform=p), {}) for i, n, u, p in sites],
        )
        zones = []
        for site_id, *_ in sites:
            for j, page in enumerate(PAGE_TYPES):
                zones.append(
                    (
                        site_id * 10 + j,
                        e.Zone(site_id=site_id, name=f"{page}", page_type=page),
                        {"network_id": net},
                    )
                )
        w.put("zones", zones)
        zone_ids = [z[0] for z in zones]
        ad_types = {
            "tile": (
                1,
                e.AdType(network_id=net, name="Sponsored product tile", format="sponsored_product"),
            ),
            "leader": (
                2,
                e.AdType(
                    network_id=net,
                    name="Leaderboard 728x90",
                    format="display",
                    width=728,
                    height=90,
                ),
            ),
            "rect": (
                3,
                e.AdType(
                    network_id=net,
                    name="Medium rectangle 300x250",
                    format="display",
                    width=300,
                    height=250,
                ),
            ),
            "native": (4, e.AdType(network_id=net, name="Native card", format="native")),
        }
        w.put("ad_types", [(i, t, {}) for i, t in ad_types.values()])
        w.put(
            "channels",
            [
                (
                    1,
                    e.Channel(
                        network_id=net, name="All storefronts", site_ids=[s[0] for s in sites]
                    ),
                    {},
                )
            ],
        )
        priorities = [
            (
                1,
                e.Priority(
                    channel_id=1,
                    name="Sponsorships",
                    tier=1,
                    selection="lottery",
                    second_price=False,
                ),
                {"network_id": net},
            ),
            (
                2,
                e.Priority(
                    channel_id=1, name="Sponsored products", tier=2, floor_cpc=Decimal("0.10")
                ),
                {"network_id": net},
            ),
            (
                3,
                e.Priority(channel_id=1, name="Display auction", tier=3, floor_cpm=Decimal("0.50")),
                {"network_id": net},
            ),
            (
                4,
                e.Priority(
                    channel_id=1, name="House", tier=10, selection="lottery", second_price=False
                ),
                {"network_id": net},
            ),
        ]
        w.put("priorities", priorities)

        brands = gen.brands(scale.advertisers)
        w.put(
            "advertisers",
            [
                (
                    i + 1,
                    e.Advertiser(
                        network_id=net, name=b, domain=b.lower().replace(" ", "") + ".example"
                    ),
                    {},
                )
                for i, b in enumerate(brands)
            ],
        )
        products_by_brand = _write_products(db, rng, net, brands, scale.products, progress, stamp)
        w.counts["products"] = scale.products

        campaigns = []
        for c in range(1, scale.campaigns + 1):
            adv = (c - 1) % len(brands) + 1
            season = rng.choice(["Always-on", "Holiday", "Spring", "Launch", "Back to school"])
            campaigns.append(
                (
                    c,
                    e.Campaign(advertiser_id=adv, name=f"{brands[adv - 1]} {season}"),
                    {"network_id": net},
                )
            )
        w.put("campaigns", campaigns)

        flights, flight_kind = [], {}
        bar = tqdm(
            total=scale.flights + scale.ads,
            desc="flights and ads",
            unit="row",
            disable=not progress,
            leave=False,
        )
        for f in range(1, scale.flights + 1):
            cid = (f - 1) % scale.campaigns + 1
            adv = (cid - 1) % len(brands) + 1
            kind = rng.choices(["product", "display", "native", "sponsorship"], [55, 30, 10, 5])[0]
            own = products_by_brand.get(adv, [])
            cat = rng.choice(own)[1] if own else rng.choice(list(CATEGORIES))
            flight_kind[f] = (kind, adv, cat)
            flights.append(
                (
                    f,
                    gen.flight(rng, kind, cid, brands[adv - 1], today, zone_ids, cat),
                    {"network_id": net, "advertiser_id": adv},
                )
            )
            bar.update()
        w.put("flights", flights)

        creatives, ads = [], []
        for a in range(1, scale.ads + 1):
            fid = (a - 1) % scale.flights + 1
            kind, adv, cat = flight_kind[fid]
            own = products_by_brand.get(adv, [])
            creative = gen.creative(
                rng,
                kind,
                adv,
                brands[adv - 1],
                [p for p, c in own if c == cat] or [p for p, _ in own],
            )
            creatives.append((a, creative, {"network_id": net}))
            ads.append(
                (
                    a,
                    e.Ad(
                        flight_id=fid,
                        creative_id=a,
                        product_id=creative.product_id,
                        weight=rng.choice([50, 100, 100, 200]),
                        relevancy_score=rng.randint(400, 1000)
                        if kind == "product" and rng.random() < 0.1
                        else None,
                    ),
                    {"network_id": net, "advertiser_id": adv},
                )
            )
            bar.update()
        bar.close()
        w.put("creatives", creatives)
        w.put("ads", ads)

        _write_users(db, rng, net, scale, products_by_brand, progress, stamp)
        w.counts["users"] = scale.users
        db.execute(
            "INSERT INTO audit (at, key_id, entity, entity_id, action, network_id, after)"
            " VALUES (?, 'seed', 'networks', ?, 'seed', ?, ?)",
            (stamp, str(net), net, msgspec.json.encode({"scale": scale, "counts": w.counts})),
        )
    return w.counts


def _chunks(it: Iterator[Any], size: int) -> Iterator[list[Any]]:
    buf = []
    for item in it:
        buf.append(item)
        if len(buf) == size:
            yield buf
            buf = []
    if buf:
        yield buf


def _write_products(
    db: Any, rng: random.Random, net: int, brands: list[str], n: int, progress: bool, stamp: str
) -> dict[int, list[tuple[str, str]]]:
    by_brand: dict[int, list[tuple[str, str]]] = {}
    cats = list(CATEGORIES)
    cap = max(200, n // (4 * len(brands)))

    def rows() -> Iterator[tuple]:
        for i in range(n):
            adv = rng.randrange(len(brands)) + 1
            cat = rng.choice(cats)
            pid = f"P{i + 1:07d}"
            if len(by_brand.setdefault(adv, [])) < cap:  # what product ads choose from
                by_brand[adv].append((pid, cat))
            title = (
                f"{brands[adv - 1]} {rng.choice(ADJECTIVES)} "
                f"{rng.choice(CATEGORIES[cat])}, {rng.choice(VARIANTS)}"
            )
            price = int(money(rng, 1.5, 300) * 1_000_000)
            yield (
                net,
                pid,
                title,
                brands[adv - 1],
                cat,
                price,
                int(rng.random() < 0.96),
                f"https://img.shop.example/p/{pid}.jpg",
                stamp,
            )

    bar = tqdm(total=n, desc="products", unit="row", disable=not progress, leave=False)
    for chunk in _chunks(rows(), 20000):
        db.executemany(
            "INSERT INTO products (network_id, id, title, brand, category,"
            " price_micros, available, image_url, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            chunk,
        )
        bar.update(len(chunk))
    bar.close()
    return by_brand


def _write_users(
    db: Any,
    rng: random.Random,
    net: int,
    scale: Scale,
    products_by_brand: dict[int, list[tuple[str, str]]],
    progress: bool,
    stamp: str,
) -> None:
    pool = [p for ps in products_by_brand.values() for p, _ in ps[:20]] or ["P0000001"]
    enc = msgspec.json.encode

    def rows() -> Iterator[tuple]:
        for i in range(scale.users):
            segs = rng.sample(SEGMENTS, rng.choice([0, 1, 1, 2, 3]))
            recent = rng.sample(pool, min(len(pool), rng.choice([0, 2, 5])))
            consent = {"gdpr": rng.random() < 0.9}
            yield (
                net,
                f"u{i + 1:07d}",
                enc(segs).decode(),
                enc([]).decode(),
                "{}",
                enc(recent).decode(),
                enc(consent).decode(),
                stamp,
            )

    bar = tqdm(total=scale.users, desc="users", unit="row", disable=not progress, leave=False)
    for chunk in _chunks(rows(), 20000):
        db.executemany("INSERT INTO users VALUES (?, ?, ?, ?, ?, ?, ?, ?)", chunk)
        bar.update(len(chunk))
    bar.close()


__all__ = ["Scale", "SeedError", "seed"]
