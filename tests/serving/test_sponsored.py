"""Sponsored products end to end: a catalog and its ads built through the management API,
the product index built by the control process, and Kevel requests for search, category and
product pages answered by a real decision worker."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from tests.serving.shop import Shop, product_id

BROWSER = {"user-agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0 Safari/537.36"}


@pytest.mark.parametrize(
    "query, kind",
    [
        ("whole bean coffee", "Coffee"),
        ("headphones", "Headphones"),
        ("wireless earbuds", "Headphones"),
        ("Noise-cancelling HEADPHONE", "Headphones"),
        ("puppy food", "Dog Food"),
        ("yoga mat", "Yoga"),
    ],
)
def test_search_shows_the_sponsored_products_of_that_kind(
    shop: Shop, query: str, kind: str
) -> None:
    shown = set(shop.shown(search=query)) - {shop.keyword_ad}  # it bids on "coffee"
    out_of_stock = shop.ads["Coffee"][2]
    assert shown == set(shop.ads[kind]) - {out_of_stock}, query


@pytest.mark.parametrize("query", ["quantum physics textbook", "zzqx blorp", "cheap"])
def test_an_irrelevant_query_shows_no_sponsored_product(shop: Shop, query: str) -> None:
    r = shop.decide(search=query, explain=True)
    assert r.json()["decisions"]["s"] is None
    results = r.json()["explain"]["s"]["results"]
    assert {x["result"] for x in results} <= {
        "not relevant to the query or page",
        "product unavailable",
        "keyword targeting",
    }
    assert sum(x["result"] == "not relevant to the query or page" for x in results) >= 8
    assert all(
        x["relevance"] < 0.3 for x in results if x["result"] == "not relevant to the query or page"
    )


@pytest.mark.parametrize("query", ["xqzv plorkt", "vvkq jjxw zzpt"])
def test_a_query_of_unknown_words_shows_no_sponsored_product(shop: Shop, query: str) -> None:
    # the model knows none of the words: nothing can be relevant, so no sponsored product
    # (not the placement's generic lists, as if the page had no context)
    r = shop.decide(search=query, count=4, explain=True)
    assert r.status_code == 200 and r.json()["decisions"]["s"] is None, r.text
    assert all(
        x["relevance"] < 0.3 for x in r.json()["explain"]["s"]["results"] if "relevance" in x
    )


def test_an_unknown_product_page_shows_no_sponsored_product(shop: Shop) -> None:
    assert shop.shown(count=4, properties={"productId": "NO-SUCH-PRODUCT"}) == []
    # with a category as well, the category still counts
    assert set(
        shop.shown(count=4, properties={"productId": "NO-SUCH-PRODUCT", "category": "Yoga"})
    ) == set(shop.ads["Yoga"])


def test_a_keyword_never_carries_a_product_that_does_not_match(shop: Shop) -> None:
    # the coffee flight bought "headphones": a headphones search shows headphones only
    r = shop.decide(search="wireless headphones", count=4, explain=True)
    assert set(d["adId"] for d in r.json()["decisions"]["s"]) == set(shop.ads["Headphones"])
    fate = next(
        x for x in r.json()["explain"]["s"]["results"] if x.get("adId") == shop.wrong_keyword_ad
    )
    assert fate["result"] == "not relevant to the query or page" and fate["relevance"] < 0.1
    # a keyword still lifts a product that matches: "coffee" bought, coffee searched
    assert shop.keyword_ad in shop.shown(search="coffee")


def test_category_page(shop: Shop) -> None:
    assert set(shop.shown(properties={"category": "Headphones"})) == set(shop.ads["Headphones"])
    assert set(shop.shown(properties={"category": "Pets > Dog > Dog Food"})) == set(
        shop.ads["Dog Food"]
    )
    assert shop.shown(properties={"category": "Garden"}) == []


def test_product_page_shows_similar_products_but_not_itself(shop: Shop) -> None:
    viewed_ad, other_ad = shop.ads["Yoga"]
    shown = shop.shown(properties={"productId": shop.product_of_ad[viewed_ad]})
    assert shown == [other_ad]
    # a non-sponsored product's page shows the sponsored products of its kind
    assert set(shop.shown(properties={"productId": product_id("Yoga", 3)})) == set(shop.ads["Yoga"])


def test_home_page_without_context_uses_the_placement_lists(shop: Shop) -> None:
    shown = shop.shown(count=20)  # nothing to be relevant to: every ad in stock may show
    every = {ad for ads in shop.ads.values() for ad in ads}
    assert set(shown) == every - {shop.ads["Coffee"][2]}


def test_contents_carry_the_product_and_pricing_is_second_price(shop: Shop) -> None:
    r = shop.decide(search="dog food")
    items = r.json()["decisions"]["s"]
    assert len(items) == 2
    data = items[0]["contents"][0]["data"]
    assert data["productId"] == shop.product_of_ad[items[0]["adId"]]
    assert data["title"].endswith("Dog Food") and data["category"] == ["Pets", "Dog", "Dog Food"]
    assert data["rating"] == 4.5 and data["price"] > 5 and data["available"] is True
    first, second = (d["pricing"] for d in items)
    assert first["rateType"] == 3  # CPC
    assert first["eCPM"] >= second["eCPM"]
    assert 0.05 <= first["clearPrice"] <= first["price"]
    assert second["clearPrice"] == pytest.approx(0.05)  # alone below: the floor


def test_keyword_bids_and_negative_keywords(shop: Shop) -> None:
    r = shop.decide(search="espresso beans")
    first = r.json()["decisions"]["s"][0]
    assert first["adId"] == shop.keyword_ad
    assert first["pricing"]["price"] == 2.0 and first["pricing"]["clearPrice"] <= 2.0
    # "coffee" matches the phrase keyword without a bid: the flight's price, and the
    # automatic coffee ads compete too
    items = shop.decide(search="coffee").json()["decisions"]["s"]
    ads = {d["adId"]: d for d in items}
    assert set(ads) == {shop.keyword_ad, *shop.ads["Coffee"][:2]}
    assert ads[shop.keyword_ad]["pricing"]["price"] == 0.2
    assert shop.keyword_ad not in shop.shown(search="decaf espresso")  # negative keyword
    assert shop.keyword_ad not in shop.shown(properties={"category": "Coffee"})  # no query


def test_home_page_follows_what_the_user_clicked(shop: Shop) -> None:
    everything = set(shop.shown(count=20, user="shopper-yoga"))
    assert everything > set(shop.ads["Yoga"])  # no profile yet: no context
    click = next(
        d for d in shop.decide(search="yoga mat", user="shopper-yoga").json()["decisions"]["s"]
    )["clickUrl"]
    assert httpx.get(click, headers=BROWSER).status_code in (204, 302)
    deadline = time.monotonic() + 15  # the aggregator counts the click, updates the profile
    while set(shop.shown(count=20, user="shopper-yoga")) != set(shop.ads["Yoga"]):
        assert time.monotonic() < deadline, shop.shown(count=20, user="shopper-yoga")
        time.sleep(0.1)
    assert set(shop.shown(count=20, user="someone-else")) == everything


def test_retrieval_is_kept_across_snapshot_swaps(shop: Shop) -> None:
    # what a search retrieved is kept by the product index, which a new snapshot over the
    # same index shares: a flight edited (a new snapshot) costs no new HNSW search
    def searches() -> float:
        text = shop.client.get("/metrics").text
        found = re.search(r"^adserver_retrieval_searches_total (\S+)$", text, re.M)
        assert found, "no retrieval search counter"
        return float(found.group(1))

    query = "dark roast whole bean coffee"
    before = shop.shown(search=query)
    assert before and set(before) <= set(shop.ads["Coffee"]) | {shop.keyword_ad}
    n = searches()
    assert n >= 1
    shown = shop.decide(search=query)
    assert searches() == n  # the same snapshot: its own cache
    flight = shop.admin.get(f"/v1/ads/{shop.ads['Yoga'][0]}").json()["flight_id"]
    r = shop.admin.patch(f"/v1/flights/{flight}", json={"name": "renamed: new snapshot"})
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 15
    while shop.decide().headers["x-adserver-snapshot"] == shown.headers["x-adserver-snapshot"]:
        assert time.monotonic() < deadline, "the edit published no snapshot"
        time.sleep(0.05)
    assert shop.shown(search=query) == before
    assert searches() == n  # a new snapshot, the same product index: no search
    unseen = "studio headphones for the retrieval test"
    assert set(shop.shown(search=unseen)) == set(shop.ads["Headphones"])
    assert searches() == n + 1  # a query not seen before is searched


def test_catalog_status_names_the_embedding_model(shop: Shop) -> None:
    index = shop.admin.get(f"/v1/networks/{shop.net}/catalog").json()["index"]
    model = index["embedding_model"]
    assert model["version"] == index["model"] and model["kind"] == "hashed"
    assert model["trained_on"] >= 120 and model["reason"] and model["trained_at"] > 0
    assert index["built_at"] >= model["trained_at"]
