"""Impression, click and event beacons, conversions, tokens and bot filtering."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from adzerk_decision_sdk import Client

from adserver.formats.segment import read_records
from adserver.formats.signing import Signer, read_keys
from tests.procs import ADMIN_KEY
from tests.serving.conftest import Stack

BROWSER = {"user-agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0 Safari/537.36"}


def decide(stack: Stack, user: str = "beacon-user", **extra: object) -> dict:
    body = {
        "placements": [
            {"networkId": 1, "siteId": 1, "zoneIds": [1], "adTypes": [2], "eventIds": [40]}
        ],
        "user": {"key": user},
        **extra,
    }
    return stack.decide(body).json()["decisions"]["div0"]


def events(stack: Stack) -> Iterator[dict]:
    for seg in sorted((stack.data_dir / "events").glob("w*/events-*.seg")):
        for _, rec in read_records(str(seg)):
            yield rec


def test_sdk_fires_pixels(stack: Stack) -> None:
    d = decide(stack)
    client = Client(1, host=stack.decisions)
    status, _ = client.pixels.fire(d["impressionUrl"])
    assert status == 200
    # durable before the 2xx: the record is on disk now
    rec = [r for r in events(stack) if r["t"] == "imp" and r["user"] == "beacon-user"][-1]
    assert rec["price"] == 3_010_000 and not rec["bot"] and "override" not in rec
    status, location = client.pixels.fire(d["clickUrl"])
    assert status == 302 and location == "https://acme.example/"
    status, _ = client.pixels.fire(d["events"][0]["url"])
    assert status == 200
    kinds = {(r["t"], r["ev"]) for r in events(stack) if r.get("req") == rec["req"]}
    assert kinds == {("imp", 1), ("click", 2), ("event", 40)}


def other_network_keys(stack: Stack) -> dict[str, str]:
    """Keys that must not adjust network 1's bill: an admin of another network and a
    read-only key of network 1, once the decision server knows them."""
    net = stack.admin.post("/v1/networks", json={"name": "Elsewhere"}).json()["id"]
    made = {
        name: stack.admin.post("/v1/keys", json=body).json()["key"]
        for name, body in (
            ("other admin", {"role": "admin", "network_id": net}),
            ("readonly", {"role": "readonly", "network_id": 1}),
            ("admin", {"role": "admin", "network_id": 1}),
        )
    }
    probe = {"placements": [{"networkId": 1, "siteId": 1, "zoneIds": [1], "adTypes": [2]}]}
    stack.wait_for(
        lambda: (
            "explain" in stack.decide(probe, headers={"X-Adzerk-Explain": made["readonly"]}).json()
        )
    )  # in the snapshot
    return made


def test_revenue_adjustments_only_server_to_server(stack: Stack) -> None:
    """Attack: append override/additional/eventMultiplier/gmv to a tracking URL. From a
    browser (GET), or POSTed with a key that is not an admin of the flight's network, it is
    refused (403) and nothing is recorded; the SDK's pixel call carries no key, so it is
    refused too. POSTed with the network's admin key, within the bounds, it counts."""
    keys = other_network_keys(stack)
    client = Client(1, host=stack.decisions)
    d = decide(stack, user="adjusted")
    adjusted = d["impressionUrl"] + "&override=1000000000"
    before = sum(1 for _ in events(stack))
    assert httpx.get(adjusted, headers=BROWSER).status_code == 403
    r = httpx.get(d["impressionUrl"] + "&eventMultiplier=10000", headers=BROWSER)
    assert r.status_code in (400, 403)
    status, _ = client.pixels.fire(d["impressionUrl"], revenue_override=1.25)
    assert status == 403
    for name in ("other admin", "readonly"):
        r = httpx.post(d["impressionUrl"] + "&override=1.25", headers={"X-Api-Key": keys[name]})
        assert r.status_code == 403, (name, r.text)
        assert r.json()["error"]["fields"][0]["field"] == "override"
    r = httpx.post(d["clickUrl"] + "&additional=5", headers={"X-Api-Key": "ak_nope_nope"})
    assert r.status_code == 403
    assert sum(1 for _ in events(stack)) == before  # nothing recorded
    # over the bounds, even with the right key: 400 naming the parameter
    admin = {"X-Api-Key": keys["admin"]}
    for extra, field in (
        ("&override=1000000000", "override"),
        ("&additional=1001", "additional"),
        ("&eventMultiplier=101", "eventMultiplier"),
        ("&eventMultiplier=%C2%B2", "eventMultiplier"),
        ("&gmv=1e30", "gmv"),
        ("&override=0.0000001", "override"),
    ):
        r = httpx.post(d["impressionUrl"] + extra, headers=admin)
        assert r.status_code == 400 and r.json()["error"]["fields"][0]["field"] == field, extra
    assert sum(1 for _ in events(stack)) == before
    r = httpx.post(
        d["impressionUrl"] + "&override=1.25&additional=0.5&eventMultiplier=2&gmv=19.99",
        headers=admin,
    )
    assert r.status_code == 200
    (rec,) = [r for r in events(stack) if r["t"] == "imp" and r["user"] == "adjusted"]
    assert (rec["override"], rec["additional"], rec["mult"], rec["gmv"]) == (
        1_250_000,
        500_000,
        2,
        19_990_000,
    )
    # the unscoped bootstrap key is an admin everywhere
    e = decide(stack, user="adjusted-2")
    r = httpx.post(e["impressionUrl"] + "&override=2", headers={"X-Adzerk-ApiKey": ADMIN_KEY})
    assert r.status_code == 200


