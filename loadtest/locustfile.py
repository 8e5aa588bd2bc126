"""Shoppers on the demo storefront (`adserver demo`'s network): sessions that visit the home,
category, search, product and cart pages, ask for the placements of each page in one decision
request (a banner, a native card and multi-winner sponsored-product slots), fire impressions
for what was shown, click now and then, and sometimes buy.

    .venv/bin/locust -f loadtest/locustfile.py --headless -u 50 -r 10 -t 1m \
        --host http://127.0.0.1:8080

Settings (environment): ADSERVER_ADMIN_KEY (for conversions; without it shoppers do not buy),
LOAD_CLICK_RATE (default 0.03), LOAD_BUY_RATE (share of clicks on products that buy, 0.2).
"""

from __future__ import annotations

import os
import random
from typing import Any
from urllib.parse import urlsplit

from locust import FastHttpUser, between, task

SITE = 1
ZONES = {"home": 10, "search": 11, "category": 12, "product": 13, "cart": 14}
QUERIES = [
    "coffee",
    "organic coffee",
    "headphones",
    "wireless earbuds",
    "dog food",
    "puppy treats",
    "yoga mat",
    "tortilla chips",
    "shampoo",
    "nonstick skillet",
    "diapers",
    "camping tent",
    "notebook",
]
CLICK_RATE = float(os.environ.get("LOAD_CLICK_RATE", "0.03"))
BUY_RATE = float(os.environ.get("LOAD_BUY_RATE", "0.2"))
ADMIN_KEY = os.environ.get("ADSERVER_ADMIN_KEY", "")
UA = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0 locust-shopper"}


def placements(page: str) -> list[dict[str, Any]]:
    zone = [ZONES[page]]
    out = [
        {"divName": "banner", "networkId": 1, "siteId": SITE, "zoneIds": zone, "adTypes": [2, 3]}
    ]
    if page in ("home", "product"):
        out.append(
            {"divName": "native", "networkId": 1, "siteId": SITE, "zoneIds": zone, "adTypes": [4]}
        )
    if page != "cart":
        out.append(
            {
                "divName": "sponsored",
                "networkId": 1,
                "siteId": SITE,
                "zoneIds": zone,
                "adTypes": [1],
                "count": 4 if page == "search" else 2,
                "properties": {"page_type": page},
            }
        )
    return out


class Shopper(FastHttpUser):
    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        self.user_key = f"u{random.randint(1, 1000):07d}"
        self.query = random.choice(QUERIES)

    def page(self, page: str) -> None:
        body: dict[str, Any] = {"placements": placements(page), "user": {"key": self.user_key}}
        if page == "search":
            body["searchTerm"] = self.query
        with self.client.post(
            "/api/v2", json=body, name=f"decide {page}", catch_response=True
        ) as r:
            if r.status_code != 200 or "decisions" not in (data := r.json()):
                r.failure(f"decision failed: {r.status_code}")
                return
        for div in data["decisions"].values():
            for d in div if isinstance(div, list) else ([div] if div else []):
                self.beacon(d["impressionUrl"], "impression", 200)
                if random.random() < CLICK_RATE:
                    self.beacon(d["clickUrl"], "click", 302)
                    product = d["contents"][0]["data"].get("productId")
                    if product and ADMIN_KEY and random.random() < BUY_RATE:
                        self.buy(product)

    def beacon(self, url: str, name: str, status: int) -> None:
        parts = urlsplit(url)
        with self.client.get(
            f"{parts.path}?{parts.query}",
            name=name,
            headers=UA,
            allow_redirects=False,
            catch_response=True,
        ) as r:
            if r.status_code != status:
                r.failure(f"{name} answered {r.status_code}")

    def buy(self, product: str) -> None:
        order = {
            "order_id": f"{self.user_key}-{random.getrandbits(48):x}",
            "user_key": self.user_key,
            "network_id": 1,
            "items": [
                {"product_id": product, "unit_price": "19.99", "quantity": random.randint(1, 3)}
            ],
        }
        with self.client.post(
            "/v1/conversions",
            json=order,
            name="conversion",
            headers={"X-Api-Key": ADMIN_KEY},
            catch_response=True,
        ) as r:
            if r.status_code != 202:
                r.failure(f"conversion answered {r.status_code}")

    @task(4)
    def browse(self) -> None:
        self.page("home")
        self.page("category")
        self.page("product")

    @task(3)
    def search(self) -> None:
        self.query = random.choice(QUERIES)
        self.page("search")
        self.page("product")

    @task(1)
    def checkout(self) -> None:
        self.page("cart")
