"""The aggregator: tails every worker's event and decision logs into the control store.

Each pass reads new records from checkpointed offsets and applies them in ONE transaction
together with the new offsets, so a crash at any point (kill -9 included) neither loses nor
doubles a record. Event ids make counting idempotent on top: an impression token counts once,
a click once per user and ad an hour, an order once. Robot traffic is counted apart and never
billed. After each pass the caps and frequency counters of what changed are projected into
the live state (adserver/control/caps.py).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from msgspec import msgpack

from adserver.control import attribution, quarantine, telemetry
from adserver.control.billing import Billing
from adserver.control.quarantine import DATA_ERRORS, Poison
from adserver.control.records import check_record, network_of
from adserver.control.store import Store, now
from adserver.formats import livestate
from adserver.formats.segment import read_records
from adserver.kernels.codes import RATE_CPC, RATE_CPM

log = logging.getLogger("adserver.aggregator")
STREAMS = ("events", "decisions")
CLICK_DEDUPE_S = 3600
EVENT_VIEWABLE, EVENT_CONVERSION = 40, 3
STAT_COLUMNS = (
    "requests",
    "filled",
    "impressions",
    "viewable",
    "clicks",
    "conversions",
    "other_events",
    "invalid_impressions",
    "invalid_clicks",
    "spend_nanos",
    "gmv_micros",
    "over_cap_nanos",
)


PERSONALIZER = ("pz_rank", "pz_mrank", "pz_reward", "pz_mreward", "pz_activate")


def _chosen(payload: dict[str, Any]) -> list[str]:
    """The action ids a logged rank showed."""
    ids = [a["id"] for a in payload["actions"]]
    slots = payload.get("slots")
    return [ids[s["chosen"]] for s in slots] if slots else [ids[payload["chosen"]]]


def _personalizer(db: Any, rec: dict[str, Any], batch: Batch) -> None:
    """Personalizer ranks, rewards and activations (serving/personalize.py) into the tables
    the learner joins (control/personalizer.py), and each action's daily count of times
    shown (a rank not deferred, or a deferred one once activated, whichever record comes
    first); a replayed record changes nothing."""
    t = rec["t"]
    if t in ("pz_rank", "pz_mrank"):
        payload = {k: v for k, v in rec.items() if k not in ("t", "id", "ts", "defer")}
        new = db.execute(
            "INSERT OR IGNORE INTO pz_ranks (id, at, multi, defer, payload) VALUES (?, ?, ?, ?, ?)",
            (
                rec["id"],
                rec["ts"],
                int(t == "pz_mrank"),
                int(bool(rec.get("defer"))),
                json.dumps(payload),
            ),
        ).rowcount
        if new and (
            not rec.get("defer")
            or db.execute(
                "SELECT 1 FROM pz_activations WHERE event_id = ?", (rec["id"],)
            ).fetchone()
        ):
            batch.shown(rec["ts"], _chosen(payload))
    elif t == "pz_activate":
        new = db.execute(
            "INSERT OR IGNORE INTO pz_activations VALUES (?, ?)", (rec["event"], rec["ts"])
        ).rowcount
        row = (
            db.execute(
                "SELECT payload, defer FROM pz_ranks WHERE id = ?", (rec["event"],)
            ).fetchone()
            if new
            else None
        )
        if row is not None and row[1]:
            batch.shown(rec["ts"], _chosen(json.loads(row[0])))
    elif (
        db.execute(
            "INSERT OR IGNORE INTO seen_events VALUES (?, ?)", (rec["id"], rec["ts"])
        ).rowcount
        == 1
    ):  # a reward counts once
        rewards = [["", rec["value"]]] if t == "pz_reward" else rec["rewards"]
        db.executemany(
            "INSERT INTO pz_rewards VALUES (?, ?, ?, ?)",
            [(rec["event"], slot, rec["ts"], value) for slot, value in rewards],
        )


def hour_of(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H")


class Batch:
    """The effects of one pass, accumulated in memory and written at once."""

    def __init__(self, bill: Callable[[float, int, int], tuple[int, int]] | None = None):
        self.stats: dict[tuple, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.flights: set[int] = set()
        self.users: set[tuple[int, str]] = set()
        # (network, user) -> products they clicked or bought in this pass, oldest first
        self.viewed: dict[tuple[int, str], list[str]] = defaultdict(list)
        self.recent: dict[tuple[int, str], list[str]] = {}  # their new recent lists
        self.bill = bill  # (event time, flight, spend) -> (billed, over the cap)
        self.pz_shown: dict[tuple[str, str], int] = defaultdict(int)  # (day, action) -> n

    def merge(self, other: Batch) -> Batch:
        """This batch with `other`'s effects added (both already written): for projecting
        what a record-by-record replay changed."""
        for key, row in other.stats.items():
            for name, value in row.items():
                self.stats[key][name] += value
        self.flights |= other.flights
        self.users |= other.users
        self.recent.update(other.recent)
        for key, n in other.pz_shown.items():
            self.pz_shown[key] += n
        return self

    def shown(self, ts: float, actions: list[str]) -> None:
        day = dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d")
        for a in actions:
            self.pz_shown[(day, a)] += 1

    def add(self, ts: float, keys: tuple, **counts: int) -> None:
        spend = counts.get("spend_nanos")
        if spend and self.bill is not None and keys[5]:
            counts["spend_nanos"], over = self.bill(ts, keys[5], spend)
            if over:
                counts["over_cap_nanos"] = over
        row = self.stats[(hour_of(ts), *keys)]
        for name, value in counts.items():
            row[name] += value


class Aggregator:
    """The ledger's one writer: reads the workers' event and decision logs from its offsets,
    counts them into stats_hourly, bills spend against caps, attributes conversions, and
    quarantines what it cannot count."""

    def __init__(self, store: Store, data_dir: str, attribution_match: str = "product"):
        self.store = store
        self.root = os.path.join(data_dir, "events")
        self.match = attribution_match
        self.billing = Billing(store)
        self.lag = telemetry.Lag()
        self.counted: dict[str, int] = dict.fromkeys(STREAMS, 0)  # this pass's records
        self.read_bytes = 0

    # -- reading the logs ------------------------------------------------------------------

    def _segments(self, worker: str, stream: str) -> list[str]:
        d = os.path.join(self.root, worker)
        return sorted(n for n in os.listdir(d) if n.startswith(stream + "-") and n.endswith(".seg"))

    def run_once(self, limit: int = 20000) -> Batch | None:
        """Apply up to `limit` new records in one transaction; None when there were none.
        A record that cannot be counted is quarantined and skipped (`isolate`). Updates the
        lag and event metrics (control/telemetry.py)."""
        self.counted = dict.fromkeys(STREAMS, 0)
        self.read_bytes = 0
        try:
            batch = self._pass(limit)
        except DATA_ERRORS:
            log.exception(
                "an aggregator pass failed on its data: replaying it record by"
                " record to quarantine the record"
            )
            self.counted = dict.fromkeys(STREAMS, 0)
            self.read_bytes = 0
            batch = self.isolate(limit)
        for stream, n in self.counted.items():
            if n:
                telemetry.EVENTS.labels(stream).inc(n)
        unread = 0
        if batch is not None:  # nothing read: every log was read to its end
            offsets = {
                (r[0], r[1]): (r[2], r[3])
                for r in self.store.read(
                    'SELECT worker, stream, segment, "offset" FROM event_offsets'
                )
            }
            unread = telemetry.unread_bytes(self.root, offsets, STREAMS)
        self.lag.update(unread, self.read_bytes, sum(self.counted.values()), time.time())
        return batch

    def isolate(self, limit: int) -> Batch | None:
        """Apply the next records one transaction each until one fails with a data error;
        quarantine that one (its offset moves past it) and stop. Returns what was applied."""
        done: Batch | None = None
        for _ in range(limit):
            try:
                batch = self._pass(1)
            except DATA_ERRORS as e:
                self._pass(1, poison=f"{type(e).__name__}: {e}")
                return done or Batch()
            if batch is None:
                break
            done = batch if done is None else done.merge(batch)
        return done

    def _pass(self, limit: int, poison: str | None = None) -> Batch | None:
        """One pass in one transaction; with `poison`, the first record read is not
        applied but quarantined with that reason."""
        if not os.path.isdir(self.root):
            return None
        self.quarantine_next = poison
        self.pass_counts: dict[str, int] = dict.fromkeys(STREAMS, 0)
        self.pass_bytes = 0
        n = 0
        with self.store.transaction() as db:
            self.billing.begin(db)
            batch = Batch(lambda ts, flight, nanos: self.billing.bill(db, ts, flight, nanos))
            offsets = {
                (r[0], r[1]): (r[2], r[3])
                for r in db.execute('SELECT worker, stream, segment, "offset" FROM event_offsets')
            }
            for worker in sorted(os.listdir(self.root)):
                for stream in STREAMS:
                    n += self._tail(db, worker, stream, offsets, batch, limit - n)
                    if n >= limit:
                        break
            if n == 0:
                return None
            self._write_stats(db, batch)
            for stream, k in self.pass_counts.items():  # committed below: counted
                self.counted[stream] += k
            self.read_bytes += self.pass_bytes
            self._write_profiles(db, batch)
            db.executemany(
                "INSERT INTO pz_action_days VALUES (?, ?, ?) ON CONFLICT (day, action) DO"
                " UPDATE SET shown = shown + excluded.shown",
                [(d, a, n) for (d, a), n in batch.pz_shown.items()],
            )
        return batch

    def _write_profiles(self, db: Any, batch: Batch) -> None:
        """Push what users clicked and bought onto their recent products (users table)."""
        stamp = now()
        for (network, user), seen in batch.viewed.items():
            row = db.execute(
                "SELECT recent_products FROM users WHERE network_id = ? AND user_key = ?",
                (network, user),
            ).fetchone()
            old = json.loads(row[0]) if row else []
            recent = list(dict.fromkeys([*reversed(seen), *old]))[: livestate.RECENT]
            db.execute(
                "INSERT INTO users (network_id, user_key, segments, interests, custom,"
                " recent_products, consent, updated_at) VALUES (?, ?, '[]', '[]', '{}', ?,"
                " '{}', ?) ON CONFLICT (network_id, user_key) DO UPDATE SET"
                " recent_products = excluded.recent_products, updated_at = excluded.updated_at",
                (network, user, json.dumps(recent), stamp),
            )
            batch.recent[(network, user)] = recent

    def _tail(
        self, db: Any, worker: str, stream: str, offsets: dict, batch: Batch, limit: int
    ) -> int:
        segments = self._segments(worker, stream)
        if not segments or limit <= 0:
            return 0
        segment, offset = offsets.get((worker, stream), (segments[0], 0))
        n = 0
        while True:
            path = os.path.join(self.root, worker, segment)
            end = start = offset
            for end, payload in read_records(path, offset, raw=True):
                where = f"{worker}/{segment}@{start}"
                start = end
                if self.quarantine_next is not None:
                    self._quarantine(db, stream, where, payload, self.quarantine_next)
                    self.quarantine_next = None
                else:
                    rec = msgpack.decode(payload)
                    try:
                        check_record(rec)
                    except Poison as e:
                        self._quarantine(db, stream, where, payload, str(e))
                    else:
                        self._apply(db, rec, batch)
                n += 1
                self.pass_counts[stream] += 1
                if n >= limit:
                    break
            self.pass_bytes += end - offset
            offset = end
            later = [s for s in segments if s > segment]
            if n >= limit or not later:
                break
            size = os.path.getsize(path)
            if offset < size:  # the writer moved on: what is left is a torn tail
                log.warning("skipping a torn tail of %d bytes in %s", size - offset, path)
            segment, offset = later[0], 0
        db.execute(
            "INSERT INTO event_offsets VALUES (?, ?, ?, ?) ON CONFLICT (worker, stream)"
            ' DO UPDATE SET segment = excluded.segment, "offset" = excluded."offset"',
            (worker, stream, segment, offset),
        )
        return n

    def _quarantine(self, db: Any, stream: str, where: str, payload: bytes, reason: str) -> None:
        try:
            rec = msgpack.decode(payload)
            text = json.dumps(rec, default=repr)[:100_000]
        except Exception:
            rec, text = None, payload[:50_000].hex()
        quarantine.add(db, f"{stream}/{where}", stream, network_of(rec), reason, text)

    # -- applying records ------------------------------------------------------------------

    def _first_time(self, db: Any, event_id: str, ts: float) -> bool:
        cur = db.execute("INSERT OR IGNORE INTO seen_events VALUES (?, ?)", (event_id, ts))
        return cur.rowcount == 1

    def _apply(self, db: Any, rec: dict[str, Any], batch: Batch) -> None:
        t = rec.get("t")
        if t == "d":
            for _div, _n, winners, _min, site, zone, network, *_ in rec["placements"]:
                batch.add(
                    rec["ts"],
                    (network, site, zone, 0, 0, 0, 0, 0),
                    requests=1,
                    filled=int(bool(winners)),
                )
        elif t in ("imp", "click", "event"):
            self._tracking(db, rec, batch)
        elif t in PERSONALIZER:
            _personalizer(db, rec, batch)
        elif t == "conv":
            if self._first_time(db, rec["id"], rec["ts"]):
                attribution.credit(db, rec, batch, self.match)
                batch.viewed[(rec["network"], rec["user"])].extend(i[0] for i in rec["items"])

    def _tracking(self, db: Any, rec: dict[str, Any], batch: Batch) -> None:
        t, ts = rec["t"], rec["ts"]
        keys = (
            rec["network"],
            rec["site"],
            rec["zone"],
            rec["advertiser"],
            rec["campaign"],
            rec["flight"],
            rec["ad"],
            rec["creative"],
        )
        if not self._first_time(db, rec["id"], ts):
            return
        mult = rec.get("mult", 1)
        if rec.get("bot"):
            if t != "event":
                batch.add(
                    ts, keys, **{f"invalid_{'impressions' if t == 'imp' else 'clicks'}": mult}
                )
            return
        if t == "click":
            last = db.execute(
                "SELECT at FROM last_clicks WHERE user_key = ? AND ad_id = ?",
                (rec["user"], rec["ad"]),
            ).fetchone()
            if last is not None and ts - last[0] < CLICK_DEDUPE_S:
                return
            db.execute(
                "INSERT INTO last_clicks VALUES (?, ?, ?) ON CONFLICT (user_key, ad_id)"
                " DO UPDATE SET at = excluded.at",
                (rec["user"], rec["ad"], ts),
            )
            product = attribution.ad_product(db, rec["ad"])
            if product is not None:
                batch.viewed[(rec["network"], rec["user"])].append(product)
        billed_rate = {"imp": RATE_CPM, "click": RATE_CPC}.get(t)
        spend = 0
        if billed_rate is not None and rec["rate"] == billed_rate:
            unit = rec["price"] if t == "imp" else rec["price"] * 1000  # nanos per event
            spend = unit * mult
        if "override" in rec:
            spend = rec["override"] * 1000
        spend += rec.get("additional", 0) * 1000
        counts = {"spend_nanos": spend, "gmv_micros": rec.get("gmv", 0)}
        if t == "imp":
            counts["impressions"] = mult
        elif t == "click":
            counts["clicks"] = mult
        elif rec["ev"] == EVENT_VIEWABLE:
            counts["viewable"] = mult
        elif rec["ev"] == EVENT_CONVERSION:
            counts["conversions"] = mult
        else:
            counts["other_events"] = mult
        batch.add(ts, keys, **counts)
        batch.flights.add(rec["flight"])
        if t in ("imp", "click"):
            db.execute(
                "INSERT INTO touches (event_id, network_id, user_key, at, kind, ad_id,"
                " creative_id, flight_id, campaign_id, advertiser_id, site_id, zone_id,"
                " price_micros, rate) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    rec["id"],
                    rec["network"],
                    rec["user"],
                    ts,
                    t,
                    rec["ad"],
                    rec["creative"],
                    rec["flight"],
                    rec["campaign"],
                    rec["advertiser"],
                    rec["site"],
                    rec["zone"],
                    rec["price"],
                    rec["rate"],
                ),
            )
            if t == "imp":
                batch.users.add((rec["network"], rec["user"]))

    def _write_stats(self, db: Any, batch: Batch) -> None:
        cols = ", ".join(STAT_COLUMNS)
        sets = ", ".join(f"{c} = {c} + excluded.{c}" for c in STAT_COLUMNS)
        sql = (
            f"INSERT INTO stats_hourly (hour, network_id, site_id, zone_id, advertiser_id,"
            f" campaign_id, flight_id, ad_id, creative_id, {cols}) VALUES"
            f" ({', '.join('?' * (9 + len(STAT_COLUMNS)))}) ON CONFLICT DO UPDATE SET {sets}"
        )
        db.executemany(
            sql,
            [(*key, *(row.get(c, 0) for c in STAT_COLUMNS)) for key, row in batch.stats.items()],
        )
