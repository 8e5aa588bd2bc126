"""Poison records: the aggregator quarantines what it cannot count, keeps counting everyone
else's, and no total ever leaves int64 (real control store, real segment logs)."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path
from typing import Any

from adserver.control.aggregator import Aggregator
from adserver.formats import livestate
from adserver.formats.segment import SegmentWriter
from tests.control.test_pacing import MIDNIGHT, World, world  # noqa: F401  (a fixture)

T = MIDNIGHT + 9 * 3600


def imp(w: World, fid: int, i: int, **extra: Any) -> dict[str, Any]:
    return {
        "t": "imp",
        "id": f"i:q{i}:1",
        "ts": T + i,
        "ev": 1,
        "bot": False,
        "req": f"q{i}",
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
        "site": w.site,
        "zone": w.zone,
        "network": w.net,
        **extra,
    }


def raw_append(path: str, payload: bytes) -> None:
    with open(path, "ab") as out:
        out.write(struct.pack("<II", len(payload), zlib.crc32(payload)) + payload)


def counted(w: World, fid: int) -> tuple[int, int]:
    return tuple(
        w.store.read(
            "SELECT COALESCE(SUM(impressions), 0),"
            " COALESCE(SUM(spend_nanos), 0) FROM stats_hourly"
            " WHERE flight_id = ?",
            (fid,),
        )[0]
    )  # type: ignore[return-value]


def drain(agg: Aggregator) -> None:
    for _ in range(100):
        if agg.run_once() is None:
            return
    raise AssertionError("the aggregator never caught up")


def test_poison_records_are_quarantined_and_the_rest_counted(world: World) -> None:  # noqa: F811
    """Attack: records an older version (or a bug) wrote: a revenue override of 1e15 micros,
    a multiplier of a million, a conversion of network 2^63, a record that is not a map,
    bytes that are not msgpack behind a valid CRC. Each is quarantined with its reason; the
    good records around them are counted once."""
    fid = world.flight()
    log = SegmentWriter(f"{world.root}/events/w0", "events")
    log.append(imp(world, fid, 0))
    log.append(imp(world, fid, 1, override=10**15))
    log.append(imp(world, fid, 2, mult=1_000_000))
    log.append(
        {
            "t": "conv",
            "id": "o:x",
            "ts": T,
            "order": "x",
            "user": "u",
            "network": 2**63,
            "items": [["p", 1, 1]],
            "revenue": 1,
            "rid": "r",
        }
    )
    log.append([1, 2, 3])
    log.close()
    path = next((Path(world.root) / "events" / "w0").glob("events-*.seg"))
    raw_append(str(path), b"\xc1\xc1 not msgpack")
    log = SegmentWriter(f"{world.root}/events/w0", "events")
    log.append(imp(world, fid, 3))
    log.close()
    agg = Aggregator(world.store, world.root)
    drain(agg)
    assert counted(world, fid) == (2, 4_000_000)  # the two good impressions, 2.00 CPM
    rows = world.store.read("SELECT source, reason, record, network_id FROM quarantine ORDER BY id")
    assert len(rows) == 5, rows
    reasons = " | ".join(r[1] for r in rows)
    for part in ("override", "mult", "network", "not a record", "Decode"):
        assert part in reasons, reasons
    assert rows[0][3] == world.net and '"override": 1000000000000000' in rows[0][2]
    drain(agg)  # nothing is counted or quarantined twice
    assert counted(world, fid) == (2, 4_000_000)
    assert len(world.store.read("SELECT id FROM quarantine")) == 5


def test_no_total_passes_int64(world: World) -> None:  # noqa: F811
    """A row already near 2^63 nanos: the record that would push it over is quarantined
    (SQLite would have made the total a float), the other records of the same pass count."""
    near = world.flight(daily_cap=None)  # no cap: billing would stop it otherwise
    other = world.flight(name="other")
    with world.store.transaction() as db:
        db.execute(
            "INSERT INTO stats_hourly (hour, network_id, site_id, zone_id,"
            " advertiser_id, campaign_id, flight_id, ad_id, creative_id, spend_nanos)"
            " VALUES ('2026-11-25T09', ?, ?, ?, 1, 1, ?, 1, 1, ?)",
            (world.net, world.site, world.zone, near, 2**63 - 1_000_000),
        )
    log = SegmentWriter(f"{world.root}/events/w0", "events")
    log.append(imp(world, other, 10))
    log.append(imp(world, near, 11))  # +2,000,000 nanos: past 2^63
    log.append(imp(world, other, 12))
    log.close()
    drain(Aggregator(world.store, world.root))
    assert counted(world, other) == (2, 4_000_000)
    ((spend, kind),) = world.store.read(
        "SELECT spend_nanos, typeof(spend_nanos) FROM stats_hourly WHERE flight_id = ?", (near,)
    )
    assert kind == "integer" and spend == 2**63 - 1_000_000
    ((reason,),) = world.store.read("SELECT reason FROM quarantine")
    assert "2^63" in reason


def test_a_flight_the_pacer_cannot_read_is_held_back_alone(world: World) -> None:  # noqa: F811
    """A flight row the pacer cannot process (a cap of 1e30 impressions written before the
    edge checked it): quarantined and held back (throttle 0); the other flights, of every
    network, are paced as before, and a flight created later is paced too."""
    good, bad = world.flight(name="good"), world.flight(name="bad")
    with world.store.transaction() as db:
        db.execute(
            "UPDATE flights SET daily_cap = ? WHERE id = ?",
            ('{"metric": "impressions", "value": 1e30}', bad),
        )
    status = world.pacer.step(T)
    assert good in status and bad not in status
    later = world.flight(name="later")
    status = world.pacer.step(T + 10)
    assert good in status and later in status
    with world.env.begin() as txn:
        held = dict(livestate.decode(txn.get(livestate.THROTTLE)))
    assert held[bad] == 0.0
    ((source, network, reason),) = world.store.read(
        "SELECT source, network_id, reason FROM quarantine"
    )
    assert (source, network) == ("pacing", world.net) and "daily_cap" in reason


def test_the_control_process_exposes_the_quarantine_to_alert_on(control: str) -> None:
    """`adserver_quarantined_total` on the control port's /metrics (loopback may read it)."""
    import httpx

    r = httpx.get(control + "/metrics")
    assert r.status_code == 200
    for source in ("events", "decisions", "pacing"):
        assert re.search(
            rf'^adserver_quarantined_total{{source="{source}"}} \d+$', r.text, re.MULTILINE
        ), r.text


def test_the_control_process_tells_its_lag_and_job_times_and_readiness(control: str) -> None:
    import httpx

    text = httpx.get(control + "/metrics").text
    for name in (
        "adserver_control_aggregator_lag_seconds",
        "adserver_control_aggregator_lag_events",
        "adserver_control_pacing_step_seconds_count",
        "adserver_control_snapshot_publish_seconds_count",
        "adserver_control_catalog_build_seconds_count",
    ):
        assert re.search(rf"^{name} [0-9.e+-]+$", text, re.MULTILINE), name
    assert "# TYPE adserver_control_events_total counter" in text
    assert "# TYPE adserver_control_training_seconds histogram" in text
    published = float(
        re.search(r"^adserver_control_snapshot_publish_seconds_count (\S+)$", text, re.MULTILINE)[1]
    )  # type: ignore[index]
    assert published >= 0
    r = httpx.get(control + "/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ready" and r.json()["snapshot"]
