"""The console's whole journey against a real `adserver run` (both planes, the shop's
catalog): an advertiser signs in, creates a campaign, a flight, a product creative and an
ad; an admin approves the creative in the review queue; the advertiser's preview shows its
ad served (with its clearing price, and why its ads won or lost); a storefront then shows
the ad and fires its impression and click beacons, and the advertiser's report counts them.
Also: an explain credential is only what it says (attack tests on the decision port)."""

from __future__ import annotations

import time
from typing import Any

import httpx
from playwright.sync_api import Browser

from tests.console.conftest import PASSWORD
from tests.console.pages import Watched, sign_in
from tests.control.network import created
from tests.serving.shop import Shop, product_id


def _people(shop: Shop) -> dict[str, Any]:
    a = shop.admin
    adv = created(a, "/v1/advertisers", {"network_id": shop.net, "name": "Journey Brand"})
    people = {
        "buyer": {
            "email": f"buyer{adv['id']}@journey.example",
            "role": "advertiser",
            "advertiser_id": adv["id"],
        },
        "ops": {
            "email": f"ops{adv['id']}@journey.example",
            "role": "admin",
            "network_id": shop.net,
        },
    }
    for p in people.values():
        created(a, "/v1/users", {**p, "password": PASSWORD})
    prio = next(
        p
        for p in a.get("/v1/priorities", params={"limit": 1000}).json()["data"]
        if p["name"] == "Sponsored" and p["archived"] is False
    )
    return {"advertiser": adv, "people": people, "priority": prio}


def test_from_campaign_to_report_in_the_browser(browser: Browser, shop: Shop) -> None:
    world = _people(shop)
    base = str(shop.admin.base_url).rstrip("/")
    product = product_id("Yoga", 20)  # not sponsored by the shop's own flights
    buyer = Watched(browser.new_context().new_page(), base)
    page = buyer.page
    sign_in(page, base, world["people"]["buyer"]["email"])

    page.goto(f"{base}/console/campaigns/new")
    page.get_by_label("Name (required)").fill("Yoga season")
    page.get_by_role("button", name="Create campaign").click()
    page.wait_for_url(f"{base}/console/campaigns/*")
    page.get_by_role("link", name="new").first.click()  # a new flight of this campaign
    page.get_by_label("Priority (required)").select_option(str(world["priority"]["id"]))
    page.get_by_label("Name (required)").fill("Yoga mats, CPC")
    page.get_by_label("Start").fill("2026-01-01T00:00")
    page.get_by_label("Rate type").select_option("cpc")
    page.get_by_label("Price (required)").fill("9.50")
    page.get_by_role("button", name="Create flight").click()
    page.wait_for_url(f"{base}/console/flights/*")
    flight = int(page.url.rsplit("/", 1)[1])

    page.goto(f"{base}/console/creatives/new")
    page.get_by_label("Ad type").select_option(str(shop.type))
    page.get_by_label("Name (required)").fill("Yoga mat tile")
    page.get_by_label("Kind (required)").select_option("product")
    # the product field suggests the network's catalog
    assert page.locator(f"#product_id-choices option[value='{product}']").count() == 1
    page.get_by_label("Product").fill(product)
    page.get_by_label("Status").select_option("pending")
    page.get_by_role("button", name="Create creative").click()
    page.wait_for_url(f"{base}/console/creatives/*")
    creative = int(page.url.rsplit("/", 1)[1])

    page.goto(f"{base}/console/ads/new?flight_id={flight}")
    page.get_by_label("Creative (required)").select_option(str(creative))
    page.get_by_role("button", name="Create ad").click()
    page.wait_for_url(f"{base}/console/ads/*")
    ad = int(page.url.rsplit("/", 1)[1])

    ops = Watched(browser.new_context().new_page(), base)
    sign_in(ops.page, base, world["people"]["ops"]["email"])
    ops.page.goto(f"{base}/console/review")
    ops.page.locator(f"#creative-{creative}").get_by_role("button", name="Approve").click()
    ops.page.wait_for_url(f"{base}/console/review")
    assert ops.page.locator(f"#creative-{creative}").count() == 0

    # the preview: the ad serves once a snapshot carries it
    query = (
        f"site_id={shop.site}&zone_id={shop.zone}&ad_type_id={shop.type}&count=3"
        "&search=yoga+mat&show=1"
    )
    deadline = time.monotonic() + 30
    while True:
        page.goto(f"{base}/console/preview?{query}")
        if page.locator("#winners").get_by_text(f"Your ad {ad}").count():
            break
        assert time.monotonic() < deadline, page.locator("main").inner_text()
        time.sleep(0.5)
    winner = page.locator("#winners li", has_text=f"Your ad {ad}")
    assert winner.get_by_text("Clearing price").is_visible()
    assert page.locator("#fates").get_by_text(str(ad)).count() >= 1

    # a storefront shows it and fires its beacons
    r = shop.client.post(
        "/api/v2",
        json={
            "placements": [
                {
                    "divName": "s",
                    "networkId": shop.net,
                    "siteId": shop.site,
                    "zoneIds": [shop.zone],
                    "adTypes": [shop.type],
                    "count": 3,
                }
            ],
            "searchTerm": "yoga mat",
            "user": {"key": "journey-shopper"},
        },
    )
    mine = [d for d in r.json()["decisions"]["s"] or [] if d["adId"] == ad]
    assert mine, r.text
    with httpx.Client(timeout=10, follow_redirects=False) as http:
        assert http.get(mine[0]["impressionUrl"]).status_code == 200
        assert http.get(mine[0]["clickUrl"]).status_code in (204, 302)  # a product: no page

    # the report counts them
    deadline = time.monotonic() + 60
    while True:
        page.goto(f"{base}/console/reports?group=flight&metric=clicks")
        row = page.locator("#totals tr", has_text="Yoga mats, CPC")
        if row.count() and row.locator("td").nth(2).inner_text() == "1":
            break
        assert time.monotonic() < deadline, page.locator("main").inner_text()
        time.sleep(1)
    assert row.locator("td").nth(1).inner_text() == "1"  # one impression
    assert row.locator("td").nth(8).inner_text() == "7 d click, 1 d view"  # its windows
    page.locator("#chart .main-svg").first.wait_for()
    assert page.locator("#chart .scatterlayer .trace").count() >= 1  # the chart drew its line
    assert buyer.problems() == [] and ops.problems() == []
    assert buyer.outside == [] and ops.outside == []


