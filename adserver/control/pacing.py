"""Budget pacing: each capped flight's plan for the day, the traffic forecast it follows, the
throttle controller, and the allowances that make caps hard across workers.

The goal of a flight for today is its daily cap (spend, impressions or clicks), or, for a
lifetime cap with an end date, what remains of it spread evenly over the remaining local days
(the smaller of the two when it has both). The plan says how much of today's goal should be
delivered by each moment of the day:

- even: in proportion to the forecast traffic of the places the flight can serve (its zones,
  else its sites, else its network), over the hours its dayparts and dates allow;
- front_loaded: ahead of even, 1 - (1 - even)^2: half of the goal by the time even has
  delivered 29 %;
- custom: the flight's own 24 hourly weights (`pacing_curve`), in the network's time zone;
- asap: no plan; the flight enters every auction until a cap stops it.

Even and front-loaded plans follow the traffic the flight can win, not all of it: the
controller keeps, per local hour of the day, what the flight delivered per unit of exposure
on the days before (_winnable); an hour where it clearly won less than its usual supply (a
higher bidder takes the night's traffic) gets that much less of the plan, so the goal is
planned where it can be delivered, and the hours it cannot win are not planned to fail.

The curves and the forecast are in adserver/control/plans.py. The controller runs in the
control process every INTERVAL_S. Per paced flight it compares the delivery counted in the
ledger with the plan, estimates what the flight would deliver per second at full throttle,
and sets the throttle (the probability that the flight enters a
request's auctions) so that it is on plan HORIZON_S from now, moving at most one bounded step
per interval. Workers draw once per flight and request (adserver/kernels/targeting_ref.throttle_unit)
and leave bids untouched, so the auction stays honest.

Re-basing. A flight found behind its plan after an interval at full throttle lacked supply
(a competitor with a higher bid took the night's traffic, a CPC flight drew no clicks):
the controller did all it could. Its plan in force then re-bases on what it delivered and
spreads the rest of the goal over what remains of the day's curve, so the shortfall is not
chased in one burst when supply returns; behind while throttled, the plan stays and the
throttle rises. An hour's planned delivery is what the plan in force at its start asked of
it (the slots the status's hourly plan and the simulator's slot deviation compare delivery
with): a re-base moves the hours after it, never one already begun. A flight mostly at full
throttle lately whose supply estimate is clearly short of an hour's ask (short even with a
few more events than it got) is planned no more for that hour than the estimate delivers at
full throttle: the plan is a forecast of delivery, and what the flight could not win in the
last hour or so it is not expected to win in the next. The status's day_plan and
day_hourly_plan keep the day's own plan beside it. The status's hourly plan never passes
the goal: after a re-base the hours gone by keep their asks, so the last hours give way.

Hard caps (what the controller grants each worker near a cap, and the bound on delivery
that follows) are in adserver/control/caps.py.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import numpy as np

from adserver.control import quarantine
from adserver.control.caps import grant, ledger_sums, local_midnight_hour, unit_cost
from adserver.control.paced import PacedFlight, read_flights
from adserver.control.pacing_state import FlightState, Status
from adserver.control.plans import Forecast, at, bend, even_curve, hour_weights, local_day
from adserver.control.quarantine import DATA_ERRORS
from adserver.control.store import Store
from adserver.formats import livestate

# ---- tuning: every knob of pacing, in one place ----------------------------------------
INTERVAL_S = 2.0  # controller period (at least every 10 s); also the allowance interval
HORIZON_S = 120.0  # aim to be on plan this far ahead: catch up or slow down over 2 minutes
STEP_UP = 1.0  # per interval a throttle rises to at most p * (1 + STEP_UP) + STEP_MIN
STEP_DOWN = 0.5  # ... and falls to at least p * (1 - STEP_DOWN)
STEP_MIN = 0.02
SUPPLY_HALF_LIFE_S = 1800.0  # memory of the supply estimate (deliveries per exposure)
LIMITED_THROTTLE = 0.75  # an hour's plan is capped at the supply estimate (see _replan)
SHORT_EVENTS = 3.0  # ... when even this many more events would leave it short
HOURS_DECAY = 0.5  # weight of each earlier day in what a flight could win per hour
FORECAST_DAYS = 28  # logged requests the forecast learns from
FORECAST_REFRESH_S = 600.0
TRUSTED_HOURS = 168  # hours of logged traffic after which the learned curve is fully trusted
# share of a day's requests per local hour before anything is logged: a retail storefront
# (quiet at night, a lunch bump, the evening peak)
DEFAULT_DIURNAL = np.array(
    [
        1.2,
        0.8,
        0.6,
        0.5,
        0.5,
        0.8,
        1.5,
        2.6,
        3.6,
        4.2,
        4.6,
        5.0,
        5.4,
        5.2,
        4.9,
        4.8,
        5.0,
        5.6,
        6.4,
        7.2,
        7.6,
        6.8,
        4.6,
        2.6,
    ]
)
DEFAULT_DIURNAL = DEFAULT_DIURNAL / DEFAULT_DIURNAL.sum()


def _scale(metric: str | None) -> float:
    """Ledger units to the API's: nano-units to currency for spend."""
    return 1e-9 if metric == "spend" else 1.0


