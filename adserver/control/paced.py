"""The flights the pacer paces, as it reads them from the control store: the active flights
with a daily or lifetime cap, each with its plan's inputs (mode, curve, dayparts, dates,
price, caps in ledger units). A flight that cannot be read (a cap past what the ledger
counts, a row an older version wrote) is quarantined and held back alone."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from adserver.control import quarantine
from adserver.control.caps import parse_cap
from adserver.control.quarantine import DATA_ERRORS, Poison
from adserver.control.schema import SPECS, from_row
from adserver.control.store import Store


@dataclass
class PacedFlight:
    """A flight as the pacer reads it from the store: its caps, mode, curve, dates and where it
    may serve."""

    id: int
    network_id: int
    time_zone: str
    mode: str
    curve: list[float]
    sites: list[int]
    zones: list[int]
    allowed: np.ndarray  # 168 hours the dayparts allow
    start: float
    end: float
    rate_type: str
    price_micros: int
    daily: tuple[str, int] | None  # (metric, cap in ledger units)
    lifetime: tuple[str, int] | None


def _ts(text: str | None) -> float:
    if not text:
        return math.inf
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def read_flights(store: Store) -> tuple[list[PacedFlight], set[int]]:
    """(the paced flights, the ids of those that could not be read: quarantined)."""
    zones = {r[0]: r[1] for r in store.read("SELECT id, time_zone FROM networks")}
    out, unreadable = [], set()
    for row in store.read(
        "SELECT * FROM flights WHERE archived = 0 AND is_active = 1"
        " AND (daily_cap IS NOT NULL OR lifetime_cap IS NOT NULL)"
    ):
        try:
            out.append(_read(row, zones))
        except DATA_ERRORS as e:
            quarantine.flight(store, row["id"], row["network_id"], e)
            unreadable.add(row["id"])
    return out, unreadable


def _read(row: Any, zones: dict[int, str]) -> PacedFlight:
    daily, lifetime = parse_cap(row["daily_cap"]), parse_cap(row["lifetime_cap"])
    for name, cap in (("daily_cap", daily), ("lifetime_cap", lifetime)):
        if cap is not None and not 0 <= cap[1] <= 2**62:  # the ledger's int64 totals
            raise Poison(f"{name}: {cap[1]} {cap[0]} is past what the ledger counts")
    if not 0 <= row["price_micros"] <= 2**62:
        raise Poison(f"price_micros: {row['price_micros']} out of range")
    fl: Any = from_row(SPECS["flights"], row)
    allowed = np.zeros(168)
    if fl.dayparts:
        for part in fl.dayparts:
            for d in part.days:
                allowed[d * 24 + part.start_hour : d * 24 + part.end_hour] = 1.0
    else:
        allowed[:] = 1.0
    return PacedFlight(
        id=row["id"],
        network_id=row["network_id"],
        time_zone=zones.get(row["network_id"], "UTC"),
        mode=fl.pacing,
        curve=[float(x) for x in fl.pacing_curve],
        sites=list(fl.site_ids),
        zones=list(fl.zone_ids),
        allowed=allowed,
        start=_ts(row["start"]),
        end=_ts(row["end"]),
        rate_type=fl.rate_type,
        price_micros=row["price_micros"],
        daily=daily,
        lifetime=lifetime,
    )
