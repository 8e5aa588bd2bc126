"""`adserver simulate`: replay a synthetic day at an accelerated clock through the real decision
path and see whether budgets are spent as planned.

Everything that runs in production runs here, in one process, on a simulated clock
(adserver/common/clock.py): the decision workers' Starlette app (POST /api/v2, the /i.gif, /r and
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
import dataclasses
import datetime as dt
import json
import os
from typing import Any

import numpy as np

from adserver.tools import simreport
from adserver.tools.simday import Asgi, run_day  # noqa: F401  (Asgi: the tests' worker)
from adserver.tools.simworld import (  # noqa: F401  (re-exported: the settings)
    Settings,
    build_world,
    seed_history,
    set_budgets,
)


def simulate(data_dir: str, s: Settings) -> dict[str, Any]:
    if os.path.exists(os.path.join(data_dir, "control.sqlite3")):
        raise SystemExit(
            f"adserver simulate: {data_dir} already holds a store; give an empty --data-dir"
        )
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