def test_an_explain_credential_is_only_what_it_says(shop: Shop) -> None:
    from adserver.common import clock
    from adserver.formats import signing

    world = _people(shop)
    data = shop.data_dir
    signer = signing.Signer(signing.read_keys(data))
    body = {
        "placements": [
            {
                "divName": "s",
                "networkId": shop.net,
                "siteId": shop.site,
                "zoneIds": [shop.zone],
                "adTypes": [shop.type],
                "count": 3,
            }
        ],
        "searchTerm": "coffee",
        "notrack": True,
    }

    def explained(credential: str) -> httpx.Response:
        return shop.client.post("/api/v2", json=body, headers={"X-Adzerk-Explain": credential})

    own = signing.explain_token(
        signer, "advertiser", shop.net, world["advertiser"]["id"], clock.now()
    )
    r = explained(own)
    assert r.status_code == 200 and r.json()["explain"] is not None
    results = r.json()["explain"]["s"]["results"]
    assert all(x["adId"] not in shop.product_of_ad for x in results)  # none of the shop's ads
    # Attack: a tracking token, a tampered scope, an expired credential, another kind
    d = shop.client.post("/api/v2", json={**body, "notrack": False}).json()["decisions"]["s"][0]
    tracking = d["impressionUrl"].split("t=", 1)[1]
    expired = signing.explain_token(signer, "admin", None, None, clock.now() - 3600)
    payload, mac = own[3:].split(".")
    forged = (
        signing.EXPLAIN_PREFIX + payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + mac
    )
    for credential in (signing.EXPLAIN_PREFIX + tracking, expired, forged, "xt_", "xt_..."):
        r = explained(credential)
        assert r.status_code == 200 and r.json().get("explain") is None, credential
        assert r.headers.get("x-adserver-explain", "").startswith("refused")
    # and an explain credential is no beacon
    r = shop.client.get("/i.gif", params={"t": own[3:]})
    assert r.status_code == 400 and "refused" in r.text


def test_health_and_pacing_pages(browser: Browser, shop: Shop) -> None:
    world = _people(shop)
    base = str(shop.admin.base_url).rstrip("/")
    w = Watched(browser.new_context().new_page(), base)
    page = w.page
    sign_in(page, base, world["people"]["ops"]["email"])
    page.get_by_role("link", name="Health").click()
    assert page.locator("#control-state").inner_text().startswith("Ready")
    decisions = page.locator("#decision-state").inner_text()
    assert decisions.startswith("Ready at") and "serving snapshot" in decisions
    # a flight with a custom curve: its pacing page draws the curve
    curve = [1.0] * 8 + [4.0] * 8 + [2.0] * 8
    flight = created(
        shop.admin,
        "/v1/flights",
        {
            "campaign_id": created(
                shop.admin,
                "/v1/campaigns",
                {"advertiser_id": world["advertiser"]["id"], "name": "Curved"},
            )["id"],
            "priority_id": world["priority"]["id"],
            "name": "Evening heavy",
            "start": "2026-01-01T00:00:00Z",
            "rate_type": "cpc",
            "price": "0.50",
            "daily_cap": {"metric": "spend", "value": "20"},
            "pacing": "custom",
            "pacing_curve": curve,
        },
    )
    page.goto(f"{base}/console/flights/{flight['id']}")
    page.get_by_role("link", name="Pacing today").click()
    page.locator("#curve-chart .main-svg").first.wait_for()
    assert page.locator("#curve-chart .bars .point").count() == 24
    assert w.problems() == [] and w.outside == []
    # an advertiser reaches neither the health page nor another advertiser's pacing
    buyer = Watched(browser.new_context().new_page(), base)
    sign_in(buyer.page, base, world["people"]["buyer"]["email"])
    buyer.page.goto(f"{base}/console/health")
    assert buyer.page.get_by_role("heading", name="Not found").is_visible()
    theirs = shop.ads["Coffee"][0]
    their_flight = shop.admin.get(f"/v1/ads/{theirs}").json()["flight_id"]
    buyer.page.goto(f"{base}/console/flights/{their_flight}/pacing")
    assert buyer.page.get_by_role("heading", name="Not found").is_visible()
