"""The listings auction routes (Topsort v2 shape) against the shop of tests/serving/shop.py:
auctions over given products, categories and queries, their errors, and events feeding the
ledger and attribution."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import httpx
import pytest

from tests.procs import ADMIN_KEY
from tests.serving.shop import Shop, product_id


def auctions(
    shop: Shop, *auctions: dict[str, Any], key: str | None = ADMIN_KEY, network: bool = True
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    params = {"network_id": shop.net} if network else {}
    return shop.client.post(
        "/v2/auctions", json={"auctions": list(auctions)}, headers=headers, params=params
    )


def winners(response: httpx.Response, i: int = 0) -> list[str]:
    assert response.status_code == 200, response.text
    result = response.json()["results"][i]
    # Topsort's result type requires `error`, false included
    assert result["resultType"] == "listings" and result["error"] is False, result
    return [w["id"] for w in result["winners"]]


def test_given_products_rank_by_bid_and_quality(shop: Shop) -> None:
    coffee = [product_id("Coffee", i) for i in range(10)]  # 0 and 7 are sponsored, 1 is out
    r = auctions(shop, {"type": "listings", "slots": 5, "products": {"ids": coffee + ["nope"]}})
    assert winners(r) == [product_id("Coffee", 7), product_id("Coffee", 0)]  # bids .31, .30
    first = r.json()["results"][0]["winners"][0]
    assert first["rank"] == 1 and first["type"] == "product" and first["resolvedBidId"]
    assert first["campaignId"].isdigit()
    r = auctions(
        shop,
        {
            "type": "listings",
            "slots": 5,
            "products": {
                "ids": [product_id("Coffee", 0), product_id("Coffee", 7)],
                "qualityScores": [1, 0.5],
            },
        },
    )
    assert winners(r) == [product_id("Coffee", 0), product_id("Coffee", 7)]
    r = auctions(
        shop,
        {
            "type": "listings",
            "slots": 1,
            "products": {"ids": [product_id("Yoga", 0), product_id("Coffee", 3)]},
        },
    )
    assert winners(r) == [product_id("Yoga", 0)]  # only given products, never others


def test_categories_and_queries(shop: Shop) -> None:
    r = auctions(
        shop,
        {"type": "listings", "slots": 4, "category": {"id": "Headphones"}},
        {"type": "listings", "slots": 9, "category": {"disjunctions": [["Coffee", "Yoga"]]}},
        {"type": "listings", "slots": 4, "category": {"ids": ["Pets", "Dog Food"]}},
        {"type": "listings", "slots": 4, "searchQuery": "puppy food"},
        {"type": "listings", "slots": 4, "searchQuery": "quantum physics"},
    )
    assert set(winners(r, 0)) == {product_id("Headphones", 0), product_id("Headphones", 7)}
    assert set(winners(r, 1)) == {
        product_id("Coffee", 0),
        product_id("Coffee", 7),
        product_id("Yoga", 0),
        product_id("Yoga", 7),
    }
    assert set(winners(r, 2)) == {product_id("Dog Food", 0), product_id("Dog Food", 7)}
    assert set(winners(r, 3)) == {product_id("Dog Food", 0), product_id("Dog Food", 7)}
    assert winners(r, 4) == []
    r = auctions(
        shop,
        {
            "type": "listings",
            "slots": 4,
            "category": {"id": "Coffee"},
            "searchQuery": "whole bean coffee",
        },
        {"type": "listings", "slots": 4, "category": {"id": "Coffee"}, "searchQuery": "yoga mat"},
    )
    assert product_id("Coffee", 0) in winners(r, 0)
    assert winners(r, 1) == []  # in the category, but not relevant to the query


@pytest.mark.parametrize("query", ["xqzv plorkt", "vvkq jjxw zzpt"])
def test_a_query_of_unknown_words_wins_nothing(shop: Shop, query: str) -> None:
    assert winners(auctions(shop, {"type": "listings", "slots": 4, "searchQuery": query})) == []


def test_explain_says_why_each_ad_won_or_lost(shop: Shop) -> None:
    body = {"type": "listings", "slots": 2, "searchQuery": "wireless headphones"}
    plain = auctions(shop, body).json()["results"][0]
    assert "explain" not in plain  # only when asked
    r = shop.client.post(
        "/v2/auctions",
        params={"network_id": shop.net, "explain": "true"},
        json={"auctions": [body]},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    result = r.json()["results"][0]
    assert result["error"] is False and set(winners(r)) == {
        product_id("Headphones", 0),
        product_id("Headphones", 7),
    }
    fates = {x["adId"]: x for x in result["explain"]["results"]}
    for ad in shop.ads["Headphones"]:
        assert fates[ad]["result"] == "chosen" and fates[ad]["relevance"] >= 0.3
    assert fates[shop.wrong_keyword_ad]["result"] == "not relevant to the query or page"


@pytest.mark.parametrize(
    "body, status, field",
    [
        ({"auctions": []}, 400, "auctions"),
        ({"auctions": [{"type": "listings", "slots": 1, "searchQuery": "x"}] * 6}, 400, "auctions"),
        (
            {"auctions": [{"type": "listings", "slots": 41, "searchQuery": "x"}]},
            400,
            "auctions[0].slots",
        ),
        ({"auctions": [{"type": "video", "slots": 1}]}, 400, "auctions[0].type"),
        (
            {
                "auctions": [
                    {
                        "type": "listings",
                        "slots": 1,
                        "products": {"ids": ["a", "b"], "qualityScores": [1]},
                    }
                ]
            },
            400,
            "auctions[0].products.qualityScores",
        ),
        (
            {
                "auctions": [
                    {
                        "type": "listings",
                        "slots": 1,
                        "products": {"ids": ["a"], "qualityScores": [0]},
                    }
                ]
            },
            400,
            "auctions[0].products.qualityScores",
        ),
    ],
)
def test_bad_auctions_are_400_naming_the_field(
    shop: Shop, body: dict, status: int, field: str
) -> None:
    r = shop.client.post(
        "/v2/auctions",
        json=body,
        params={"network_id": shop.net},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    assert r.status_code == status, r.text
    assert r.json()["error"]["fields"][0]["field"] == field


def test_auth_and_per_auction_errors(shop: Shop) -> None:
    one = {"type": "listings", "slots": 1, "searchQuery": "coffee"}
    assert auctions(shop, one, key=None).status_code == 401
    assert auctions(shop, one, key="ak_nope_nope").status_code == 401
    r = auctions(shop, one, network=False)  # an unscoped key must name the network
    assert r.status_code == 400 and r.json()["error"]["fields"][0]["field"] == "network_id"
    ro = shop.admin.post("/v1/keys", json={"role": "readonly", "network_id": shop.net}).json()
    time.sleep(1.0)  # keys reach the workers with the next snapshot
    assert winners(auctions(shop, one, key=ro["key"], network=False)) == [product_id("Coffee", 7)]
    r = auctions(shop, {"type": "banners", "slots": 1}, {"type": "listings", "slots": 1})
    results = r.json()["results"]
    assert results[0]["error"] is True and "not supported" in results[0]["message"]
    assert results[1]["error"] is True and "needs products" in results[1]["message"]


def ledger(shop: Shop, flight: int) -> dict[str, int]:
    rows = shop.admin.get("/v1/reports", params={"group_by": "flight", "interval": "none"}).json()[
        "data"
    ]
    row = next((r for r in rows if r["flight_id"] == flight), {})
    return {k: row.get(k, 0) for k in ("impressions", "clicks", "conversions")}


def test_events_count_once_and_purchases_attribute(shop: Shop) -> None:
    r = auctions(
        shop,
        {
            "type": "listings",
            "slots": 1,
            "opaqueUserId": "shopper-1",
            "products": {"ids": [product_id("Yoga", 7)]},
        },
    )
    win = r.json()["results"][0]["winners"][0]
    flight = next(ad for ad, pid in shop.product_of_ad.items() if pid == product_id("Yoga", 7))
    before = ledger(shop, flight)
    bid = win["resolvedBidId"]
    at = dt.datetime.now(dt.UTC).isoformat()  # the purchase follows the click
    events = {
        "impressions": [{"id": "imp-1", "resolvedBidId": bid, "occurredAt": at}] * 2,
        "clicks": [
            {"id": "clk-1", "resolvedBidId": bid, "occurredAt": at},
            {"id": "clk-x", "resolvedBidId": bid[:-3] + "AAA"},
        ],
        "purchases": [
            {
                "id": "order-1",
                "opaqueUserId": "shopper-1",
                "occurredAt": at,
                "items": [{"productId": product_id("Yoga", 7), "unitPrice": 19.5, "quantity": 2}],
            },
            {"id": "order-2", "items": [{"productId": "x", "unitPrice": 1}]},
        ],
    }
    r = shop.client.post(
        "/v2/events",
        json=events,
        params={"network_id": shop.net},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] == 4
    assert {x["id"] for x in body["rejected"]} == {"clk-x", "order-2"}
    deadline = time.monotonic() + 15
    while ledger(shop, flight) != {
        "impressions": before["impressions"] + 1,
        "clicks": before["clicks"] + 1,
        "conversions": before["conversions"] + 1,
    }:
        assert time.monotonic() < deadline, ledger(shop, flight)
        time.sleep(0.1)
    bad = shop.client.post(
        "/v2/events",
        json={"clicks": [{"id": 1}]},
        params={"network_id": shop.net},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    assert bad.status_code == 400


def test_events_need_a_key_that_may_write(shop: Shop) -> None:
    """Attack: a read-only key reports impressions, clicks and a purchase; another network's
    admin reports this network's bids; a purchase worth more than the ledger can hold. The
    read-only key is refused outright (401), the others per event, and nothing counts."""
    r = auctions(
        shop,
        {
            "type": "listings",
            "slots": 1,
            "opaqueUserId": "ro-shopper",
            "products": {"ids": [product_id("Yoga", 7)]},
        },
    )
    bid = r.json()["results"][0]["winners"][0]["resolvedBidId"]
    flight = next(ad for ad, pid in shop.product_of_ad.items() if pid == product_id("Yoga", 7))
    before = ledger(shop, flight)
    ro = shop.admin.post("/v1/keys", json={"role": "readonly", "network_id": shop.net}).json()
    other_net = shop.admin.post("/v1/networks", json={"name": "Rival"}).json()["id"]
    rival = shop.admin.post("/v1/keys", json={"role": "admin", "network_id": other_net}).json()
    time.sleep(1.0)  # keys reach the workers with the next snapshot
    events = {
        "impressions": [{"id": "ro-imp", "resolvedBidId": bid}],
        "clicks": [{"id": "ro-clk", "resolvedBidId": bid}],
        "purchases": [
            {
                "id": "ro-order",
                "opaqueUserId": "ro-shopper",
                "items": [{"productId": product_id("Yoga", 7), "unitPrice": 5}],
            }
        ],
    }
    r = shop.client.post(
        "/v2/events", json=events, headers={"Authorization": f"Bearer {ro['key']}"}
    )
    assert r.status_code == 401
    r = shop.client.post(
        "/v2/events",
        json={k: events[k] for k in ("impressions", "clicks")},
        headers={"Authorization": f"Bearer {rival['key']}"},
    )
    assert r.status_code == 200 and r.json()["accepted"] == 0
    assert {x["reason"] for x in r.json()["rejected"]} == {"resolvedBidId of another network"}
    huge = {
        "purchases": [
            {
                "id": "huge",
                "opaqueUserId": "ro-shopper",
                "items": [
                    {"productId": product_id("Yoga", 7), "unitPrice": 9_000_000, "quantity": 100}
                ],
            }
        ]
    }
    r = shop.client.post(
        "/v2/events",
        json=huge,
        params={"network_id": shop.net},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    assert r.status_code == 200 and r.json()["accepted"] == 0
    time.sleep(0.5)
    assert ledger(shop, flight) == before
