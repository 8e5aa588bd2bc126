"""The synthetic world of `adserver simulate` (adserver/tools/simulate.py): its settings, its
flights and their ground truth, the history the forecast learns from, the page views of the
day and the budgets set from what each flight's supply can deliver."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from typing import Any

import numpy as np

from adserver.tools.simtruth import (
    CTR,
    DEVICE_SHARE,
    DEVICE_SIGMA,
    DEVICE_UA,
    INTERESTS,
    TRAFFIC,
    shopper_traits,
)

PAGES = {  # page: (share of page views, zone, [(placement, ad type, winners)])
    "home": (0.30, "home", [("banner", "banner", 1), ("native", "native", 1)]),
    "search": (0.30, "search", [("sponsored", "sponsored", 4), ("banner", "banner", 1)]),
    "category": (0.25, "category", [("sponsored", "sponsored", 4)]),
    "product": (0.15, "product", [("sponsored", "sponsored", 2), ("native", "native", 1)]),
}
MODES = (("even", 0.70), ("front_loaded", 0.15), ("custom", 0.05), ("asap", 0.10))
BUSINESS_HOURS = [0.0] * 8 + [1.0] * 12 + [0.0] * 4
RENDER = 0.95  # share of decisions whose impression pixel fires
ADMIN_KEY = "sim-admin-key-0123456789abcdef"


@dataclasses.dataclass
class Settings:
    """A simulation: flights, page views, workers, controller interval, history and days, seed
    and outputs."""

    flights: int = 200
    requests: int = 150_000  # page views in the day
    workers: int = 2
    interval: float = 30.0  # simulated seconds between controller steps
    history_days: int = 7
    days: int = 1  # simulated one after another (the controller learns); the last is reported
    under_share: float = 0.25
    seed: int = 1
    date: str = "2026-12-02"  # the simulated day (UTC)
    plot: str | None = None
    report: str | None = None
    progress: bool = True


@dataclasses.dataclass
class SimFlight:
    """A simulated flight with its ground truth (CTR, audience, device lift) and what happened
    to it."""

    id: int
    group: tuple[str, str]  # (zone, ad type)
    mode: str
    rate: str
    bid: float
    ctr: float  # ground truth: the mean; see true_ctr
    under: bool  # budgeted above what its supply can deliver
    interest: int = 0  # index in INTERESTS of its audience
    device_lift: dict[str, float] = dataclasses.field(default_factory=dict)
    budget: float = 0.0
    exhausted_at: float | None = None  # hours into the day
    throttles: list[float] = dataclasses.field(default_factory=list)


class SimClock:
    """The simulated clock the project's clock reads during a simulation."""

    def __init__(self, t: float):
        self.t = t

    def now(self) -> float:
        return self.t


# ---- the world --------------------------------------------------------------------------