# ---- the controller -------------------------------------------------------------------------


def _plan(st: FlightState, goal: float, frac: Any) -> Any:
    """Planned delivery when the day's plan reaches share `frac` (a share, or an array of
    them), under the plan in force: from the delivery it was re-based at, the rest of the goal
    in proportion to what remains of the day's curve (the day's own plan until the first
    re-base; a goal lowered below what was delivered asks no more)."""
    if st.base_frac >= 1.0 or goal <= st.base_actual:
        return st.base_actual + 0.0 * frac
    return st.base_actual + (goal - st.base_actual) * np.maximum(frac - st.base_frac, 0.0) / (
        1.0 - st.base_frac
    )


def _steps(st: FlightState, goal: float, bounds: np.ndarray) -> np.ndarray:
    """What the plan in force asks of each local hour (`bounds`: the day's plan share at
    the 25 hour boundaries)."""
    return np.diff(_plan(st, goal, bounds))


def _hourly(
    st: FlightState, hour: int, goal: float, bounds: np.ndarray, scale: float
) -> list[float]:
    """Cumulative planned delivery at the end of each local hour, times `scale`: what the
    plan in force at its start asked of each hour up to `hour`, the current one (_replan),
    then the plan in force (kept until one of them changes: most steps change none; `bounds`
    is the day's shape, cached, so one object while it holds). Never above the goal: after
    a re-base, hours already asked for what was not delivered, and the plan in force spreads
    the rest of the goal, so the sum would pass it; the last hours give way."""
    key = (hour, goal, st.base_frac, st.base_actual, scale)
    if st.hourly_key != key or st.hourly_bounds is not bounds:
        slots = np.where(np.arange(24) <= hour, st.slots, _steps(st, goal, bounds))
        st.hourly = (np.minimum(np.cumsum(slots), goal) * scale).tolist()
        st.hourly_key = key
        st.hourly_bounds = bounds
    return st.hourly


def _winnable(st: FlightState, unit: float) -> np.ndarray | None:
    """Per local hour, how much of its usual supply (deliveries per unit of exposure over
    the whole day) the flight could win at that hour on the days before, at most 1: near 0
    where higher bidders took the traffic. Optimistic where evidence is thin (SHORT_EVENTS
    more events than were seen), so an hour is discounted only on clear evidence, and 1 where
    there is none (a new flight, a daypart it did not run in). None before a day is seen."""
    delivered, exposure = st.hour_delivered, st.hour_exposure
    total = float(exposure.sum())
    if total <= 0.0 or float(delivered.sum()) <= 0.0:
        return None
    mean = float(delivered.sum()) / total
    seen = exposure > 0.0
    w = np.ones(24)
    w[seen] = np.minimum(1.0, (delivered[seen] + SHORT_EVENTS * unit) / exposure[seen] / mean)
    return w


