"""The pacing controller over a real control store and a real live.lmdb: plans, throttles
moving the right way in bounded steps, hard-cap allowances, and what a worker reads."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adserver.control import caps, pacing, plans
from adserver.control.auth import Principal
from adserver.control.repo import Repository
from adserver.control.schema import SPECS
from adserver.control.store import Store
from adserver.formats import livestate
from adserver.serving.live import LiveView
from adserver.snapshot.loader import load_current

ADMIN = Principal("test", "admin")
# a Wednesday, 00:00 in UTC (the test network's time zone)
MIDNIGHT = dt.datetime(2026, 11, 25, tzinfo=dt.UTC).timestamp()


class World:
    """A network with capped flights; delivery is written straight into the ledger."""

    def __init__(self, root: str):
        self.root = root
        self.store = Store(root)
        self.repo = Repository(self.store)
        self.env = livestate.open_writer(root)
        net = self.make("networks", name="Pace", time_zone="UTC")
        site = self.make("sites", network_id=net, name="Web")
        self.zone = self.make("zones", site_id=site, name="home")
        self.site = site
        self.net = net
        channel = self.make("channels", network_id=net, name="All", site_ids=[site])
        self.prio = self.make("priorities", channel_id=channel, name="Auction", tier=2)
        adv = self.make("advertisers", network_id=net, name="Acme")
        self.campaign = self.make("campaigns", advertiser_id=adv, name="C")
        self.pacer = pacing.Pacer(self.store, self.env, workers=2)

    def make(self, table: str, **body: Any) -> int:
        return self.repo.create(SPECS[table], ADMIN, body).id  # type: ignore[attr-defined]

    def flight(self, **extra: Any) -> int:
        body = {
            "campaign_id": self.campaign,
            "priority_id": self.prio,
            "name": "F",
            "start": "2026-01-01T00:00:00Z",
            "rate_type": "cpm",
            "price": 2,
            "daily_cap": {"metric": "spend", "value": 100},
            **extra,
        }
        return self.make("flights", **body)

    def deliver(self, flight: int, at: float, spend: float = 0.0, imps: int = 0) -> None:
        hour = dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%dT%H")
        with self.store.transaction() as db:
            db.execute(
                "INSERT INTO stats_hourly (hour, network_id, site_id, zone_id, advertiser_id,"
                " campaign_id, flight_id, ad_id, creative_id, impressions, spend_nanos)"
                " VALUES (?, ?, 0, 0, 0, 0, ?, 0, 0, ?, ?)"
                " ON CONFLICT DO UPDATE SET impressions = impressions + excluded.impressions,"
                " spend_nanos = spend_nanos + excluded.spend_nanos",
                (hour, self.net, flight, imps, int(round(spend * 1e9))),
            )

    def requests(self, at: float, n: int) -> None:
        hour = dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%dT%H")
        with self.store.transaction() as db:
            db.execute(
                "INSERT INTO stats_hourly (hour, network_id, site_id, zone_id, advertiser_id,"
                " campaign_id, flight_id, ad_id, creative_id, requests)"
                " VALUES (?, ?, ?, ?, 0, 0, 0, 0, 0, ?)",
                (hour, self.net, self.site, self.zone, n),
            )


@pytest.fixture
def world(tmp_path: Any) -> World:
    w = World(str(tmp_path))
    yield w
    w.store.close()


def test_even_plan_follows_the_default_curve_and_the_flight_dates() -> None:
    w = plans.hour_weights("even", pacing.DEFAULT_DIURNAL, [], np.ones(24))
    at = [
        plans.planned_fraction(w, MIDNIGHT, MIDNIGHT + h * 3600, 0, np.inf, "even")
        for h in range(25)
    ]
    assert at[0] == 0.0 and at[24] == pytest.approx(1.0)
    assert all(b >= a for a, b in zip(at, at[1:]))
    assert at[12] == pytest.approx(float(pacing.DEFAULT_DIURNAL[:12].sum()))
    # a flight that starts at noon plans the whole goal into the afternoon
    noon = MIDNIGHT + 12 * 3600
    assert plans.planned_fraction(w, MIDNIGHT, noon, noon, np.inf, "even") == 0.0
    assert plans.planned_fraction(
        w, MIDNIGHT, MIDNIGHT + 86400, noon, np.inf, "even"
    ) == pytest.approx(1.0)
    front = plans.planned_fraction(w, MIDNIGHT, noon, 0, np.inf, "front_loaded")
    assert front > at[12] and front == pytest.approx(1 - (1 - at[12]) ** 2)


def test_custom_curve_and_dayparts_shape_the_plan() -> None:
    curve = [0.0] * 24
    curve[9] = curve[10] = 1.0  # everything between 9:00 and 11:00
    w = plans.hour_weights("custom", pacing.DEFAULT_DIURNAL, curve, np.ones(24))
    assert plans.planned_fraction(
        w, MIDNIGHT, MIDNIGHT + 9.5 * 3600, 0, np.inf, "custom"
    ) == pytest.approx(0.25)
    allowed = np.zeros(24)
    allowed[18:22] = 1  # dayparted to the evening: an even plan waits for it
    w = plans.hour_weights("even", pacing.DEFAULT_DIURNAL, [], allowed)
    assert plans.planned_fraction(w, MIDNIGHT, MIDNIGHT + 18 * 3600, 0, np.inf, "even") == 0.0


def test_behind_plan_speeds_up_ahead_of_plan_slows_down(world: World) -> None:
    slow, fast = world.flight(name="under"), world.flight(name="over")
    t = MIDNIGHT + 10 * 3600
    w = plans.hour_weights("even", pacing.DEFAULT_DIURNAL, [], np.ones(24))
    plan = 100 * plans.planned_fraction(w, MIDNIGHT, t, 0, np.inf, "even")
    for flight, share in ((slow, 0.2), (fast, 2.0)):  # 20 % and 200 % of the plan so far
        world.deliver(flight, t - 60, spend=plan * share)
    first = world.pacer.step(t)  # the controller starts from full throttle
    assert first[slow].plan == pytest.approx(plan)
    assert first[fast].throttle == 1 - pacing.STEP_DOWN  # ahead: one step down
    history: dict[int, list[float]] = {slow: [], fast: [first[fast].throttle]}
    for i in range(1, 12):
        now = t + i * pacing.INTERVAL_S
        for flight, share in ((slow, 0.2), (fast, 2.0)):
            # delivery at full throttle: 0.2 and 2 times the planned rate
            rate = share * plan / (10 * 3600)
            world.deliver(
                flight, now, spend=rate * pacing.INTERVAL_S * world.pacer.state[flight].throttle
            )
        status = world.pacer.step(now)
        for flight in history:
            history[flight].append(status[flight].throttle)
    assert history[slow][-1] == 1.0  # under-supplied: enters every auction it can
    assert history[fast][-1] < 0.5  # over-supplied and ahead: held back
    for before, after in zip(history[fast], history[fast][1:]):
        assert after >= before * (1 - pacing.STEP_DOWN) - 1e-12  # bounded steps
    with world.env.begin() as txn:
        written = dict(livestate.decode(txn.get(livestate.THROTTLE)))
    assert slow not in written and written[fast] == pytest.approx(history[fast][-1], abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(0, 50), min_size=1, max_size=30),
    st.sampled_from(["even", "front_loaded", "asap"]),
)
def test_throttles_stay_within_bounds(
    tmp_path_factory: Any, deliveries: list[float], mode: str
) -> None:
    w = World(str(tmp_path_factory.mktemp("pace")))
    try:
        fid = w.flight(pacing=mode)
        previous = 1.0
        for i, spend in enumerate(deliveries):
            now = MIDNIGHT + 8 * 3600 + i * pacing.INTERVAL_S
            w.deliver(fid, now, spend=spend)
            p = w.pacer.step(now)[fid].throttle
            assert 0.0 <= p <= 1.0
            assert p >= previous * (1 - pacing.STEP_DOWN) - 1e-12
            assert p <= previous * (1 + pacing.STEP_UP) + pacing.STEP_MIN + 1e-12
            if mode == "asap":
                assert p == 1.0
            previous = p
    finally:
        w.store.close()


def test_allowances_only_near_the_cap_and_never_above_the_remainder(world: World) -> None:
    fid = world.flight(daily_cap={"metric": "spend", "value": 100})  # 2.00 CPM
    t = MIDNIGHT + 15 * 3600
    world.pacer.step(t)
    assert world.pacer.status[fid].allowance is None  # far from the cap
    world.deliver(fid, t, spend=99.5)  # 0.50 left: within 3 allowances per worker
    world.pacer.step(t + 2)
    with world.env.begin() as txn:
        grants = livestate.decode(txn.get(livestate.GRANTS))
    ((gid, allowance, cost, lead),) = grants["flights"]
    size = int(100e9 * caps.ALLOWANCE_SHARE)  # 0.20 in nano-units
    assert gid == fid and cost == 2_000_000  # one impression of a 2.00 CPM, in nanos
    assert allowance == lead == min(size, int(0.5e9) // 2)
    world.deliver(fid, t, spend=0.5)  # at the cap: nothing more is granted
    world.pacer.step(t + 4)
    with world.env.begin() as txn:
        assert livestate.decode(txn.get(livestate.GRANTS))["flights"] == [[fid, 0, cost, 0]]


def test_a_click_dearer_than_the_split_goes_to_a_lead_worker(world: World) -> None:
    fid = world.flight(rate_type="cpc", price=1, daily_cap={"metric": "spend", "value": 100})
    t = MIDNIGHT + 15 * 3600
    world.deliver(fid, t, spend=98.5)  # 1.50 left: less than a click per worker
    world.pacer.step(t)
    with world.env.begin() as txn:
        grants = livestate.decode(txn.get(livestate.GRANTS))
    assert grants["flights"] == [[fid, 750_000_000, 1_000_000_000, 1_000_000_000]]
    assert grants["lead"] == grants["n"] % 2  # the lead rotates with the grant number
    world.deliver(fid, t, spend=1.4)  # 0.10 left: the lead still gets it, up to a click
    world.pacer.step(t + 2)
    with world.env.begin() as txn:
        grants = livestate.decode(txn.get(livestate.GRANTS))
    assert grants["flights"] == [[fid, 50_000_000, 1_000_000_000, 100_000_000]]


def test_pacing_status_has_the_plan_and_the_forecast_learns(world: World) -> None:
    fid = world.flight(daily_cap={"metric": "impressions", "value": 24000})
    t = MIDNIGHT + 12 * 3600
    assert world.pacer.step(t)[fid].forecast_trust == 0.0
    # a week of flat traffic: the learned curve replaces the default
    for h in range(1, 24 * 8):
        world.requests(MIDNIGHT - h * 3600, 100)
    world.pacer.forecast.loaded_at = -np.inf
    st_ = world.pacer.step(t + 2)[fid]
    assert st_.forecast_trust == 1.0 and st_.metric == "impressions"
    assert st_.goal == 24000 and st_.day_plan == pytest.approx(12000, rel=0.01)  # flat: half
    # the hours up to noon were planned at the first step, on the default curve
    assert st_.hourly_plan[5] == pytest.approx(24000 * pacing.DEFAULT_DIURNAL[:6].sum())
    # nothing delivered at full throttle: the plan in force re-based on what was delivered,
    # the whole goal ahead along the learned (flat) curve from noon (2,000 an hour)...
    assert st_.plan == 0.0
    assert st_.hourly_plan[13] - st_.hourly_plan[12] == pytest.approx(24000 / 12, rel=1e-3)
    # ...but the plan as a whole never asks for more than the cap: the hours gone by keep
    # what they were asked, so the last hours give way
    assert st_.hourly_plan[-1] == pytest.approx(24000)
    assert max(st_.hourly_plan) <= 24000 and st_.hourly_plan == sorted(st_.hourly_plan)


def test_shortfall_at_full_throttle_is_spread_not_chased(world: World) -> None:
    """Behind plan at full throttle (the supply fell short, not the controller): the plan
    re-bases on what was delivered and spreads the rest over the remaining day, so the
    flight does not burst when supply returns; hours gone by keep what was asked of them.
    Behind while held back, the plan stays and the throttle rises to catch up."""
    starved, held = world.flight(name="starved"), world.flight(name="held")
    w = plans.hour_weights("even", pacing.DEFAULT_DIURNAL, [], np.ones(24))

    def day(t: float) -> float:
        return plans.planned_fraction(w, MIDNIGHT, t, 0, np.inf, "even")

    t0 = MIDNIGHT + 2 * 3600
    world.pacer.step(t0)  # both start at full throttle, on plan (nothing planned at 0 h)
    world.pacer.state[held].throttle = 0.2
    t = MIDNIGHT + 8 * 3600  # six hours on: neither delivered anything
    status = world.pacer.step(t)
    s = status[starved]
    assert s.day_plan == pytest.approx(100 * day(t))
    assert s.plan == 0.0  # re-based: nothing is owed for the hours gone by ...
    # ... which keep what the plan asked of them, as does the hour just begun
    hour = 3600.0
    assert s.hourly_plan[8] == pytest.approx(100 * day(t + hour))
    # the whole goal follows the rest of the curve from 8 h, from the next hour on...
    assert s.hourly_plan[13] - s.hourly_plan[8] == pytest.approx(
        100 * (day(t + 6 * hour) - day(t + hour)) / (1 - day(t))
    )
    # ...until the plan reaches the cap: never above it
    assert s.hourly_plan[-1] == pytest.approx(
        min(100.0, s.hourly_plan[8] + 100 * (1 - day(t + hour)) / (1 - day(t)))
    )
    assert max(s.hourly_plan) <= 100.0
    h = status[held]  # throttled when it fell behind: owes the day's plan, speeds up
    assert h.plan == pytest.approx(100 * day(t)) and h.throttle > 0.2


def test_an_hour_after_one_short_of_supply_asks_what_supply_delivers(world: World) -> None:
    """A flight at full throttle whose supply is clearly short of an hour's ask has that hour
    planned at what its supply estimate delivers at full throttle (nothing, when it won
    nothing), not at the day's curve. Not capped: the hour it was first found short in (no
    evidence yet), a flight held back by its throttle (its low delivery is the controller's
    doing: too little exposure to tell), and a CPC flight whose hour asks less than a few clicks (no click in an hour is
    not evidence)."""
    starved, half = world.flight(name="starved"), world.flight(name="half")
    held = world.flight(name="held")
    clicks = world.flight(name="clicks", rate_type="cpc", price=1)
    level = 24.0 * pacing.DEFAULT_DIURNAL
    t = MIDNIGHT + 2 * 3600
    world.deliver(held, t - 1800, spend=30.0)  # far ahead of its plan before the first step
    for _ in range(2 * 60 + 1):  # 2:00 to 4:00, a step a minute
        world.pacer.step(t)
        # `half` delivers half of what the day's plan asks of these hours, per unit of traffic
        world.deliver(
            half,
            t,
            spend=0.5
            * 100
            * pacing.DEFAULT_DIURNAL[2]
            / 60
            * level[int((t - MIDNIGHT) // 3600)]
            / level[2],
        )
        t += 60
    status = world.pacer.step(t)

    def slots(fid: int) -> np.ndarray:
        return np.diff([0.0] + status[fid].hourly_plan)

    asked = 100 * pacing.DEFAULT_DIURNAL
    s = slots(starved)
    assert s[2] == pytest.approx(asked[2])  # first found short
    assert s[3] == 0.0 and s[4] == 0.0  # won nothing at full throttle for an hour
    assert s[5] > asked[5]  # later hours carry the goal
    assert status[starved].throttle == 1.0
    h = slots(half)
    assert h[3] == pytest.approx(0.5 * asked[3], rel=0.05)
    assert h[4] == pytest.approx(0.5 * asked[4], rel=0.05)
    assert status[half].day_plan == pytest.approx(asked[:4].sum(), rel=0.02)
    assert status[held].throttle < 0.1 and slots(held)[3] > 0.0 and slots(held)[4] > 0.0
    c = slots(clicks)
    assert status[clicks].throttle == 1.0 and c[3] > 0.0 and c[4] > 0.0


def test_the_next_days_plan_follows_the_supply_the_flight_could_win(world: World) -> None:
    """A flight that won nothing at full throttle before 8:00 (higher bidders took the
    night) is planned, the next day, to deliver its goal where it can win: (almost) nothing
    before 8:00; a flight that could win all day keeps the traffic curve. Custom curves are
    the advertiser's own and stay as they are."""
    blocked, open_, custom = (
        world.flight(name="blocked"),
        world.flight(name="open"),
        world.flight(name="custom", pacing="custom", pacing_curve=[1.0] * 24),
    )
    supply = 2 * 100 / 86400  # spend per second at full throttle and mean traffic: twice
    t, status = MIDNIGHT, {}  # what a day's goal needs
    while t < MIDNIGHT + 86400:  # day one: every 5 minutes, deliver what the throttle lets in
        status = world.pacer.step(t)
        level = 24 * pacing.DEFAULT_DIURNAL[int((t - MIDNIGHT) // 3600)]
        for fid in (blocked, open_, custom):
            if fid != blocked or t >= MIDNIGHT + 8 * 3600:
                world.deliver(fid, t, spend=status[fid].throttle * 300 * level * supply)
        t += 300
    day2 = world.pacer.step(MIDNIGHT + 86400 + 1)
    b = np.diff([0.0] + day2[blocked].day_hourly_plan)
    o = np.diff([0.0] + day2[open_].day_hourly_plan)
    assert b[:8].sum() < 0.01 * 100 and b.sum() == pytest.approx(100)
    assert b[8:] == pytest.approx(
        100 * pacing.DEFAULT_DIURNAL[8:] / pacing.DEFAULT_DIURNAL[8:].sum(), rel=0.02
    )
    assert o == pytest.approx(100 * pacing.DEFAULT_DIURNAL, rel=0.02)
    assert np.diff([0.0] + day2[custom].day_hourly_plan) == pytest.approx([100 / 24] * 24)
    assert world.pacer.state[blocked].winnable[:8].max() < 0.05


def test_worker_view_applies_throttles_and_spends_its_allowance(
    world: World, tmp_path: Any
) -> None:
    from adserver.control.compiler import compile_snapshot

    fid = world.flight()
    creative = world.make(
        "creatives",
        advertiser_id=world.repo.get(SPECS["campaigns"], ADMIN, world.campaign).advertiser_id,  # type: ignore[attr-defined]
        ad_type_id=world.make(
            "ad_types", network_id=world.net, name="MPU", format="display", width=300, height=250
        ),
        name="B",
        kind="image",
        image_url="https://img.example/b.png",
        status="approved",
    )
    world.make("ads", flight_id=fid, creative_id=creative)
    compile_snapshot(world.store, world.root)
    snap = load_current(world.root)
    assert snap is not None
    row = snap.columns["fl_id"].tolist().index(fid)
    with world.env.begin(write=True) as txn:
        txn.put(livestate.THROTTLE, livestate.encode([[fid, 0.25]]))
        txn.put(
            livestate.GRANTS, livestate.encode({"n": 7, "lead": 1, "flights": [[fid, 5, 2, 5]]})
        )
    view = LiveView()
    reader = world.env  # one process: the writer handle reads too (a worker opens read-only)
    view.refresh(reader, snap)
    assert view.throttle[row] == 0.25 and view.paused.shape[0] == 0
    view.charge([fid])  # 5 - 2 = 3 left
    view.charge([fid])  # 1 left: one more decision may spend it (billing stops at the cap)
    assert view.paused.shape[0] == 0
    view.charge([fid])  # nothing left: paused until the next grant
    assert view.paused[row] == 1
    view.refresh(reader, snap)  # the same grant: still paused
    assert view.paused[row] == 1
    with world.env.begin(write=True) as txn:
        txn.put(
            livestate.GRANTS, livestate.encode({"n": 8, "lead": 0, "flights": [[fid, 1, 2, 3]]})
        )
    view.refresh(reader, snap)  # this worker (0) leads: it gets the lead allowance
    assert view.paused.shape[0] == 0 and view.left[fid] == [3, 2]
    other = LiveView(1)
    other.refresh(reader, snap)
    assert other.left[fid] == [1, 2] and other.paused.shape[0] == 0
    other.charge([fid])
    assert other.paused[row] == 1
    with world.env.begin(write=True) as txn:
        txn.put(
            livestate.GRANTS, livestate.encode({"n": 9, "lead": 0, "flights": [[fid, 0, 2, 0]]})
        )
    view.refresh(reader, snap)  # at the cap: nothing granted, paused from the start
    assert view.paused[row] == 1


def test_billing_stops_at_a_spend_cap(world: World) -> None:
    """The aggregator bills the event that crosses a cap what remained, later ones nothing,
    and keeps what was delivered over the cap apart (real segment log, real aggregator)."""
    from adserver.control.aggregator import Aggregator
    from adserver.formats.segment import SegmentWriter

    fid = world.flight(daily_cap={"metric": "spend", "value": "0.010"})  # 2.00 CPM
    log = SegmentWriter(f"{world.root}/events/w0", "events")
    t = MIDNIGHT + 9 * 3600
    for i in range(7):  # 7 impressions x 0.002 = 0.014 delivered
        log.append(
            {
                "t": "imp",
                "id": f"i:r{i}:1",
                "ts": t + i,
                "ev": 1,
                "bot": False,
                "req": f"r{i}",
                "ad": 1,
                "flight": fid,
                "creative": 1,
                "campaign": 1,
                "advertiser": 1,
                "div": "d",
                "price": 2_000_000,
                "rate": 1,
                "user": f"u{i}",
                "botf": 0,
                "site": world.site,
                "zone": world.zone,
                "network": world.net,
            }
        )
    log.close()
    aggregator = Aggregator(world.store, world.root)
    while aggregator.run_once() is not None:
        pass
    spend, over, imps = world.store.read(
        "SELECT SUM(spend_nanos), SUM(over_cap_nanos), SUM(impressions) FROM stats_hourly"
        " WHERE flight_id = ?",
        (fid,),
    )[0]
    assert imps == 7 and spend == 10_000_000 and over == 4_000_000
    from adserver.control import reports

    day = dt.datetime.fromtimestamp(MIDNIGHT, dt.UTC)  # the day written, named explicitly
    rows = reports.run(
        world.store,
        ADMIN,
        reports.parse(
            {
                "group_by": "flight",
                "interval": "none",
                "from": day.isoformat(),
                "to": (day + dt.timedelta(days=1)).isoformat(),
            }
        ),
    )
    mine = [r for r in rows if r["flight_id"] == fid]
    assert mine[0]["spend"] == Decimal("0.010000")
    assert mine[0]["delivered_over_cap"] == Decimal("0.004000")
