"""The shape of a paced flight's day: the plan curves of each pacing mode and the traffic
forecast an even plan follows. The controller that uses them, and every tuning constant, is
adserver/control/pacing.py."""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from typing import Any

import numpy as np

from adserver.control.store import Store


def local_day(time_zone: str, now: float) -> tuple[float, int]:
    """(unix time of today's local midnight, weekday 0 = Monday)."""
    local = dt.datetime.fromtimestamp(now, zoneinfo.ZoneInfo(time_zone))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.timestamp(), local.weekday()


def hour_weights(
    mode: str, traffic: np.ndarray, custom: list[float], allowed: np.ndarray
) -> np.ndarray:
    """The 24 hourly shares of today's goal (before dates cut the day)."""
    if mode == "custom" and custom:
        w = np.asarray(custom, dtype=np.float64)
    else:
        w = np.asarray(traffic, dtype=np.float64)
    w = w * allowed
    return w / w.sum() if w.sum() > 0 else w


def even_curve(weights: np.ndarray, midnight: float, start: float, end: float) -> np.ndarray:
    """The share of today's goal planned by each hour boundary (25 points, 0 at midnight):
    the hourly weights spread evenly within each hour, restricted to [start, end) of the
    flight and renormalised."""
    edges = midnight + np.arange(25) * 3600.0
    lo, hi = np.maximum(edges[:-1], start), np.minimum(edges[1:], end)
    live = weights * np.clip(hi - lo, 0.0, 3600.0) / 3600.0
    total = float(live.sum())
    if total <= 0.0:
        return np.ones(25)
    return np.minimum(np.concatenate([[0.0], np.cumsum(live) / total]), 1.0)


def bend(x: Any, mode: str) -> Any:
    """A front-loaded plan is ahead of the even one: 1 - (1 - even)^2; others are as is."""
    return 1.0 - (1.0 - x) ** 2 if mode == "front_loaded" else x


def at(curve: np.ndarray, midnight: float, t: float, start: float, end: float) -> float:
    """The even curve's value at time `t`: linear over the part of the hour the flight is
    live."""
    h = min(23, int((min(max(t, midnight), midnight + 86400.0) - midnight) // 3600.0))
    lo, hi = max(midnight + h * 3600.0, start), min(midnight + (h + 1) * 3600.0, end)
    frac = 0.0 if hi <= lo else min(1.0, max(0.0, (min(t, hi) - lo) / (hi - lo)))
    return float(curve[h] + (curve[h + 1] - curve[h]) * frac)


def planned_fraction(
    weights: np.ndarray, midnight: float, t: float, start: float, end: float, mode: str
) -> float:
    """Share of today's goal planned to be delivered by time `t`."""
    return float(bend(at(even_curve(weights, midnight, start, end), midnight, t, start, end), mode))


class Forecast:
    """Requests per local hour of the week, per (site, zone), learned from the ledger's
    request counts of the last `days`, blended with the `default` curve (24 hourly shares)
    until `trusted_hours` hours have been seen."""

    def __init__(self, days: int, trusted_hours: int, default: np.ndarray) -> None:
        self.days, self.trusted_hours, self.default = days, trusted_hours, default
        # (network, site, zone) -> 168 request counts and the set of UTC hours seen
        self.counts: dict[tuple[int, int, int], np.ndarray] = {}
        self.hours: dict[tuple[int, int, int], set[str]] = {}
        self.loaded_at = -math.inf

    def refresh(self, store: Store, zones: dict[int, str], now: float) -> None:
        """Re-learn from the logged requests of the `days` before the last 24 hours (a day
        still being logged would weigh its first hours twice)."""
        since = dt.datetime.fromtimestamp(now - self.days * 86400, dt.UTC)
        until = dt.datetime.fromtimestamp(now - 86400, dt.UTC)
        counts: dict[tuple[int, int, int], np.ndarray] = {}
        hours: dict[tuple[int, int, int], set[str]] = {}
        how_of: dict[tuple[str, str], int] = {}
        for hour, net, site, zone, n in store.read(
            "SELECT hour, network_id, site_id, zone_id, SUM(requests) FROM stats_hourly"
            " WHERE flight_id = 0 AND requests > 0 AND hour >= ? AND hour < ?"
            " GROUP BY hour, network_id, site_id, zone_id",
            (since.strftime("%Y-%m-%dT%H"), until.strftime("%Y-%m-%dT%H")),
        ):
            tz = zones.get(net, "UTC")
            how = how_of.get((hour, tz))
            if how is None:
                local = (
                    dt.datetime.strptime(hour, "%Y-%m-%dT%H")
                    .replace(tzinfo=dt.UTC)
                    .astimezone(zoneinfo.ZoneInfo(tz))
                )
                how = how_of[(hour, tz)] = local.weekday() * 24 + local.hour
            key = (net, site, zone)
            counts.setdefault(key, np.zeros(168))[how] += n
            hours.setdefault(key, set()).add(hour)
        self.counts, self.hours, self.loaded_at = counts, hours, now

    def day(
        self, network: int, sites: list[int], zones: list[int], weekday: int
    ) -> tuple[np.ndarray, float]:
        """(24 hourly shares of `weekday` for a flight's places, trust in the learned part)."""
        total = np.zeros(168)
        seen: set[str] = set()
        for (net, site, zone), c in self.counts.items():
            if net != network or (zones and zone not in zones) or (sites and site not in sites):
                continue
            total += c
            seen |= self.hours[(net, site, zone)]
        trust = min(1.0, len(seen) / self.trusted_hours)
        learned = total[weekday * 24 : (weekday + 1) * 24]
        if learned.sum() <= 0:
            return self.default.copy(), 0.0
        curve = trust * learned / learned.sum() + (1.0 - trust) * self.default
        return curve / curve.sum(), trust
