"""Crash safety: a SIGKILLed worker loses no acknowledged beacon; a SIGKILLed control
process neither loses nor doubles a count; a torn tail record is skipped, never misread."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import httpx

from adserver.control.aggregator import Aggregator
from adserver.control.store import Store
from adserver.formats.segment import SegmentWriter, read_records
from tests.procs import env_for, running, wait_ready
from tests.serving.conftest import golden_stack
from tests.serving.test_workers import workers_of

BROWSER = {"user-agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0 Safari/537.36"}
HOME = {"networkId": 1, "siteId": 1, "zoneIds": [1], "adTypes": [2]}


def _decisions(url: str, n: int) -> list[str]:
    """Impression URLs of n decisions (one ad each)."""
    body = {"placements": [{**HOME, "count": 1}]}
    out = []
    with httpx.Client(base_url=url, timeout=10) as c:
        while len(out) < n:
            d = c.post("/api/v2", json={**body, "user": {"key": f"u{len(out)}"}}).json()
            if d["decisions"]["div0"]:
                out.append(d["decisions"]["div0"]["impressionUrl"])
    return out


def _counted(data: Path) -> list[str]:
    con = sqlite3.connect(f"file:{data / 'control.sqlite3'}?mode=ro", uri=True)
    try:
        return [r[0] for r in con.execute("SELECT event_id FROM touches WHERE kind = 'imp'")]
    finally:
        con.close()


def _fire(urls: list[str], acked: list[str], stop: threading.Event) -> None:
    with httpx.Client(timeout=5, headers=BROWSER) as c:
        for u in urls:
            if stop.is_set():
                return
            try:
                if c.get(u).status_code == 200:
                    acked.append(u)
            except httpx.TransportError:
                pass  # the worker died under us: not acknowledged, may or may not count


def test_worker_sigkill_during_beacons(tmp_path: Path) -> None:
    with golden_stack(tmp_path) as s:
        urls = _decisions(s.decisions, 400)
        acked: list[str] = []
        stop = threading.Event()
        firing = [threading.Thread(target=_fire, args=(urls[i::4], acked, stop)) for i in range(4)]
        for t in firing:
            t.start()
        time.sleep(0.3)
        (worker,) = workers_of(s.proc.popen.pid)
        os.kill(worker, signal.SIGKILL)
        for t in firing:
            t.join(60)
        stop.set()
        # fire everything again after the restart: already-counted ones must not count twice
        wait_ready(s.decisions)
        again: list[str] = []
        _fire(urls, again, threading.Event())
        assert len(again) == len(urls)
        s.wait_for(lambda: len(_counted(tmp_path)) >= len(urls), 15)
        time.sleep(0.5)
        counted = _counted(tmp_path)
        assert len(counted) == len(set(counted)) == len(urls)  # each exactly once


def test_control_sigkill_keeps_counts_exact(tmp_path: Path) -> None:
    """Events are written first; the control process is killed repeatedly mid-aggregation."""
    writer = SegmentWriter(str(tmp_path / "events" / "w0"), "events")
    n = 60000
    for i in range(n):
        writer.append(
            {
                "t": "imp",
                "id": f"i:{i}",
                "ts": 1_790_000_000.0 + i,
                "req": str(i),
                "ad": 1,
                "flight": 1,
                "creative": 1,
                "campaign": 1,
                "advertiser": 1,
                "network": 1,
                "site": 1,
                "zone": 1,
                "div": "d",
                "price": 2_000_000,
                "rate": 1,
                "user": f"u{i % 50}",
                "ev": 1,
                "bot": False,
                "botf": 0,
            }
        )
        if i % 5000 == 4999:
            writer.flush(fsync=True)
    writer.close()
    Store(str(tmp_path)).close()  # migrations
    env = env_for(str(tmp_path))
    partial = []
    for delay in (0.3, 0.5, 0.7, 0.9, 1.1):
        with running(["control", "--api-port", "0"], env) as proc:
            time.sleep(delay)
            os.kill(proc.popen.pid, signal.SIGKILL)
            proc.popen.wait()
        con = sqlite3.connect(tmp_path / "control.sqlite3")
        partial.append(
            con.execute("SELECT COALESCE(SUM(impressions), 0) FROM stats_hourly").fetchone()[0]
        )
        con.close()
    with running(["control", "--api-port", "0"], env):
        deadline = time.monotonic() + 30
        while True:
            con = sqlite3.connect(tmp_path / "control.sqlite3")
            imps, spend = con.execute(
                "SELECT COALESCE(SUM(impressions), 0),"
                " COALESCE(SUM(spend_nanos), 0) FROM stats_hourly"
            ).fetchone()
            touches = con.execute("SELECT COUNT(*) FROM touches").fetchone()[0]
            con.close()
            if imps >= n or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert any(0 < p < n for p in partial), partial  # killed between batches at least once
    assert (imps, touches, spend) == (n, n, n * 2_000_000)


def test_torn_tail_is_skipped(tmp_path: Path) -> None:
    logdir = tmp_path / "events" / "w0"
    w = SegmentWriter(str(logdir), "events")
    rec = {
        "t": "imp",
        "id": "i:a",
        "ts": 1_790_000_000.0,
        "req": "a",
        "ad": 1,
        "flight": 1,
        "creative": 1,
        "campaign": 1,
        "advertiser": 1,
        "network": 1,
        "site": 1,
        "zone": 1,
        "div": "d",
        "price": 1_000_000,
        "rate": 1,
        "user": "u",
        "ev": 1,
        "bot": False,
    }
    w.append(rec)
    w.append({**rec, "id": "i:b", "req": "b"})
    w.flush(fsync=True)
    path = w.path
    w.file.close()
    with open(path, "r+b") as f:  # tear the second record: a crash mid-write
        f.truncate(os.path.getsize(path) - 7)
    assert [r["id"] for _, r in read_records(path)] == ["i:a"]
    w2 = SegmentWriter(str(logdir), "events")  # the restarted worker starts a new segment
    w2.append({**rec, "id": "i:c", "req": "c"})
    w2.close()
    store = Store(str(tmp_path))
    Aggregator(store, str(tmp_path)).run_once()
    ids = [r[0] for r in store.read("SELECT event_id FROM touches ORDER BY id")]
    assert ids == ["i:a", "i:c"]
    # a flipped bit is caught by the CRC
    with open(w2.path, "r+b") as f:
        f.seek(12)
        byte = f.read(1)
        f.seek(12)
        f.write(bytes([byte[0] ^ 0x01]))
    assert list(read_records(w2.path)) == []
