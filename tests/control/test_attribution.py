"""Attribution rules, applied by the aggregator over real segment logs and the real store."""

from __future__ import annotations

from pathlib import Path

import pytest

from adserver.control.aggregator import Aggregator
from adserver.control.seed import Scale, seed
from adserver.control.store import Store
from adserver.formats.segment import SegmentWriter

T0 = 1_790_000_000.0
DAY = 86400


@pytest.fixture
def world(tmp_path: Path) -> tuple[Store, dict]:
    store = Store(str(tmp_path))
    seed(store, Scale(ads=200, products=400, users=10), progress=False)
    ad = store.read(
        "SELECT a.id, a.flight_id, f.campaign_id, f.advertiser_id, a.creative_id,"
        " a.product_id, f.click_window_days, f.view_window_days FROM ads a"
        " JOIN flights f ON f.id = a.flight_id WHERE a.product_id IS NOT NULL"
        " LIMIT 1"
    )[0]
    brand = store.read("SELECT brand FROM products WHERE id = ?", (ad["product_id"],))[0][0]
    sibling = store.read(
        "SELECT id FROM products WHERE brand = ? AND id != ? LIMIT 1", (brand, ad["product_id"])
    )[0][0]
    return store, {"ad": dict(ad), "sibling": sibling}


def touch(kind: str, ad: dict, ts: float, user: str = "shopper") -> dict:
    return {
        "t": kind,
        "id": f"{kind[0]}:{ts}",
        "ts": ts,
        "req": str(ts),
        "ad": ad["id"],
        "flight": ad["flight_id"],
        "creative": ad["creative_id"],
        "campaign": ad["campaign_id"],
        "advertiser": ad["advertiser_id"],
        "network": 1,
        "site": 1,
        "zone": 11,
        "div": "d",
        "price": 500_000,
        "rate": 2,
        "user": user,
        "ev": 1 if kind == "imp" else 2,
        "bot": False,
        "botf": 0,
    }


def order(oid: str, ts: float, product: str, user: str = "shopper") -> dict:
    return {
        "t": "conv",
        "id": f"o:1:{oid}",
        "ts": ts,
        "order": oid,
        "user": user,
        "network": 1,
        "items": [[product, 20_000_000, 3]],
        "revenue": 60_000_000,
    }


def credit(tmp: Path, store: Store, records: list[dict], match: str = "product") -> dict:
    w = SegmentWriter(str(tmp / "events" / "w0"), "events")
    for r in records:
        w.append(r)
    w.close()
    Aggregator(store, str(tmp), match).run_once()
    return {
        r["order_id"]: (r["touch_kind"], r["ad_id"], r["gmv_micros"])
        for r in store.read("SELECT * FROM conversions")
    }


def test_last_click_beats_a_later_impression(world, tmp_path: Path) -> None:
    store, w = world
    ad = w["ad"]
    got = credit(
        tmp_path,
        store,
        [touch("click", ad, T0), touch("imp", ad, T0 + 60), order("a", T0 + 120, ad["product_id"])],
    )
    assert got["a"] == ("click", ad["id"], 60_000_000)


def test_windows_and_product_match(world, tmp_path: Path) -> None:
    store, w = world
    ad = w["ad"]
    late = T0 + (ad["view_window_days"] + 1) * DAY
    got = credit(
        tmp_path,
        store,
        [
            touch("imp", ad, T0),
            order("late", late, ad["product_id"]),  # past the view window
            order("other", T0 + 10, w["sibling"]),  # another product of the brand
            order("view", T0 + 20, ad["product_id"]),  # within the view window
        ],
    )
    assert got["late"] == (None, None, 0)
    assert got["other"] == (None, None, 0)
    assert got["view"] == ("imp", ad["id"], 60_000_000)


def test_brand_match(world, tmp_path: Path) -> None:
    store, w = world
    ad = w["ad"]
    got = credit(
        tmp_path, store, [touch("click", ad, T0), order("b", T0 + 5, w["sibling"])], match="brand"
    )
    assert got["b"] == ("click", ad["id"], 60_000_000)
