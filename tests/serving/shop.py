"""A small shop for the sponsored-product tests: a catalog of four kinds of product and
sponsored ads for two products of each, built through the management API of a real
`adserver run`, served once the product index is built."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.control.network import created
from tests.procs import ADMIN_KEY, env_for, running, wait_ready

KINDS = {
    "Coffee": (
        ["Grocery", "Beverages", "Coffee"],
        [
            "Whole Bean Coffee",
            "Ground Coffee",
            "Espresso Beans",
            "Cold Brew Coffee",
            "Decaf Coffee",
            "Coffee Pods",
        ],
    ),
    "Headphones": (
        ["Electronics", "Audio", "Headphones"],
        [
            "Wireless Headphones",
            "Noise Cancelling Headphones",
            "Earbuds",
            "Studio Headphones",
            "Sport Earphones",
            "Bluetooth Headset",
        ],
    ),
    "Dog Food": (
        ["Pets", "Dog", "Dog Food"],
        [
            "Dry Dog Food",
            "Puppy Food",
            "Grain Free Dog Food",
            "Wet Dog Food",
            "Senior Dog Food",
            "Dog Kibble",
        ],
    ),
    "Yoga": (
        ["Sports", "Fitness", "Yoga"],
        [
            "Yoga Mat",
            "Yoga Block",
            "Yoga Strap",
            "Cork Yoga Mat",
            "Travel Yoga Mat",
            "Yoga Bolster",
        ],
    ),
}
BRANDS = ["Acme", "Nova", "Orbit", "Zed", "Lumen"]


def product_id(kind: str, i: int) -> str:
    return f"{kind[:3].upper()}-{i:03d}"


def catalog() -> list[dict[str, Any]]:
    items = []
    for kind, (path, names) in KINDS.items():
        for i, (name, brand) in enumerate(itertools.product(names, BRANDS)):
            items.append(
                {
                    "id": product_id(kind, i),
                    "title": f"{brand} {name}",
                    "brand": brand,
                    "category": path,
                    "price": f"{5 + i % 17}.99",
                    "image_url": f"https://img.example/{kind}/{i}.jpg",
                    "data": {"rating": 4.5},
                }
            )
    items[1]["available"] = False  # a coffee product out of stock: never advertised
    return items


class Shop:
    def __init__(self, admin: httpx.Client, decisions: str):
        self.admin = admin
        self.client = httpx.Client(base_url=decisions, timeout=30)
        self.ads: dict[str, list[int]] = {}  # kind -> ad ids of its sponsored products
        self.product_of_ad: dict[int, str] = {}
        self.data_dir = ""

    def build(self) -> None:
        a = self.admin
        self.net = created(a, "/v1/networks", {"name": "Shop"})["id"]
        self.site = created(a, "/v1/sites", {"network_id": self.net, "name": "Web"})["id"]
        self.zone = created(
            a, "/v1/zones", {"site_id": self.site, "name": "search", "page_type": "search"}
        )["id"]
        self.type = created(
            a,
            "/v1/ad_types",
            {"network_id": self.net, "name": "Tile", "format": "sponsored_product"},
        )["id"]
        channel = created(
            a, "/v1/channels", {"network_id": self.net, "name": "All", "site_ids": [self.site]}
        )["id"]
        prio = created(
            a,
            "/v1/priorities",
            {"channel_id": channel, "name": "Sponsored", "tier": 1, "floor_cpc": "0.05"},
        )["id"]
        r = a.post(f"/v1/networks/{self.net}/products", json={"products": catalog()})
        assert r.status_code == 200 and r.json()["upserted"] == 120, r.text
        adv = created(a, "/v1/advertisers", {"network_id": self.net, "name": "Brands"})["id"]
        camp = created(a, "/v1/campaigns", {"advertiser_id": adv, "name": "Always on"})["id"]
        # two sponsored products per kind (auto targeting: no keywords), plus the coffee
        # product that is out of stock
        sponsored = {kind: [product_id(kind, 0), product_id(kind, 7)] for kind in KINDS}
        sponsored["Coffee"].append(product_id("Coffee", 1))
        bid = itertools.count(30)

        def promote(pid: str, name: str, price: str, keywords: list[Any] = ()) -> int:  # type: ignore[assignment]
            """A CPC flight promoting one product (its creative approved); the ad's id."""
            flight = {
                "campaign_id": camp,
                "priority_id": prio,
                "name": name,
                "start": "2026-01-01T00:00:00Z",
                "rate_type": "cpc",
                "price": price,
            }
            fl = created(a, "/v1/flights", {**flight, "keywords": list(keywords)})["id"]
            cr = created(
                a,
                "/v1/creatives",
                {
                    "advertiser_id": adv,
                    "ad_type_id": self.type,
                    "name": pid,
                    "kind": "product",
                    "product_id": pid,
                    "status": "approved",
                },
            )["id"]
            ad = created(a, "/v1/ads", {"flight_id": fl, "creative_id": cr})["id"]
            self.product_of_ad[ad] = pid
            return ad

        for kind, pids in sponsored.items():
            for pid in pids:
                self.ads.setdefault(kind, []).append(promote(pid, pid, f"0.{next(bid)}"))
        # manual targeting: an espresso product bids 2.00 on "espresso", 0.20 otherwise
        self.keyword_ad = promote(
            product_id("Coffee", 2),
            "espresso keywords",
            "0.20",
            [
                {"text": "espresso", "match": "broad", "bid": "2.00"},
                {"text": "coffee", "match": "phrase"},
                {"text": "decaf", "negative": True},
            ],
        )
        # a coffee product whose flight bought "headphones": the keyword must not carry it
        # onto a headphones search (the product itself does not match the query)
        self.wrong_keyword_ad = promote(
            product_id("Coffee", 3),
            "coffee on headphones",
            "5.00",
            [{"text": "headphones", "match": "broad"}],
        )

    def decide(
        self,
        count: int = 3,
        search: str | None = None,
        properties: dict[str, Any] | None = None,
        explain: bool = False,
        user: str | None = None,
    ) -> httpx.Response:
        body: dict[str, Any] = {
            "placements": [
                {
                    "divName": "s",
                    "networkId": self.net,
                    "siteId": self.site,
                    "zoneIds": [self.zone],
                    "adTypes": [self.type],
                    "count": count,
                    "properties": properties,
                }
            ],
            "includePricingData": True,
        }
        if search is not None:
            body["searchTerm"] = search
        if user is not None:
            body["user"] = {"key": user}
        headers = {"X-Adzerk-Explain": ADMIN_KEY} if explain else {}
        return self.client.post("/api/v2", json=body, headers=headers)

    def shown(self, **kw: Any) -> list[int]:
        r = self.decide(**kw)
        assert r.status_code == 200, r.text
        return [d["adId"] for d in r.json()["decisions"]["s"] or []]


@pytest.fixture(scope="session")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    data = tmp_path_factory.mktemp("shop")
    with running(["run", "--api-port", "0", "--port", "0"], env_for(str(data)), want=2) as proc:
        wait_ready(proc.urls["decision API"])
        with httpx.Client(
            base_url=proc.urls["management API"], headers={"X-Api-Key": ADMIN_KEY}, timeout=30
        ) as admin:
            s = Shop(admin, proc.urls["decision API"])
            s.data_dir = str(data)  # its signing keys, for tests that sign credentials
            s.build()
            # the catalog thread builds the product index, then the publisher compiles a
            # snapshot against it: wait for the index, then for a snapshot newer than it
            deadline = time.monotonic() + 60
            while (
                admin.get(f"/v1/networks/{s.net}/catalog").json()["index"]["sponsored_indexed"]
                != 11
            ):
                assert time.monotonic() < deadline, "product index never built"
                time.sleep(0.1)
            seen = s.decide().headers["x-adserver-snapshot"]
            while s.decide().headers["x-adserver-snapshot"] == seen:
                assert time.monotonic() < deadline, "no snapshot after the product index"
                time.sleep(0.05)
            yield s
            s.client.close()