@pytest.mark.parametrize(
    "dest",
    [
        "javascript:alert(document.cookie)",
        "data:text/html,<b>x",
        "//evil.example/",
        "/relative",
        "https:///nohost",
        "vbscript:x",
        " https://space.example",
    ],
)
def test_unsafe_click_destinations_are_refused(stack: Stack, dest: str) -> None:
    """Attack: a placement clickUrl that would turn the signed redirect into an XSS or an
    open redirect to a scheme-relative host. The decision is refused, naming the field."""
    body = {
        "placements": [
            {"networkId": 1, "siteId": 1, "zoneIds": [1], "adTypes": [2], "clickUrl": dest}
        ]
    }
    r = stack.decide(body)
    assert (
        r.status_code == 400 and r.json()["error"]["fields"][0]["field"] == "placements[0].clickUrl"
    )


def test_a_signed_unsafe_destination_is_never_redirected_to(stack: Stack) -> None:
    """A token signed with an unsafe destination (before destinations were checked) still
    counts its click but sends no one there."""
    keys = read_keys(str(stack.data_dir))
    token = Signer(keys).sign(
        1, ["r-x", 1, 1, 1, 1, 1, "d", 0, 1, "u-x", 0, 1, 1, 1, "javascript:alert(1)", []]
    )
    r = httpx.get(f"{stack.decisions}/r", params={"t": token}, headers=BROWSER)
    assert r.status_code == 204 and "location" not in r.headers


def test_creative_click_urls_must_be_http(stack: Stack) -> None:
    body = {
        "advertiser_id": 1,
        "ad_type_id": 2,
        "name": "evil",
        "kind": "image",
        "image_url": "https://img.example/e.png",
        "click_url": "javascript:alert(1)",
    }
    r = stack.admin.post("/v1/creatives", json=body)
    assert r.status_code == 400 and r.json()["error"]["fields"][0]["field"] == "click_url"


def test_pixel_answers_a_gif(stack: Stack) -> None:
    d = decide(stack)
    r = httpx.get(d["impressionUrl"], headers=BROWSER)
    assert r.status_code == 200 and r.headers["content-type"] == "image/gif"
    assert r.content.startswith(b"GIF89a") and "no-store" in r.headers["cache-control"]


