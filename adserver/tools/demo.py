"""What `adserver demo` adds to `run`: a little storefront traffic, so its reports have
something to show, and an admin key kept from one demo to the next.

Bounded (1,500 page views over about half a minute), sent only to the demo's own
decision server on this machine, with the standard library's HTTP client. Shoppers see home,
category and search pages; some click (banners 2 %, each sponsored product its own 4 to 16 %,
so the CTR model the control process trains from these clicks has something to learn); some
of those buy the promoted product.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import threading
import time
import urllib.request
from typing import Any

QUERIES = [
    "coffee",
    "headphones",
    "dog food",
    "yoga mat",
    "chips",
    "shampoo",
    "cookware",
    "wireless earbuds",
    "green tea",
    "puppy food",
]
CATEGORIES = ["Coffee", "Headphones", "Dog", "Yoga", "Chips", "Cookware", "Tea"]
UA = "Mozilla/5.0 (X11; Linux x86_64) adserver-demo-shopper"


def _call(url: str, body: dict[str, Any] | None = None, key: str | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        url, data=data, headers={"User-Agent": UA, "Content-Type": "application/json"}
    )
    if key:
        req.add_header("X-Api-Key", key)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        """Keeps the demo's shoppers from following click redirects off this machine."""

        def redirect_request(self, *args: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(req, timeout=5) as r:
            raw = r.read()
            return (
                json.loads(raw)
                if r.headers.get("content-type", "").startswith("application/json")
                else None
            )
    except urllib.error.HTTPError as e:  # the click's 302 lands here
        return None if e.code in (302, 204) else e


def appeal(div: str, ad_id: int) -> float:
    """An ad's click-through rate for the demo's shoppers, fixed per ad."""
    if div != "sponsored":
        return 0.02
    return 0.04 + 0.12 * ((ad_id * 2654435761) % 1000) / 1000


def shop(decisions_url: str, admin_key: str, visits: int = 1500, seed: int = 11) -> None:
    """Wait for the decision server, then browse like shoppers do."""
    rng = random.Random(seed)
    for _ in range(300):
        try:
            if _call(decisions_url + "/readyz") is not None:
                break
        except OSError:
            pass
        time.sleep(0.2)
    for i in range(visits):
        user = f"u{rng.randrange(1, 1000):07d}"
        page = rng.choice(["home", "category", "search", "product"])
        zone = {"home": 10, "search": 11, "category": 12, "product": 13}[page]
        props: dict[str, Any] = {"page_type": page}
        if page == "category":
            props["category"] = rng.choice(CATEGORIES)
        elif page == "product":
            props["productId"] = f"P{rng.randrange(1, 2001):07d}"
        body = {
            "placements": [
                {
                    "divName": "banner",
                    "networkId": 1,
                    "siteId": 1,
                    "zoneIds": [zone],
                    "adTypes": [2, 3],
                },
                {
                    "divName": "sponsored",
                    "networkId": 1,
                    "siteId": 1,
                    "zoneIds": [zone],
                    "adTypes": [1],
                    "count": 3,
                    "properties": props,
                },
            ],
            "user": {"key": user},
        }
        if page == "search":
            body["searchTerm"] = rng.choice(QUERIES)
        try:
            response = _call(decisions_url + "/api/v2", body)
        except OSError:
            return  # the demo is stopping
        for name, div in (response or {}).get("decisions", {}).items():
            for d in div if isinstance(div, list) else [div] if div else []:
                _call(d["impressionUrl"])
                if rng.random() < appeal(name, d["adId"]):
                    _call(d["clickUrl"])
                    product = d["contents"][0]["data"].get("productId")
                    if product and rng.random() < 0.4:
                        _call(
                            decisions_url + "/v1/conversions",
                            {
                                "order_id": f"demo-{seed}-{i}",
                                "user_key": user,
                                "network_id": 1,
                                "items": [
                                    {
                                        "product_id": product,
                                        "unit_price": "24.99",
                                        "quantity": rng.randint(1, 3),
                                    }
                                ],
                            },
                            admin_key,
                        )
        time.sleep(0.01)


def start(decisions_url: str, admin_key: str) -> threading.Thread:
    t = threading.Thread(
        target=shop, args=(decisions_url, admin_key), daemon=True, name="demo-shoppers"
    )
    t.start()
    return t


DEMO_KEY_FILE = "demo-admin-key"


def admin_key(store: Any, data_dir: str) -> tuple[str, str]:
    """The demo's admin key, and where it is kept: the one a previous run saved in
    `<data root>/demo-admin-key` (readable by its owner only) while it is live, else a new
    one saved there."""
    from adserver.common import apikeys
    from adserver.control import auth

    path = os.path.join(data_dir, DEMO_KEY_FILE)
    try:
        with open(path) as src:
            saved = src.read().strip()
    except OSError:
        saved = ""
    keys = {
        r[0]: list(r)
        for r in store.read(
            "SELECT key_id, salt, hash, role, network_id, advertiser_id FROM api_keys"
            " WHERE revoked_at IS NULL"
        )
    }
    if saved and apikeys.identify(saved, None, keys) is not None:
        return saved, f"kept in {os.path.abspath(path)}"
    with store.transaction() as db:
        key, _ = auth.create_key(db, role="admin", name="demo", created_by="demo")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key + "\n")
    return key, f"saved in {os.path.abspath(path)}; the next demo reuses it"


DEMO_USERS_FILE = "demo-console-users"


def console_users(store: Any, data_dir: str) -> tuple[list[tuple[str, str, str]], str]:
    """The demo's console users (email, password, what it sees): an admin of every network
    and the first advertiser's user, with passwords kept in `<data root>/demo-console-users`
    (readable by its owner only) for the next demo; made when absent or changed."""
    from adserver.control.console import users

    path = os.path.join(data_dir, DEMO_USERS_FILE)
    try:
        with open(path) as src:
            saved = [tuple(line.rstrip("\n").split("\t")) for line in src if "\t" in line]
    except OSError:
        saved = []
    if saved and all(users.check_password(store, e, p) is not None for e, p, _ in saved):
        return saved, f"kept in {os.path.abspath(path)}"  # type: ignore[return-value]
    first = store.read("SELECT id, name FROM advertisers ORDER BY id LIMIT 1")
    wanted = [("admin@demo.example", "admin", None, "an admin of every network")]
    if first:
        wanted.append(
            (
                "advertiser@demo.example",
                "advertiser",
                first[0]["id"],
                f"advertiser {first[0]['id']}, {first[0]['name']}, only",
            )
        )
    made = []
    for email, role, advertiser, sees in wanted:
        password = secrets.token_urlsafe(12)
        if users.find_user(store, email) is None:
            users.create_user(store, email, password, role, None, advertiser)
        else:
            users.set_password(store, email, password)
        made.append((email, password, sees))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.writelines("\t".join(row) + "\n" for row in made)
    return made, f"saved in {os.path.abspath(path)}; the next demo reuses them"
