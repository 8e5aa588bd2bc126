"""Health, readiness, metrics and the decision records a worker writes."""

from __future__ import annotations

import re
import time

import pytest

from adserver.formats.segment import read_records
from tests.serving.conftest import Stack


def test_health_and_readiness(stack: Stack) -> None:
    assert stack.client.get("/healthz").json() == {"status": "ok"}
    ready = stack.client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["snapshot"].isdigit()


def test_metrics_exposition(stack: Stack) -> None:
    stack.decide({"placements": [{"networkId": 1, "siteId": 1, "zoneIds": [1], "adTypes": [2]}]})
    text = stack.client.get("/metrics").text
    assert "adserver_decision_seconds_bucket" in text
    assert 'adserver_decision_requests_total{status="200"}' in text
    assert 'adserver_placements_total{filled="yes"}' in text
    version = stack.client.get("/readyz").json()["snapshot"]
    assert f"adserver_snapshot_version {float(int(version))}" in text


def _sample(text: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", text, re.M)
    assert found, name
    return float(found.group(1))


def test_server_time_splits_into_waiting_and_deciding(stack: Stack) -> None:
    # adserver_decision_seconds (from the worker reading a request) = the wait for its event
    # loop + the handler's own time; each answered decision is counted in all three
    names = [
        "adserver_decision_seconds",
        "adserver_decision_wait_seconds",
        "adserver_decision_handler_seconds",
    ]
    text = stack.client.get("/metrics").text
    before = {n: (_sample(text, n + "_count"), _sample(text, n + "_sum")) for n in names}
    body = {"placements": [{"networkId": 1, "siteId": 1, "zoneIds": [1], "adTypes": [2]}]}
    for _ in range(20):
        assert stack.decide(body).status_code == 200
    text = stack.client.get("/metrics").text
    count = {n: _sample(text, n + "_count") - before[n][0] for n in names}
    total = {n: _sample(text, n + "_sum") - before[n][1] for n in names}
    assert set(count.values()) == {20.0}, count
    server, wait, handler = (total[n] for n in names)
    assert wait >= 0 and 0 < handler <= server
    assert wait + handler == pytest.approx(server, rel=1e-6, abs=1e-9)


def test_decision_records(stack: Stack) -> None:
    body = {
        "placements": [
            {
                "divName": "a",
                "networkId": 1,
                "siteId": 1,
                "zoneIds": [1],
                "adTypes": [2],
                "count": 2,
            }
        ],
        "user": {"key": "record-me"},
    }
    r = stack.decide(body)
    version = r.headers["x-adserver-snapshot"]
    stack.decide({**body, "user": {"key": "not-me"}, "notrack": True})
    deadline = time.monotonic() + 5
    found = []
    while not found and time.monotonic() < deadline:
        time.sleep(0.1)
        for seg in sorted((stack.data_dir / "events").glob("w*/decisions-*.seg")):
            found += [rec for _, rec in read_records(str(seg)) if rec.get("user") == "record-me"]
    assert len(found) == 1
    rec = found[0]
    assert rec["snapshot"] == version and rec["t"] == "d" and len(rec["id"]) == 32
    div, considered, winners, min_bid, site, zone, network, category = rec["placements"][0]
    assert div == "a" and considered >= 2 and (site, zone, network) == (1, 1, 1)
    assert [w[0] for w in winners] == [1, 2]
    assert winners[0][2] == 3_010_000  # clear price in micro-units
    assert min_bid == 3_010_000  # a newcomer's eCPM must beat the last winner's 3.00
    for seg in (stack.data_dir / "events").glob("w*/decisions-*.seg"):
        assert all(rec.get("user") != "not-me" for _, rec in read_records(str(seg)))
