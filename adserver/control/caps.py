"""Project the ledger into the live state the workers read: which flights reached a cap, and
each user's recent impressions for frequency caps.

Caps: a flight's daily cap counts from midnight in its network's time zone (rounded to the
hour: report rows are hourly), its lifetime cap over all time; spend, impressions or clicks.
A flight at or over a cap is paused until the day rolls over (daily) or its cap is raised.

Hard caps. Money first: the aggregator bills up to a spend cap and no further (the event that
crosses it is billed what remained, later ones nothing; adserver/control/billing.Billing).
Delivery is held at the cap too, although the cap projection (adserver/control/caps.py) only
sees the ledger, which lags the decisions: near a cap (when what remains is within
NEAR_ALLOWANCES allowances per worker), the controller grants every worker an allowance per
interval, min(A, remaining / workers), where A is the larger of ALLOWANCE_SHARE of the cap and
one decision's largest cost (the bid of a CPM impression, of a CPC click or CPA conversion; 1
for impression and click caps); while anything remains, one worker in turn (the lead) gets
at least one decision's worth. A worker counts that largest cost for each decision it makes
for the flight and stops choosing the flight when nothing is left. Grants add up to at most
the ledger's remainder plus one decision, so what the ledger has not yet seen when it grants
is the previous interval's, and

    delivered <= cap + workers x (A + one decision's cost)

provided the ledger trails the decisions by less than one interval (the aggregator tails the
logs every 0.1 s); billed spend never exceeds the cap. Once the ledger catches up the
remainder is zero, nothing is granted and the projection pauses the flight.
"""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from decimal import Decimal
from typing import Any

from adserver.control.store import Store
from adserver.formats import livestate

METRIC = {"spend": "spend_nanos", "impressions": "impressions", "clicks": "clicks"}


def local_midnight_hour(time_zone: str, now: float) -> str:
    """The UTC report hour holding the start of today in `time_zone`."""
    local = dt.datetime.fromtimestamp(now, zoneinfo.ZoneInfo(time_zone))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.astimezone(dt.UTC).strftime("%Y-%m-%dT%H")


def ledger_sums(store: Store, ids: list[int], since: str | None) -> dict[int, dict[str, int]]:
    """Per flight of `ids` with any ledger row (from the report hour `since`, or ever):
    {"spend": nano-units, "impressions": n, "clicks": n}, in one grouped query per 500."""
    out: dict[int, dict[str, int]] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        sql = (
            "SELECT flight_id, SUM(spend_nanos), SUM(impressions), SUM(clicks)"
            f" FROM stats_hourly WHERE flight_id IN ({','.join('?' * len(chunk))})"
        )
        params: list[Any] = list(chunk)
        if since is not None:
            sql += " AND hour >= ?"
            params.append(since)
        for fid, spend, imps, clicks in store.read(sql + " GROUP BY flight_id", params):
            out[fid] = {"spend": spend or 0, "impressions": imps or 0, "clicks": clicks or 0}
    return out


def _totals(sums: dict[int, dict[str, int]], fid: int) -> tuple[int, int, int]:
    got = sums.get(fid)
    return (got["spend"], got["impressions"], got["clicks"]) if got else (0, 0, 0)


def _reached(cap_json: str | None, totals: tuple[int, int, int]) -> bool:
    if not cap_json:
        return False
    cap = json.loads(cap_json)
    value = Decimal(str(cap["value"]))
    spend, imps, clicks = totals
    have: Decimal | int = {
        "spend_nanos": Decimal(spend) / Decimal(10**9),
        "impressions": imps,
        "clicks": clicks,
    }[METRIC[cap["metric"]]]  # type: ignore[assignment]
    return have >= value


