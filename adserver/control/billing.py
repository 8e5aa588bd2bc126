"""Billing against spend caps in the ledger: the aggregator bills each impression or click
what its flight may still spend today and over its life; the event that crosses a cap is
billed what remained, later ones nothing (what they would have cost is kept apart as
delivered over the cap, never billed)."""

from __future__ import annotations

import json
import math
import time
from decimal import Decimal
from typing import Any

from adserver.control.caps import local_midnight_hour
from adserver.control.store import Store


class Billing:
    """Billing stops at a spend cap: the event that crosses a flight's daily (network time
    zone, from the hour holding midnight, as the cap projection counts) or lifetime spend cap
    is billed what remained, those after it nothing; what was delivered over the cap is kept
    in `over_cap_nanos`, never charged. Workers stop a flight near its cap (hard-cap
    allowances, adserver/control/pacing.py), so this is at most a few decisions' worth."""

    REFRESH_S = 1.0

    def __init__(self, store: Store):
        self.store = store
        self.caps: dict[int, tuple[int | None, int | None, str]] = {}
        self.loaded = -math.inf
        self.spent: dict[tuple[int, str | None], int] = {}

    def begin(self, db: Any) -> None:
        """Start a batch: re-read the caps now and then, forget the batch's running totals."""
        now = time.monotonic()
        if now - self.loaded > self.REFRESH_S:
            caps = {}
            for fid, daily, lifetime, tz in db.execute(
                "SELECT f.id, f.daily_cap, f.lifetime_cap, n.time_zone FROM flights f"
                " JOIN networks n ON n.id = f.network_id"
                " WHERE f.daily_cap IS NOT NULL OR f.lifetime_cap IS NOT NULL"
            ):
                spend = (_spend_cap(daily), _spend_cap(lifetime), tz)
                if spend[0] is not None or spend[1] is not None:
                    caps[fid] = spend
            self.caps, self.loaded = caps, now
        self.spent = {}

    def bill(self, db: Any, ts: float, flight: int, nanos: int) -> tuple[int, int]:
        cap = self.caps.get(flight)
        if cap is None:
            return nanos, 0
        daily, lifetime, tz = cap
        left, keys = None, []
        for value, since in ((daily, local_midnight_hour(tz, ts)), (lifetime, None)):
            if value is None:
                continue
            key = (flight, since)
            if key not in self.spent:
                sql = "SELECT COALESCE(SUM(spend_nanos), 0) FROM stats_hourly WHERE flight_id = ?"
                params: tuple = (flight,)
                if since is not None:
                    sql += " AND hour >= ?"
                    params = (flight, since)
                self.spent[key] = db.execute(sql, params).fetchone()[0]
            keys.append(key)
            rest = value - self.spent[key]
            left = rest if left is None else min(left, rest)
        billed = max(0, min(nanos, left if left is not None else nanos))
        for key in keys:
            self.spent[key] += billed
        return billed, nanos - billed


def _spend_cap(raw: str | None) -> int | None:
    if not raw:
        return None
    cap = json.loads(raw)
    return int(Decimal(str(cap["value"])) * 10**9) if cap["metric"] == "spend" else None
