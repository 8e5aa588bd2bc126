"""`adserver simulate`: replay a synthetic day at an accelerated clock through the real decision
path and see whether budgets are spent as planned.

Everything that runs in production runs here, in one process, on a simulated clock
(adserver/clock.py): the decision workers' Starlette app (POST /api/v2, the /i.gif, /r and
/v1/conversions beacons, called in-process over ASGI), their event logs with group commit,
the aggregator, the cap projection and the pacing controller (adserver/control/pacing.py),
and each worker's view of the live state. Only the shoppers are synthetic:

- a storefront network with home, search, category and product pages; each page view asks
  for its placements (banners, native cards, sponsored-product slots for 2 or 4 winners);
- request volume follows a diurnal curve (TRAFFIC, deliberately not the controller's
  default); the controller's forecast learns it from `history_days` of logged requests;
- flights compete in second-price auctions (with a reserve price) for the slots of one zone
  and ad type, with different bids (CPM and CPC), pacing modes and daily spend caps: in each
  group the lowest bidders (`under_share` of the flights) want three times what the others
  leave them (under-supplied); the others together want 60 % of the group's slots;
- impressions render with probability 0.95, clicks and purchases happen at ground-truth
  rates: each flight's base CTR times how much its audience likes this shopper (one of six
  interests is the flight's; a shopper holds one or two, sent as user segments), this
  device (a per-flight affinity for mobile, desktop or tablet; the shopper's User-Agent
  says which) and this hour (evenings click more): signal a CTR model can learn.

With `days` > 1 the same day repeats on the same clock, workers, ledger and controller (which
learns from the days before what each flight can win per hour); the report is the last day's.

The report per flight: budget utilization, overspend, slot deviation Ω (the root mean square
over the day's 24 hourly slots of actual minus planned spend, divided by the mean planned
slot), and when its budget ran out. The summary checks the targets: overspend <= 1 % for every
flight, utilization >= 98 % where supply allows, median Ω <= 5 % over paced flights whose
supply allows, and no even-paced flight exhausting before 90 % of the day.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import math
import os
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import msgspec
import numpy as np

from adserver import clock, simreport
from adserver.config import Config
from adserver.simtruth import (  # noqa: F401  (re-exported: the world's truth)
    CTR,
    CVR,
    DEVICE_SHARE,
    DEVICE_SIGMA,
    DEVICE_UA,
    INTERESTS,
    TRAFFIC,
    shopper_traits,
    true_ctr,
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
    zones = {z: make("zones", site_id=site, name=z, page_type=z)
             for z in ("home", "search", "category", "product")}
    types = {"banner": make("ad_types", network_id=net, name="Leaderboard", format="display",
                            width=728, height=90),
             "native": make("ad_types", network_id=net, name="Native card", format="native"),
             "sponsored": make("ad_types", network_id=net, name="Sponsored product",
                               format="sponsored_product")}
    channel = make("channels", network_id=net, name="All", site_ids=[site])
    # a reserve price, so that a flight alone in an auction pays something
    prio = make("priorities", channel_id=channel, name="Auction", tier=1, floor_cpm="0.80",
                floor_cpc="0.10")
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
                "campaign_id": camp, "priority_id": prio, "name": f"F{i:03d} {zone} {ad_type}",
                "start": "2026-01-01T00:00:00Z", "rate_type": rate, "price": bid,
                "pacing": mode, "zone_ids": [zones[zone]],
                "daily_cap": {"metric": "spend", "value": 1000000}}
            if mode == "custom":
                body["pacing_curve"] = BUSINESS_HOURS
            fid = make("flights", **body)
            product = f"sku-{i:05d}"
            kind = {"banner": "image", "native": "native", "sponsored": "product"}[ad_type]
            creative = make("creatives", advertiser_id=adv, ad_type_id=types[ad_type],
                            name=f"C{i:03d}", kind=kind, status="approved",
                            image_url="https://img.shop.example/a.png",
                            title=f"Product {i}", click_url="https://shop.example/p",
                            **({"product_id": product} if kind == "product" else {}))
            make("ads", flight_id=fid, creative_id=creative,
                 **({"product_id": product} if kind == "product" else {}))
            lift = rng.lognormal(0.0, DEVICE_SIGMA, size=len(DEVICE_UA))
            lift /= sum(lift[j] * DEVICE_SHARE[d] for j, d in enumerate(DEVICE_UA))
            flights.append(SimFlight(id=fid, group=group, mode=mode, rate=rate, bid=bid,
                                     ctr=float(rng.uniform(*CTR[ad_type])), under=False,
                                     interest=int(rng.integers(0, len(INTERESTS))),
                                     device_lift=dict(zip(DEVICE_UA, lift.tolist()))))
            i += 1
    store.close()
    return {"network": net, "site": site, "zones": zones, "types": types, "flights": flights}


def seed_history(data_dir: str, world: dict[str, Any], s: Settings, day0: float,
                 rng: np.random.Generator) -> None:
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
                rows.append((hour.strftime("%Y-%m-%dT%H"), world["network"], world["site"],
                             world["zones"][zone], int(n)))
    with store.transaction() as db:
        db.executemany(
            "INSERT INTO stats_hourly (hour, network_id, site_id, zone_id, advertiser_id,"
            " campaign_id, flight_id, ad_id, creative_id, requests) VALUES (?, ?, ?, ?, 0, 0, 0,"
            " 0, 0, ?) ON CONFLICT DO UPDATE SET requests = requests + excluded.requests", rows)
    store.close()


def page_views(world: dict[str, Any], rng: np.random.Generator, n: int
               ) -> list[dict[str, Any]]:
    """`n` decision requests (Kevel request bodies) of pages drawn by their shares."""
    names = list(PAGES)
    p = np.array([PAGES[k][0] for k in names])
    out = []
    for page in rng.choice(names, size=n, p=p).tolist():
        _, zone, placements = PAGES[page]
        shopper = int(rng.integers(0, 50_000))
        _, interests = shopper_traits(shopper)
        body = {"placements": [
            {"divName": div, "networkId": world["network"], "siteId": world["site"],
             "zoneIds": [world["zones"][zone]], "adTypes": [world["types"][t]],
             **({"count": c} if c > 1 else {})} for div, t, c in placements],
            "user": {"key": f"shopper-{shopper:05d}",
                     "segments": [f"interest:{INTERESTS[i]}" for i in interests]}}
        out.append(body)
    return out


def set_budgets(data_dir: str, world: dict[str, Any], s: Settings,
                rng: np.random.Generator) -> None:
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
                s.requests * share * count * RENDER)
            views[(zone, ad_type)] = views.get((zone, ad_type), 0.0) + (
                s.requests * share * RENDER)
    store = Store(data_dir)
    repo = Repository(store)
    who = Principal("simulate", "admin")
    for group, total in slots.items():
        members = sorted((f for f in world["flights"] if f.group == group),
                         key=lambda f: f.bid * (DEFAULT_PRIOR_CTR * 1000 if f.rate == "cpc"
                                                else 1.0))
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
            repo.update(SPECS["flights"], who, f.id,
                        {"daily_cap": {"metric": "spend", "value": f"{f.budget:.2f}"}})
    store.close()


# ---- the day ----------------------------------------------------------------------------

class Asgi:
    """Calls a Starlette app in-process, the way the HTTP server would."""

    def __init__(self, app: Any):
        self.app = app

    async def call(self, method: str, url: str, body: bytes = b"",
                   headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        parts = urlsplit(url)
        sent: list[dict[str, Any]] = []
        chunks = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> dict[str, Any]:
            return chunks.pop() if chunks else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        given = {k.lower(): v for k, v in (headers or {}).items()}
        given.setdefault("user-agent", "Mozilla/5.0 (simulated shopper)")
        hdrs = [(b"host", b"sim")] + [(k.encode(), v.encode()) for k, v in given.items()]
        if body:
            hdrs += [(b"content-type", b"application/json"),
                     (b"content-length", str(len(body)).encode())]
        scope = {"type": "http", "http_version": "1.1", "method": method,
                 "path": parts.path, "raw_path": parts.path.encode(),
                 "query_string": parts.query.encode(), "root_path": "", "scheme": "http",
                 "server": ("sim", 80), "client": ("127.0.0.1", 1), "headers": hdrs,
                 "app": self.app}
        await self.app(scope, receive, send)
        status = sent[0]["status"]
        return status, b"".join(m.get("body", b"") for m in sent[1:])


async def shopper(worker: Asgi, world: dict[str, Any], body: dict[str, Any],
                  by_id: dict[int, SimFlight], rng: np.random.Generator, n: int,
                  errors: list[str]) -> None:
    shopper_n = int(body["user"]["key"].rsplit("-", 1)[1])
    device, _ = shopper_traits(shopper_n)
    status, raw = await worker.call("POST", "/api/v2", msgspec.json.encode(body),
                                    {"user-agent": DEVICE_UA[device]})
    if status != 200:
        errors.append(f"decision {status}: {raw[:200]!r}")
        return
    decisions = msgspec.json.decode(raw)["decisions"]
    for div in decisions.values():
        for d in (div if isinstance(div, list) else [div] if div else []):
            if rng.random() >= RENDER:
                continue
            status, _ = await worker.call("GET", d["impressionUrl"])
            if status != 200:
                errors.append(f"impression {status}")
                continue
            f = by_id[d["flightId"]]
            hour = int((clock.now() % 86400) // 3600)
            if rng.random() < true_ctr(f, shopper_n, hour):
                status, _ = await worker.call("GET", d["clickUrl"])
                if status not in (302, 204):
                    errors.append(f"click {status}")
                if rng.random() < CVR:
                    order = {"order_id": f"o-{n}-{d['adId']}", "user_key": body["user"]["key"],
                             "network_id": world["network"],
                             "items": [{"product_id": f"sku-{f.id:05d}", "unit_price": "24.90"}]}
                    status, _ = await worker.call("POST", "/v1/conversions",
                                                  msgspec.json.encode(order),
                                                  {"x-api-key": ADMIN_KEY})
                    if status != 202:
                        errors.append(f"conversion {status}")


async def run_day(data_dir: str, world: dict[str, Any], s: Settings, day0: float,
                  rng: np.random.Generator) -> dict[str, Any]:
    from adserver.control.aggregator import Aggregator
    from adserver.control.caps import LiveProjector
    from adserver.control.compiler import compile_snapshot
    from adserver.control.pacing import Pacer
    from adserver.control.store import Store
    from adserver.serving import app as app_mod
    from adserver.serving.worker import Worker
    from adserver.signing import ensure_keys

    ensure_keys(data_dir, day0 - 86400)
    sim = SimClock(day0)
    clock.use(sim.now)
    store = Store(data_dir)
    compile_snapshot(store, data_dir)
    config = Config(data_dir=data_dir, admin_key=ADMIN_KEY, public_url="http://sim",
                    workers=s.workers)
    aggregator = Aggregator(store, data_dir)
    live = LiveProjector(store, data_dir)
    pacer = Pacer(store, live.env, s.workers, interval=s.interval)
    by_id = {f.id: f for f in world["flights"]}
    workers = [Worker(config, f"sim{w}") for w in range(s.workers)]
    apps = [app_mod.build(config, w) for w in workers]
    errors: list[str] = []
    stats: dict[str, Any] = {"page_views": 0, "steps": 0, "wall_s": 0.0}
    started = time.monotonic()
    for w in workers:
        w.live = live.env  # one process: the workers read live.lmdb through the writer's handle
    lifespans = contextlib.AsyncExitStack()
    try:
        for a in apps:
            await lifespans.enter_async_context(a.app.router.lifespan_context(a.app))
        clients = [Asgi(a) for a in apps]
        per_day = int(86400 / s.interval)
        steps = per_day * s.days
        n = 0
        start = day0  # of the day being simulated
        for step in range(steps):
            t0 = day0 + step * s.interval
            sim.t = t0
            if step and step % per_day == 0:  # another day: only the last one is reported
                start, n = day0 + (step // per_day) * 86400.0, 0
                for f in world["flights"]:
                    f.throttles, f.exhausted_at = [], None
            # the control plane: count what the logs hold, project caps, pace
            for w in workers:
                if w.records is not None:
                    w.records.flush()
            while aggregator.run_once() is not None:
                pass
            live.caps(None, t0)
            status = pacer.step(t0)
            for w in workers:
                w._read_live()
            for fid, st in status.items():
                f = by_id[fid]
                f.throttles.append(st.throttle)
                # out of budget: paused at the cap, or less than one more decision left
                one = f.bid / 1000 if f.rate == "cpm" else f.bid
                if f.exhausted_at is None and (fid in live.paused
                                               or st.actual >= f.budget - one):
                    f.exhausted_at = (t0 - start) / 3600
            # the shoppers of this interval, in small concurrent batches
            hour = int((t0 - start) // 3600)
            want = rng.poisson(s.requests * TRAFFIC[hour] * s.interval / 3600)
            views = page_views(world, rng, int(want))
            for b in range(0, len(views), 64):
                batch = views[b:b + 64]
                sim.t = t0 + s.interval * b / max(1, len(views))
                await asyncio.gather(*(shopper(clients[int(rng.integers(0, len(clients)))],
                                               world, body, by_id, rng, n + j, errors)
                                       for j, body in enumerate(batch)))
                n += len(batch)
            stats["steps"] += 1
            if s.progress and step % max(1, per_day // 24) == 0:
                print(f"simulate: day {step // per_day + 1} {hour:02d}:00  {n:,} page views"
                      f"  {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
        sim.t = start + 86400 - 1
        for w in workers:
            if w.records is not None:
                w.records.flush()
        while aggregator.run_once() is not None:
            pass
        final = pacer.step(start + 86400 - 1)
        stats["page_views"] = n
    finally:
        await lifespans.aclose()
        clock.use(None)
    stats["wall_s"] = round(time.monotonic() - started, 1)
    stats["errors"] = errors[:20]
    stats["error_count"] = len(errors)
    stats["plans"] = {fid: st.hourly_plan for fid, st in final.items()}
    stats["day_plans"] = {fid: st.day_hourly_plan for fid, st in final.items()}
    spent = _hourly_spend(store, start)
    stats["over_cap"] = {fid: float(v.sum()) for fid, v in
                         _hourly_spend(store, start, "over_cap_nanos").items()}
    store.close()
    stats["spent"] = spent
    return stats


def _hourly_spend(store: Any, day0: float, column: str = "spend_nanos"
                  ) -> dict[int, np.ndarray]:
    first = dt.datetime.fromtimestamp(day0, dt.UTC)
    out: dict[int, np.ndarray] = {}
    for hour, fid, nanos in store.read(
            f"SELECT hour, flight_id, SUM({column}) FROM stats_hourly WHERE flight_id != 0"
            " AND hour >= ? AND hour < ? GROUP BY hour, flight_id",
            (first.strftime("%Y-%m-%dT%H"),
             (first + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H"))):
        h = int((dt.datetime.strptime(hour, "%Y-%m-%dT%H").replace(tzinfo=dt.UTC)
                 - first).total_seconds() // 3600)
        out.setdefault(fid, np.zeros(24))[h] += nanos / 1e9
    return out


def simulate(data_dir: str, s: Settings) -> dict[str, Any]:
    if os.path.exists(os.path.join(data_dir, "control.sqlite3")):
        raise SystemExit(f"adserver simulate: {data_dir} already holds a store; "
                         "give an empty --data-dir")
    os.makedirs(data_dir, exist_ok=True)
    rng = np.random.default_rng(s.seed)
    day0 = dt.datetime.fromisoformat(s.date).replace(tzinfo=dt.UTC).timestamp()
    world = build_world(data_dir, s, rng)
    seed_history(data_dir, world, s, day0, rng)
    set_budgets(data_dir, world, s, rng)
    stats = asyncio.run(run_day(data_dir, world, s, day0, rng))
    result = simreport.report(world, stats, dataclasses.asdict(s))
    if s.report:
        with open(s.report, "w") as out:
            json.dump(result, out, indent=1)
    if s.plot:
        simreport.plot(stats, result, s.plot)
    return result