def build_world(data_dir: str, s: Settings, rng: np.random.Generator) -> dict[str, Any]:
    """The storefront network and its flights, through the repository (real validation)."""
    from adserver.control.auth import Principal
    from adserver.control.repo import Repository
    from adserver.control.schema import SPECS
    from adserver.control.store import Store

    store = Store(data_dir)
    repo = Repository(store)
    who = Principal("simulate", "admin")

    def make(table: str, **body: Any) -> int:
        return repo.create(SPECS[table], who, body).id  # type: ignore[attr-defined]

    net = make("networks", name="Simulated storefront", time_zone="UTC")
    site = make("sites", network_id=net, name="shop", url="https://shop.example")
    zones = {
        z: make("zones", site_id=site, name=z, page_type=z)
        for z in ("home", "search", "category", "product")
    }
    types = {
        "banner": make(
            "ad_types", network_id=net, name="Leaderboard", format="display", width=728, height=90
        ),
        "native": make("ad_types", network_id=net, name="Native card", format="native"),
        "sponsored": make(
            "ad_types", network_id=net, name="Sponsored product", format="sponsored_product"
        ),
    }
    channel = make("channels", network_id=net, name="All", site_ids=[site])
    # a reserve price, so that a flight alone in an auction pays something
    prio = make(
        "priorities", channel_id=channel, name="Auction", tier=1, floor_cpm="0.80", floor_cpc="0.10"
    )
    # slots per day of each (zone, ad type): flights are spread in proportion
    slots: dict[tuple[str, str], float] = {}
    for share, zone, placements in PAGES.values():
        for _, ad_type, count in placements:
            slots[(zone, ad_type)] = slots.get((zone, ad_type), 0.0) + share * count
    groups = sorted(slots)
    weights = np.array([slots[g] for g in groups])
    counts = np.maximum(2, np.round(weights / weights.sum() * s.flights)).astype(int)
    while counts.sum() > s.flights:
        counts[int(np.argmax(counts))] -= 1
    while counts.sum() < s.flights:
        counts[int(np.argmin(counts))] += 1
    flights: list[SimFlight] = []
    mode_names = [m for m, _ in MODES]
    mode_p = np.array([p for _, p in MODES])
    i = 0
    for group, n in zip(groups, counts.tolist()):
        zone, ad_type = group
        for _ in range(n):
            adv = make("advertisers", network_id=net, name=f"Brand {i:03d}")
            camp = make("campaigns", advertiser_id=adv, name=f"Always on {i:03d}")
            mode = str(rng.choice(mode_names, p=mode_p))
            rate = "cpc" if ad_type == "sponsored" and rng.random() < 0.4 else "cpm"
            bid = round(float(rng.uniform(0.2, 1.5) if rate == "cpc" else rng.uniform(1, 9)), 2)
            body: dict[str, Any] = {
                "campaign_id": camp,
                "priority_id": prio,
                "name": f"F{i:03d} {zone} {ad_type}",
                "start": "2026-01-01T00:00:00Z",
                "rate_type": rate,
                "price": bid,
                "pacing": mode,
                "zone_ids": [zones[zone]],
                "daily_cap": {"metric": "spend", "value": 1000000},
            }
            if mode == "custom":
                body["pacing_curve"] = BUSINESS_HOURS
            fid = make("flights", **body)
            product = f"sku-{i:05d}"
            kind = {"banner": "image", "native": "native", "sponsored": "product"}[ad_type]
            creative = make(
                "creatives",
                advertiser_id=adv,
                ad_type_id=types[ad_type],
                name=f"C{i:03d}",
                kind=kind,
                status="approved",
                image_url="https://img.shop.example/a.png",
                title=f"Product {i}",
                click_url="https://shop.example/p",
                **({"product_id": product} if kind == "product" else {}),
            )
            make(
                "ads",
                flight_id=fid,
                creative_id=creative,
                **({"product_id": product} if kind == "product" else {}),
            )
            lift = rng.lognormal(0.0, DEVICE_SIGMA, size=len(DEVICE_UA))
            lift /= sum(lift[j] * DEVICE_SHARE[d] for j, d in enumerate(DEVICE_UA))
            flights.append(
                SimFlight(
                    id=fid,
                    group=group,
                    mode=mode,
                    rate=rate,
                    bid=bid,
                    ctr=float(rng.uniform(*CTR[ad_type])),
                    under=False,
                    interest=int(rng.integers(0, len(INTERESTS))),
                    device_lift=dict(zip(DEVICE_UA, lift.tolist())),
                )
            )
            i += 1
    store.close()
    return {"network": net, "site": site, "zones": zones, "types": types, "flights": flights}