class Pacer:
    """The controller. Owned by the control process's aggregation thread, which is also the
    only writer of live.lmdb (`env`)."""

    def __init__(
        self,
        store: Store,
        env: Any,
        workers: int = 1,
        data_dir: str | None = None,
        interval: float = INTERVAL_S,
    ):
        self.store = store
        self.interval = interval  # adserver simulate steps on its simulated clock
        self.env = env
        self.workers = max(1, workers)
        self.data_dir = data_dir
        self.forecast = Forecast(FORECAST_DAYS, TRUSTED_HOURS, DEFAULT_DIURNAL)
        self.state: dict[int, FlightState] = {}
        self.status: dict[int, Status] = {}
        self.grant = 0
        self.last_step = -math.inf
        self._flights_version: tuple[Any, ...] = ()
        self._flights_cache: list[PacedFlight] = []
        self._unreadable: set[int] = set()  # flights of the cache's version it could not read
        self._shapes: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        with env.begin() as txn:  # resume the throttles of a previous run
            for fid, p in livestate.decode(txn.get(livestate.THROTTLE)) or []:
                self.state[fid] = FlightState(throttle=float(p))

    def due(self, now: float) -> bool:
        return now - self.last_step >= self.interval

    def _flights(self, now: float) -> list[PacedFlight]:
        """The capped, active flights (re-read only when a flight or network changed)."""
        version = tuple(
            self.store.read(
                "SELECT (SELECT COUNT(*) || ':' || COALESCE(MAX(updated_at), '') FROM flights),"
                " (SELECT COUNT(*) || ':' || COALESCE(MAX(updated_at), '') FROM networks)"
            )[0]
        )
        if version == self._flights_version:
            return [f for f in self._flights_cache if f.end > now - 86400]
        self._flights_version = version
        self._flights_cache, self._unreadable = read_flights(self.store)
        return self._flights_cache

    def _workers(self, now: float) -> int:
        """The configured worker count, or more when more have logged in the last 10 min."""
        n = self.workers
        if self.data_dir:
            root = os.path.join(self.data_dir, "events")
            try:
                active = [
                    d
                    for d in os.listdir(root)
                    if now - os.stat(os.path.join(root, d)).st_mtime < 600
                ]
            except FileNotFoundError:
                active = []
            n = max(n, len(active))
        return n

    def step(self, now: float | None = None) -> dict[int, Status]:
        """One control step: read the ledger, set every paced flight's throttle and the
        hard-cap grants, write them to the live state."""
        now = time.time() if now is None else now
        self.last_step = now
        flights = self._flights(now)
        networks = {r[0]: r[1] for r in self.store.read("SELECT id, time_zone FROM networks")}
        if now - self.forecast.loaded_at > FORECAST_REFRESH_S:
            self.forecast.refresh(self.store, networks, now)
        workers = self._workers(now)
        today = self._delivered_today(flights, now)
        lifetime = self._delivered_lifetime(flights)
        throttles: list[list[Any]] = []
        grants: list[list[Any]] = []
        status: dict[int, Status] = {}
        self.grant += 1
        days = {tz: local_day(tz, now) for tz in {fl.time_zone for fl in flights}}
        throttles += [[fid, 0.0] for fid in sorted(self._unreadable)]  # held back
        for fl in flights:
            try:
                throttle, granted, status[fl.id] = self._step_flight(
                    fl, now, days[fl.time_zone], today, lifetime, workers
                )
            except DATA_ERRORS as e:  # one flight's bad data stops no other's pacing
                quarantine.flight(self.store, fl.id, fl.network_id, e)
                throttles.append([fl.id, 0.0])  # held back: it cannot be paced or capped
                continue
            if throttle is not None:
                throttles.append(throttle)
            if granted is not None:
                grants.append(granted)
        for fid in list(self.state):
            if fid not in status:
                del self.state[fid]
        if len(self._shapes) > 2 * len(flights) + 100:  # old days, forecasts or versions
            self._shapes.clear()
        self.status = status
        with self.env.begin(write=True) as txn:
            txn.put(livestate.THROTTLE, livestate.encode(sorted(throttles)))
            txn.put(
                livestate.GRANTS,
                livestate.encode(
                    {"n": self.grant, "lead": self.grant % workers, "flights": grants}
                ),
            )
        return status

    def _step_flight(
        self,
        fl: PacedFlight,
        now: float,
        day: tuple[float, int],
        today: dict[int, dict[str, int]],
        lifetime: dict[int, dict[str, int]],
        workers: int,
    ) -> tuple[list[Any] | None, list[Any] | None, Status]:
        """One flight's control step: (its throttle entry, its grant entry, its status)."""
        st = self.state.get(fl.id)
        if st is None:
            st = self.state[fl.id] = FlightState()
        midnight, weekday = day
        if st.day != midnight:  # a new local day: the counters and the plan start again
            st.day, st.last_actual, st.last_t = midnight, 0.0, now
            st.base_frac = st.base_actual = st.plan_t = 0.0
            st.slots, st.filled = np.full(24, np.nan), 0
        goal, metric = self._goal(fl, now, midnight, today, lifetime)
        unit = float(unit_cost(metric or "", fl.rate_type, fl.price_micros) or 1)
        if st.learned_day != midnight:  # once a day: what the days before showed
            st.winnable = _winnable(st, unit) if fl.mode in ("even", "front_loaded") else None
            st.hour_delivered *= HOURS_DECAY
            st.hour_exposure *= HOURS_DECAY
            st.learned_day = midnight
        done = today.get(fl.id, {})
        actual = float(done.get(metric, 0)) if metric else 0.0
        key = (fl.id, midnight, self.forecast.loaded_at, self._flights_version)
        shape = self._shapes.get(key)
        if shape is None:  # the day's shape changes with the forecast or the flight only
            traffic, trust = self.forecast.day(fl.network_id, fl.sites, fl.zones, weekday)
            weights = hour_weights(
                fl.mode, traffic, fl.curve, fl.allowed[weekday * 24 : (weekday + 1) * 24]
            )
            if st.winnable is not None:
                weights = weights * st.winnable
            curve = even_curve(weights, midnight, fl.start, fl.end)
            shape = self._shapes[key] = (traffic, trust, curve, bend(curve, fl.mode))
        traffic, trust, curve, bounds = shape
        plan = day_plan = None
        hourly: list[float] = []
        if goal is not None and fl.mode != "asap":
            frac = float(bend(at(curve, midnight, now, fl.start, fl.end), fl.mode))
            ahead = float(
                bend(
                    at(curve, midnight, now + max(HORIZON_S, 2 * self.interval), fl.start, fl.end),
                    fl.mode,
                )
            )
            hour = min(23, int((now - midnight) // 3600))
            level = 24.0 * float(traffic[hour]) * float(fl.allowed[weekday * 24 + hour])
            plan = self._replan(st, now, hour, actual, goal, frac, bounds, level, unit)
            day_plan = goal * frac
            st.throttle = self._control(st, now, actual, float(_plan(st, goal, ahead)), level, hour)
            hourly = _hourly(st, hour, goal, bounds, _scale(metric))
        else:
            st.throttle = 1.0
            st.last_actual, st.last_t = actual, now
        throttle = [fl.id, round(st.throttle, 6)] if st.throttle < 1.0 else None
        allowance = grant(
            fl.id,
            fl.rate_type,
            fl.price_micros,
            ((fl.daily, today), (fl.lifetime, lifetime)),
            workers,
        )
        granted = None if allowance is None else [fl.id, allowance[0], allowance[1], allowance[3]]
        scale = _scale(metric)
        life_metric = fl.lifetime[0] if fl.lifetime else "spend"
        return (
            throttle,
            granted,
            Status(
                flight_id=fl.id,
                mode=fl.mode,
                metric=metric,
                goal=None if goal is None else goal * scale,
                plan=None if plan is None else plan * scale,
                actual=actual * scale,
                throttle=st.throttle,
                allowance=None if allowance is None else allowance[0] * _scale(allowance[2]),
                lifetime_delivered=float(lifetime.get(fl.id, {}).get(life_metric, 0))
                * _scale(life_metric),
                updated_at=now,
                day_start=midnight,
                hourly_plan=hourly,
                forecast_trust=trust,
                day_plan=None if day_plan is None else day_plan * scale,
                day_bounds=None if plan is None else bounds,
            ),
        )

    def _replan(
        self,
        st: FlightState,
        now: float,
        hour: int,
        actual: float,
        goal: float,
        frac: float,
        bounds: np.ndarray,
        level: float,
        unit: float,
    ) -> float:
        """The plan for `now` (`frac`: the day's plan share now; `bounds`: at the 25 hour
        boundaries; `level`: the forecast's traffic level this hour, 1 = the day's mean;
        `unit`: what one event adds to the goal's metric, at most).

        An hour's planned delivery is fixed at its first step, by the plan in force then
        (the slots the status's hourly plan and the simulator's slot deviation compare
        delivery with), and no more than the flight's supply delivers: when it was at full
        throttle most of the time lately (LIMITED_THROTTLE of its exposure) and its supply
        estimate falls short of the hour's ask even with SHORT_EVENTS more events (a
        competitor with a higher bid takes the night's traffic; not an unlucky hour), the
        hour asks what the estimate delivers at full throttle. Then, when the flight fell
        behind at full throttle (its supply fell short, not the controller), the plan
        re-bases on what was delivered and spreads the rest of the goal over the rest of the
        day's curve: the next hours carry the shortfall, none chases it in one burst."""
        plan = float(_plan(st, goal, frac))
        if st.filled <= hour:
            steps = _steps(st, goal, bounds)
            if st.exposure > 0.0 and st.exposure >= LIMITED_THROTTLE * st.reach:
                per_hour = level * 3600.0 / st.exposure
                if (st.delivered + SHORT_EVENTS * unit) * per_hour < steps[hour]:
                    steps[hour] = st.delivered * per_hour
            st.slots[st.filled : hour + 1] = steps[st.filled : hour + 1]
            st.filled = hour + 1
        if st.plan_t > 0.0 and st.throttle >= 1.0 and actual < plan and frac < 1.0:
            st.base_frac, st.base_actual = frac, actual
            plan = actual
        st.plan_t = now
        return plan

    def _control(
        self, st: FlightState, now: float, actual: float, target: float, level: float, hour: int
    ) -> float:
        """The bounded-step rule: the throttle that delivers what the plan wants by the
        horizon at the estimated supply, at most one step away from the last one.

        Supply is estimated as deliveries per unit of exposure (throttle x seconds x the
        forecast's traffic level now), so it stays put while traffic rises and falls through
        the day, and an interval at a tiny throttle weighs little: a ratio of decayed sums,
        not a mean of noisy ratios."""
        horizon = max(HORIZON_S, 2 * self.interval)
        dt_s = now - st.last_t if st.last_t else 0.0
        if dt_s > 0:
            keep = 0.5 ** (dt_s / SUPPLY_HALF_LIFE_S)
            got, exposed = max(0.0, actual - st.last_actual), st.throttle * dt_s * level
            st.delivered = keep * st.delivered + got
            st.exposure = keep * st.exposure + exposed
            st.reach = keep * st.reach + dt_s * level
            st.hour_delivered[hour] += got
            st.hour_exposure[hour] += exposed
        st.last_actual, st.last_t = actual, now
        need = target - actual
        supply = st.delivered / st.exposure if st.exposure > 0 and st.delivered > 0 else 0.0
        if need <= 0.0:
            desired = 0.0
        elif supply > 0.0 and level > 0.0:
            desired = need / (supply * horizon * level)
        else:
            desired = 1.0
        low = st.throttle * (1.0 - STEP_DOWN)
        high = st.throttle * (1.0 + STEP_UP) + STEP_MIN
        return float(min(1.0, max(0.0, min(high, max(low, desired)))))

    def _goal(
        self, fl: PacedFlight, now: float, midnight: float, today: dict, lifetime: dict
    ) -> tuple[float | None, str | None]:
        goals = []
        if fl.daily:
            goals.append((float(fl.daily[1]), fl.daily[0]))
        if fl.lifetime and math.isfinite(fl.end):
            metric, cap = fl.lifetime
            before = float(lifetime.get(fl.id, {}).get(metric, 0)) - float(
                today.get(fl.id, {}).get(metric, 0)
            )
            days = max(1, math.ceil((fl.end - midnight) / 86400.0))
            goals.append((max(0.0, cap - before) / days, metric))
        if not goals:
            return None, (fl.lifetime[0] if fl.lifetime else None)
        return min(goals)

    def _delivered_today(self, flights: list[PacedFlight], now: float) -> dict[int, dict[str, int]]:
        by_tz: dict[str, list[int]] = {}
        for fl in flights:
            by_tz.setdefault(fl.time_zone, []).append(fl.id)
        out: dict[int, dict[str, int]] = {}
        for tz, ids in by_tz.items():
            out.update(ledger_sums(self.store, ids, local_midnight_hour(tz, now)))
        return out

    def _delivered_lifetime(self, flights: list[PacedFlight]) -> dict[int, dict[str, int]]:
        return ledger_sums(self.store, [fl.id for fl in flights if fl.lifetime], None)
