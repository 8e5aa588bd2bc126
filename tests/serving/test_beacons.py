"""Impression, click and event beacons, conversions, tokens and bot filtering."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from adzerk_decision_sdk import Client

from adserver.events.segment import read_records
from adserver.signing import Signer, read_keys
from tests.procs import ADMIN_KEY
from tests.serving.conftest import Stack

BROWSER = {"user-agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0 Safari/537.36"}


def decide(stack: Stack, user: str = "beacon-user", **extra: object) -> dict:
    body = {"placements": [{"networkId": 1, "siteId": 1, "zoneIds": [1], "adTypes": [2],
                            "eventIds": [40]}], "user": {"key": user}, **extra}
    return stack.decide(body).json()["decisions"]["div0"]


def events(stack: Stack) -> Iterator[dict]:
    for seg in sorted((stack.data_dir / "events").glob("w*/events-*.seg")):
        for _, rec in read_records(str(seg)):
            yield rec


def test_sdk_fires_pixels_with_revenue_parameters(stack: Stack) -> None:
    d = decide(stack)
    client = Client(1, host=stack.decisions)
    status, _ = client.pixels.fire(d["impressionUrl"], revenue_override=1.25,
                                   additional_revenue=0.5, event_multiplier=2,
                                   gross_merchandise_value=19.99)
    assert status == 200
    # durable before the 2xx: the record is on disk now
    recs = [r for r in events(stack) if r["t"] == "imp" and r["ad"] == d["adId"]
            and r.get("override") == 1_250_000]
    assert len(recs) == 1
    rec = recs[0]
    assert (rec["additional"], rec["mult"], rec["gmv"]) == (500_000, 2, 19_990_000)
    assert rec["price"] == 3_010_000 and rec["user"] == "beacon-user" and not rec["bot"]
    status, location = client.pixels.fire(d["clickUrl"])
    assert status == 302 and location == "https://acme.example/"
    status, _ = client.pixels.fire(d["events"][0]["url"])
    assert status == 200
    kinds = {(r["t"], r["ev"]) for r in events(stack) if r.get("req") == rec["req"]}
    assert kinds == {("imp", 1), ("click", 2), ("event", 40)}


def test_pixel_answers_a_gif(stack: Stack) -> None:
    d = decide(stack)
    r = httpx.get(d["impressionUrl"], headers=BROWSER)
    assert r.status_code == 200 and r.headers["content-type"] == "image/gif"
    assert r.content.startswith(b"GIF89a") and "no-store" in r.headers["cache-control"]


def test_click_override_url(stack: Stack) -> None:
    body = {"placements": [{"networkId": 1, "siteId": 1, "zoneIds": [1], "adTypes": [2],
                            "clickUrl": "https://example.com/landing?a=1&b=2"}]}
    d = stack.decide(body).json()["decisions"]["div0"]
    r = httpx.get(d["clickUrl"], headers=BROWSER)
    assert r.status_code == 302 and r.headers["location"] == "https://example.com/landing?a=1&b=2"


def test_bad_tokens_are_refused_and_counted(stack: Stack) -> None:
    d = decide(stack)
    good = d["impressionUrl"]
    token = good.split("t=", 1)[1]
    payload, mac = token.split(".")
    tampered = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1] + "." + mac
    before = sum(1 for _ in events(stack))
    for bad, status in ((tampered, 403), ("garbage", 400), (payload + ".AAAA", 403)):
        r = httpx.get(f"{stack.decisions}/i.gif", params={"t": bad}, headers=BROWSER)
        assert r.status_code == status, (bad, r.text)
        assert r.json()["error"]["code"] == "bad_token"
    keys = read_keys(str(stack.data_dir))
    expired = Signer(keys, ttl_s=-10).sign(
        1, ["r", 1, 1, 1, 1, 1, "d", 0, 1, "u", 0, 1, 1, 1, "https://x.example", []])
    r = httpx.get(f"{stack.decisions}/i.gif", params={"t": expired}, headers=BROWSER)
    assert r.status_code == 403 and "expired" in r.json()["error"]["message"]
    unknown = Signer({"current": "zz", "keys": {"zz": {"secret": "QUFBQQ"}}}).sign(1, [])
    r = httpx.get(f"{stack.decisions}/i.gif", params={"t": unknown}, headers=BROWSER)
    assert r.status_code == 403 and "unknown key" in r.json()["error"]["message"]
    r = httpx.get(d["events"][0]["url"].replace("e=40", "e=3"), headers=BROWSER)
    assert r.status_code == 400  # an event the decision did not ask for
    assert sum(1 for _ in events(stack)) == before  # nothing recorded
    text = stack.client.get("/metrics").text
    for reason in ("bad signature", "malformed", "expired", "unknown key",
                   "event not asked for"):
        assert f'adserver_refused_tokens_total{{reason="{reason}"}}' in text


def test_bad_revenue_parameters(stack: Stack) -> None:
    d = decide(stack)
    r = httpx.get(d["impressionUrl"] + "&override=abc", headers=BROWSER)
    assert r.status_code == 400 and r.json()["error"]["fields"][0]["field"] == "override"
    r = httpx.get(d["impressionUrl"] + "&eventMultiplier=0", headers=BROWSER)
    assert r.status_code == 400


@pytest.mark.parametrize("headers, bot", [
    (BROWSER, False),
    ({"user-agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"}, True),
    ({"user-agent": ""}, True),
    ({**BROWSER, "sec-purpose": "prefetch;prerender"}, True),
])
def test_bot_filtering_when_asked(stack: Stack, headers: dict, bot: bool) -> None:
    user = f"bot-test-{headers.get('user-agent', '')[:8]}-{len(headers)}"
    d = decide(stack, user=user, enableBotFiltering=True)
    assert httpx.get(d["impressionUrl"], headers=headers).status_code == 200
    (rec,) = [r for r in events(stack) if r["t"] == "imp" and r["user"] == user]
    assert rec["bot"] is bot and rec["botf"] == 1


def test_bot_filtering_off_unless_asked(stack: Stack) -> None:
    d = decide(stack, user="bot-not-asked")
    httpx.get(d["impressionUrl"], headers={"user-agent": "Googlebot/2.1"})
    (rec,) = [r for r in events(stack) if r["t"] == "imp" and r["user"] == "bot-not-asked"]
    assert rec["bot"] is False and rec["botf"] == 0


def test_conversions(stack: Stack) -> None:
    url = f"{stack.decisions}/v1/conversions"
    good = {"order_id": "o-1", "user_key": "beacon-user", "network_id": 1,
            "items": [{"product_id": "SKU-1", "unit_price": "19.99", "quantity": 2}]}
    assert httpx.post(url, json=good).status_code == 401
    auth = {"X-Api-Key": ADMIN_KEY}
    r = httpx.post(url, json=good, headers=auth)
    assert r.status_code == 202 and r.json() == {"order_id": "o-1", "accepted": True}
    rec = [r for r in events(stack) if r["t"] == "conv"][-1]
    assert rec["id"] == "o:1:o-1" and rec["revenue"] == 39_980_000
    assert rec["items"] == [["SKU-1", 19_990_000, 2]]
    before = sum(1 for _ in events(stack))
    bad = {**good, "items": [{"product_id": "", "unit_price": "-1", "quantity": 0}],
           "extra": 1}
    r = httpx.post(url, json=bad, headers=auth)
    assert r.status_code == 400
    fields = {f["field"] for f in r.json()["error"]["fields"]}
    assert "extra" in fields and any(f.startswith("items") for f in fields)
    r = httpx.post(url, content=b"{", headers=auth)
    assert r.status_code == 400
    time.sleep(0.05)
    assert sum(1 for _ in events(stack)) == before  # nothing recorded