def seed_history(
    data_dir: str, world: dict[str, Any], s: Settings, day0: float, rng: np.random.Generator
) -> None:
    """`history_days` of logged request counts per zone before the day, as the aggregator
    would have written them, for the controller's forecast to learn from."""
    from adserver.control.store import Store

    store = Store(data_dir)
    rows = []
    for d in range(1, s.history_days + 1):
        for h in range(24):
            hour = dt.datetime.fromtimestamp(day0 - d * 86400 + h * 3600, dt.UTC)
            for share, zone, placements in PAGES.values():
                n = s.requests * TRAFFIC[h] * share * len(placements) * rng.uniform(0.95, 1.05)
                rows.append(
                    (
                        hour.strftime("%Y-%m-%dT%H"),
                        world["network"],
                        world["site"],
                        world["zones"][zone],
                        int(n),
                    )
                )
    with store.transaction() as db:
        db.executemany(
            "INSERT INTO stats_hourly (hour, network_id, site_id, zone_id, advertiser_id,"
            " campaign_id, flight_id, ad_id, creative_id, requests) VALUES (?, ?, ?, ?, 0, 0, 0,"
            " 0, 0, ?) ON CONFLICT DO UPDATE SET requests = requests + excluded.requests",
            rows,
        )
    store.close()


def page_views(world: dict[str, Any], rng: np.random.Generator, n: int) -> list[dict[str, Any]]:
    """`n` decision requests (Kevel request bodies) of pages drawn by their shares."""
    names = list(PAGES)
    p = np.array([PAGES[k][0] for k in names])
    out = []
    for page in rng.choice(names, size=n, p=p).tolist():
        _, zone, placements = PAGES[page]
        shopper = int(rng.integers(0, 50_000))
        _, interests = shopper_traits(shopper)
        body = {
            "placements": [
                {
                    "divName": div,
                    "networkId": world["network"],
                    "siteId": world["site"],
                    "zoneIds": [world["zones"][zone]],
                    "adTypes": [world["types"][t]],
                    **({"count": c} if c > 1 else {}),
                }
                for div, t, c in placements
            ],
            "user": {
                "key": f"shopper-{shopper:05d}",
                "segments": [f"interest:{INTERESTS[i]}" for i in interests],
            },
        }
        out.append(body)
    return out


def set_budgets(
    data_dir: str, world: dict[str, Any], s: Settings, rng: np.random.Generator
) -> None:
    """Daily spend caps from each zone and ad type's expected slots: the flights with the
    lowest eCPM bids in a group (`under_share` of them) want three times what the others
    leave them; the others share 60 % of the slots (at most 60 % of the page views: one ad
    fills one slot of a view), so pacing has room to spread them."""
    from adserver.control.auth import Principal
    from adserver.control.compiler import DEFAULT_PRIOR_CTR
    from adserver.control.repo import Repository
    from adserver.control.schema import SPECS
    from adserver.control.store import Store

    slots: dict[tuple[str, str], float] = {}
    views: dict[tuple[str, str], float] = {}  # a flight (one ad) fills one slot per view
    for share, zone, placements in PAGES.values():
        for _, ad_type, count in placements:
            slots[(zone, ad_type)] = slots.get((zone, ad_type), 0.0) + (
                s.requests * share * count * RENDER
            )
            views[(zone, ad_type)] = views.get((zone, ad_type), 0.0) + (s.requests * share * RENDER)
    store = Store(data_dir)
    repo = Repository(store)
    who = Principal("simulate", "admin")
    for group, total in slots.items():
        members = sorted(
            (f for f in world["flights"] if f.group == group),
            key=lambda f: f.bid * (DEFAULT_PRIOR_CTR * 1000 if f.rate == "cpc" else 1.0),
        )
        n_under = int(math.floor(s.under_share * len(members) + 0.5))
        weights = rng.uniform(0.5, 1.5, size=len(members))
        top = weights[n_under:].sum()
        for i, f in enumerate(members):
            f.under = i < n_under
            if f.under:
                imps = 3.0 * 0.4 * total / n_under
            else:
                imps = 0.6 * min(total * weights[i] / top, views[group])
            # an impression costs about 3/4 of the bid at second price
            per_imp = 0.75 * (f.bid / 1000 if f.rate == "cpm" else f.bid * f.ctr)
            f.budget = max(1.0, round(imps * per_imp, 2))
            repo.update(
                SPECS["flights"],
                who,
                f.id,
                {"daily_cap": {"metric": "spend", "value": f"{f.budget:.2f}"}},
            )
    store.close()