class LiveProjector:
    """The only writer of live.lmdb."""

    def __init__(self, store: Store, data_dir: str):
        self.store = store
        self.env = livestate.open_writer(data_dir)
        self.paused: dict[int, str] = {}
        with self.env.begin() as txn:
            self.paused = {f: "cap" for f in livestate.decode(txn.get(livestate.PAUSED)) or []}
            loaded = txn.get(livestate.PROFILES_LOADED) is not None
        if not loaded:
            self.load_profiles()

    def load_profiles(self) -> None:
        """Project every stored user's recent products (once per live.lmdb)."""
        rows = self.store.read(
            "SELECT network_id, user_key, recent_products FROM users WHERE recent_products != '[]'"
        )
        with self.env.begin(write=True) as txn:
            for network, user, recent in rows:
                txn.put(
                    livestate.recent_key(network, user),
                    livestate.encode(json.loads(recent)[: livestate.RECENT]),
                )
            txn.put(livestate.PROFILES_LOADED, b"1")

    def recent(self, lists: dict[tuple[int, str], list[str]]) -> None:
        """Write users' new recent-product lists (from the aggregator's pass)."""
        if not lists:
            return
        with self.env.begin(write=True) as txn:
            for (network, user), recent in lists.items():
                txn.put(livestate.recent_key(network, user), livestate.encode(recent))

    def action_counts(self, shown: dict[tuple[str, str], int]) -> None:
        """Project the daily counts of the Personalizer actions a pass touched."""
        if not shown:
            return
        with self.env.begin(write=True) as txn:
            for day, action in shown:
                row = self.store.read(
                    "SELECT shown FROM pz_action_days WHERE day = ? AND action = ?", (day, action)
                )
                txn.put(livestate.action_key(day, action), livestate.encode(row[0][0]))

    def caps(self, flights: set[int] | None, now: float) -> bool:
        """Re-evaluate the caps of `flights` (all capped flights when None); returns whether
        the paused set changed."""
        sql = (
            "SELECT f.id, f.daily_cap, f.lifetime_cap, n.time_zone FROM flights f"
            " JOIN networks n ON n.id = f.network_id"
            " WHERE (f.daily_cap IS NOT NULL OR f.lifetime_cap IS NOT NULL)"
        )
        params: list[Any] = []
        if flights is not None:
            if not flights:
                return False
            sql += f" AND f.id IN ({','.join('?' * len(flights))})"
            params = sorted(flights)
        paused = dict(self.paused)
        if flights is None:
            paused = {}
        rows = self.store.read(sql, params)
        ever = ledger_sums(self.store, [r[0] for r in rows if r[2]], None)
        by_tz: dict[str, list[int]] = {}
        for fid, daily, _lifetime, tz in rows:
            if daily:
                by_tz.setdefault(tz, []).append(fid)
        today: dict[int, dict[str, int]] = {}
        for tz, ids in by_tz.items():
            today.update(ledger_sums(self.store, ids, local_midnight_hour(tz, now)))
        for fid, daily, lifetime, tz in rows:
            why = None
            if lifetime and _reached(lifetime, _totals(ever, fid)):
                why = "lifetime cap"
            elif daily and _reached(daily, _totals(today, fid)):
                why = "daily cap"
            if why:
                paused[fid] = why
            else:
                paused.pop(fid, None)
        if paused == self.paused:
            return False
        self.paused = paused
        with self.env.begin(write=True) as txn:
            txn.put(livestate.PAUSED, livestate.encode(sorted(paused)))
        return True

    def frequency(self, users: set[tuple[int, str]], now: float) -> None:
        """Rewrite the frequency entries of `users` from their counted impressions."""
        if not users:
            return
        caps = self.store.read(
            "SELECT id, campaign_id, advertiser_id, frequency_caps"
            " FROM flights WHERE frequency_caps != '[]'"
        )
        wanted: dict[int, set[int]] = {0: set(), 1: set(), 2: set()}
        longest = 0
        for fid, cid, aid, raw in caps:
            for cap in json.loads(raw):
                level = livestate.LEVELS[cap["level"]]
                wanted[level].add((fid, cid, aid)[level])
                longest = max(longest, cap["window_seconds"])
        with self.env.begin(write=True) as txn:
            for network, user in users:
                entries = []
                if longest:
                    for fid, cid, aid, at in self.store.read(
                        "SELECT flight_id, campaign_id, advertiser_id, at FROM touches"
                        " WHERE network_id = ? AND user_key = ? AND kind = 'imp'"
                        " AND at > ?",
                        (network, user, now - longest),
                    ):
                        for level, ident in enumerate((fid, cid, aid)):
                            if ident in wanted[level]:
                                entries.append([level, ident, at])
                key = livestate.user_key(network, user)
                if entries:
                    txn.put(key, livestate.encode(entries))
                else:
                    txn.delete(key)


# ---- hard-cap allowances: the pacing controller grants them (adserver/control/pacing.py) ---
ALLOWANCE_SHARE = 0.002  # a hard-cap allowance per worker and interval: 0.2 % of the cap
NEAR_ALLOWANCES = 3  # grants start when the remainder is within this many per worker


def unit_cost(metric: str, rate_type: str, price_micros: int) -> int:
    """The most one decision can add to a cap of `metric`: nano-units for spend (a CPM price
    in micro-units per thousand is that many nano-units per impression), else 1."""
    if metric != "spend":
        return 1
    if rate_type == "cpm":
        return int(price_micros)
    if rate_type in ("cpc", "cpa"):
        return int(price_micros) * 1000
    return 0


def cap_units(metric: str, value: Any) -> int:
    """A cap's value in ledger units (spend in nano-units)."""
    return int(round(float(value) * 1e9)) if metric == "spend" else int(value)


def parse_cap(raw: str | None) -> tuple[str, int] | None:
    """A flight's stored cap (JSON `{"metric", "value"}`) as (metric, value in ledger units),
    or None without one."""
    if not raw:
        return None
    cap = json.loads(raw)
    return cap["metric"], cap_units(cap["metric"], cap["value"])


def grant(
    flight_id: int,
    rate_type: str,
    price_micros: int,
    caps: tuple[tuple[tuple[str, int] | None, dict[int, dict[str, int]]], ...],
    workers: int,
) -> tuple[int, int, str, int] | None:
    """(allowance per worker, one decision's largest cost, metric, the lead worker's
    allowance) when a flight is near one of its `caps` ((metric, cap in ledger units) or None,
    with the ledger's delivery per flight it counts against). A is the larger of
    ALLOWANCE_SHARE of the cap and one decision's cost; while anything remains, one worker
    (the lead, rotating with the grant number) gets at least one decision's worth of it."""
    best: tuple[int, int, str, int] | None = None
    for cap, done in caps:
        if cap is None:
            continue
        metric, value = cap
        cost = unit_cost(metric, rate_type, price_micros)
        if cost <= 0:
            continue
        remaining = value - int(done.get(flight_id, {}).get(metric, 0))
        size = max(int(value * ALLOWANCE_SHARE), cost)
        if remaining > NEAR_ALLOWANCES * workers * size:
            continue
        allowance = max(0, min(size, remaining // workers))
        lead = max(allowance, min(cost, max(0, remaining)))
        if best is None or allowance + lead < best[0] + best[3]:
            best = (allowance, cost, metric, lead)
    return best