def test_click_override_url(stack: Stack) -> None:
    body = {
        "placements": [
            {
                "networkId": 1,
                "siteId": 1,
                "zoneIds": [1],
                "adTypes": [2],
                "clickUrl": "https://example.com/landing?a=1&b=2",
            }
        ]
    }
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
        1, ["r", 1, 1, 1, 1, 1, "d", 0, 1, "u", 0, 1, 1, 1, "https://x.example", []]
    )
    r = httpx.get(f"{stack.decisions}/i.gif", params={"t": expired}, headers=BROWSER)
    assert r.status_code == 403 and "expired" in r.json()["error"]["message"]
    unknown = Signer({"current": "zz", "keys": {"zz": {"secret": "QUFBQQ"}}}).sign(1, [])
    r = httpx.get(f"{stack.decisions}/i.gif", params={"t": unknown}, headers=BROWSER)
    assert r.status_code == 403 and "unknown key" in r.json()["error"]["message"]
    r = httpx.get(d["events"][0]["url"].replace("e=40", "e=3"), headers=BROWSER)
    assert r.status_code == 400  # an event the decision did not ask for
    assert sum(1 for _ in events(stack)) == before  # nothing recorded
    text = stack.client.get("/metrics").text
    for reason in ("bad signature", "malformed", "expired", "unknown key", "event not asked for"):
        assert f'adserver_refused_tokens_total{{reason="{reason}"}}' in text


@pytest.mark.parametrize(
    "headers, bot",
    [
        (BROWSER, False),
        ({"user-agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"}, True),
        ({"user-agent": ""}, True),
        ({**BROWSER, "sec-purpose": "prefetch;prerender"}, True),
    ],
)
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
    good = {
        "order_id": "o-1",
        "user_key": "beacon-user",
        "network_id": 1,
        "items": [{"product_id": "SKU-1", "unit_price": "19.99", "quantity": 2}],
    }
    assert httpx.post(url, json=good).status_code == 401
    auth = {"X-Api-Key": ADMIN_KEY}
    r = httpx.post(url, json=good, headers=auth)
    assert r.status_code == 202 and r.json() == {"order_id": "o-1", "accepted": True}
    rec = [r for r in events(stack) if r["t"] == "conv"][-1]
    assert rec["id"] == "o:1:o-1" and rec["revenue"] == 39_980_000
    assert rec["items"] == [["SKU-1", 19_990_000, 2]]
    before = sum(1 for _ in events(stack))
    bad = {**good, "items": [{"product_id": "", "unit_price": "-1", "quantity": 0}], "extra": 1}
    r = httpx.post(url, json=bad, headers=auth)
    assert r.status_code == 400
    fields = {f["field"] for f in r.json()["error"]["fields"]}
    assert "extra" in fields and any(f.startswith("items") for f in fields)
    r = httpx.post(url, content=b"{", headers=auth)
    assert r.status_code == 400
    time.sleep(0.05)
    assert sum(1 for _ in events(stack)) == before  # nothing recorded


def test_conversions_are_scoped_and_bounded(stack: Stack) -> None:
    """Attack: another network's admin key writes orders into network 1; a read-only key
    writes at all; ids and amounts past what the ledger can hold; JSON nested 5,000 deep.
    Each is refused with a 4xx naming the field, and nothing is recorded."""
    keys = other_network_keys(stack)
    url = f"{stack.decisions}/v1/conversions"
    good = {
        "order_id": "scoped-1",
        "user_key": "u",
        "network_id": 1,
        "items": [{"product_id": "SKU-1", "unit_price": "1.00"}],
    }
    before = sum(1 for _ in events(stack))
    assert httpx.post(url, json=good, headers={"X-Api-Key": keys["other admin"]}).status_code == 404
    assert httpx.post(url, json=good, headers={"X-Api-Key": keys["readonly"]}).status_code == 401
    auth = {"X-Api-Key": keys["admin"]}
    for body, field in (
        ({**good, "network_id": 9223372036854775808}, "network_id"),
        ({**good, "network_id": 77}, "network_id"),
        ({**good, "items": [{"product_id": "a", "unit_price": 1e30}]}, "items[0].unit_price"),
        (
            {**good, "items": [{"product_id": "a", "unit_price": "9000000", "quantity": 100}]},
            "items",
        ),
        ({**good, "revenue": "1e12"}, "revenue"),
        ({**good, "occurred_at": 1e300}, "occurred_at"),
    ):
        r = httpx.post(url, json=body, headers=auth)
        assert r.status_code in (400, 404), (body, r.text)
        assert field in {f["field"] for f in r.json()["error"].get("fields", [])}, (field, r.text)
    deep = b'{"a":' * 5000 + b"1" + b"}" * 5000
    r = httpx.post(url, content=deep, headers=auth)
    assert r.status_code == 400
    assert sum(1 for _ in events(stack)) == before
    assert httpx.post(url, json=good, headers=auth).status_code == 202
