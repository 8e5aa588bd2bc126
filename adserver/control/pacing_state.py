"""What the pacing controller (control/pacing.py) keeps of each flight between steps, and
what it shows of it (a flight's pacing status on the management API)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class FlightState:
    """What the controller remembers of a flight between steps."""

    throttle: float = 1.0
    # supply: ledger units delivered per unit of exposure, exposure being throttle x seconds x
    # the forecast's traffic level (1 = the day's mean), both decayed (SUPPLY_HALF_LIFE_S)
    delivered: float = 0.0
    exposure: float = 0.0
    reach: float = 0.0  # exposure at full throttle: seconds x traffic level, decayed alike
    # per local hour of the day, deliveries and exposure on the days before (each earlier
    # day weighing HOURS_DECAY as much), and today's share of the flight's usual supply it
    # could win at each hour, learned from them at the day's first step (see _winnable)
    hour_delivered: np.ndarray = field(default_factory=lambda: np.zeros(24))
    hour_exposure: np.ndarray = field(default_factory=lambda: np.zeros(24))
    winnable: np.ndarray | None = None
    learned_day: float = 0.0
    last_actual: float = 0.0
    last_t: float = 0.0
    day: float = 0.0  # local midnight the counters belong to
    # the plan in force: (share of the day's plan, delivery) it was re-based at; see _plan
    base_frac: float = 0.0
    base_actual: float = 0.0
    # each local hour's planned delivery, fixed at its first step (NaN: not yet), and the
    # time of the last step today (0: none yet)
    slots: np.ndarray = field(default_factory=lambda: np.full(24, np.nan))
    plan_t: float = 0.0
    hourly: list[float] = field(default_factory=list)  # _hourly's last answer, and its key
    hourly_key: tuple[Any, ...] = ()
    hourly_bounds: Any = None
    filled: int = 0  # slots[:filled] are fixed


@dataclass
class Status:
    """A flight's pacing, as the management API shows it."""

    flight_id: int
    mode: str
    metric: str | None
    goal: float | None  # today's goal in the metric's units (currency for spend)
    plan: float | None  # planned delivery by now: the plan in force (re-based, see _replan)
    actual: float  # delivered today
    throttle: float
    allowance: float | None  # per worker this interval, when near a hard cap
    lifetime_delivered: float
    updated_at: float
    day_start: float
    hourly_plan: list[float] = field(default_factory=list)  # cumulative, end of each hour
    forecast_trust: float = 0.0
    day_plan: float | None = None  # the day's own plan by now, before any re-base
    day_bounds: Any = field(default=None, repr=False)  # its shares at the 25 hour boundaries

    @property
    def day_hourly_plan(self) -> list[float]:
        """The day's own plan, cumulative at the end of each hour (before any re-base or
        supply cap; beside hourly_plan, the plan in force)."""
        if self.goal is None or self.day_bounds is None:
            return []
        return (self.goal * np.asarray(self.day_bounds)[1:]).tolist()
