"""Kevel Decision API v2: request and response types, creative contents, error bodies.

Field names are Kevel's. The published `adzerk-decision-sdk` sends every field, unset ones
as null, so every optional field accepts null. Unknown fields are ignored, as Kevel does.
Facts: ../shared/specs/kevel-decision-v2.md.
"""

from __future__ import annotations

from typing import Any

import msgspec

# Kevel's RateType numbers
RATE_TYPE = {"flat": 1, "cpm": 2, "cpc": 3, "cpa": 6}
EVENT_VIEW, EVENT_CLICK, EVENT_CONVERSION, EVENT_VIEWABLE = 1, 2, 3, 40
MAX_COUNT = 20
MAX_PLACEMENTS = 50


class SkipFilters(msgspec.Struct, rename="camel"):
    """Kevel's skipFilters: targeting checks a placement may skip."""

    distance: bool | None = None
    facet: bool | None = None
    geodistance: bool | None = None
    geolocation: bool | None = None
    keyword: bool | None = None
    location: bool | None = None
    placement_limit: bool | None = None
    search_term: bool | None = None
    site_zone: bool | None = None


class Placement(msgspec.Struct, rename="camel"):
    """One Kevel placement: where (network, site, zones), what (ad types, count) and what to
    force."""

    div_name: str | None = None
    network_id: int | None = None
    site_id: int | None = None
    ad_types: list[int] | None = None
    zone_ids: list[int] | None = None
    campaign_id: int | None = None
    flight_id: int | None = None
    ad_id: int | None = None
    click_url: str | None = None
    properties: dict[str, Any] | None = None
    event_ids: list[int] | None = None
    overrides: dict[str, Any] | None = None
    content_keys: dict[str, str] | None = None
    count: int | None = None
    proportionality: bool | None = None
    ecpm_partition: str | None = None
    ecpm_partitions: list[str] | None = None
    event_multiplier: int | None = None
    skip_selection: bool | None = None
    ad_query: dict[str, Any] | None = None
    floor_price: float | None = None
    floor_cpc: float | None = None
    skip_filters: SkipFilters | None = None


class User(msgspec.Struct):
    """The user a request is for: the key and its segments."""

    key: str | None = None
    group: int | None = None
    segments: list[str | int] | None = None


class Geo(msgspec.Struct):
    """Our extension: where the user is, when the caller knows (Kevel derives it from IP)."""

    country: str | None = None
    region: str | None = None
    metro: str | None = None
    city: str | None = None


class DecisionRequest(msgspec.Struct, rename="camel"):
    """Kevel's Decision API v2 request."""

    placements: list[Placement] | None = None
    user: User | None = None
    keywords: list[str] | None = None
    url: str | None = None
    referrer: str | None = None
    ip: str | None = None
    blocked_creatives: list[int] | None = None
    is_mobile: bool | None = None
    include_pricing_data: bool | None = None
    notrack: bool | None = None
    enable_bot_filtering: bool | None = None
    enable_user_dbip: bool | None = msgspec.field(default=None, name="enableUserDBIP")
    consent: dict[str, Any] | None = None
    device_id: str | None = msgspec.field(default=None, name="deviceID")
    parallel: bool | None = None
    intended_latitude: float | None = None
    intended_longitude: float | None = None
    radius: float | None = None
    include_matched_points: bool | None = None
    search_term: str | None = None
    geo: Geo | None = None


class Event(msgspec.Struct):
    """A custom event's tracking URL of a decision."""

    id: int
    url: str


class Pricing(msgspec.Struct, rename="camel"):
    """A decision's pricing (with includePricingData): price, clear price, eCPM, rate type;
    and this server's extension `minECPMToWin`: the lowest eCPM that would have taken a slot
    of the placement from its winners (the last slot's eCPM to beat; the floor when a slot
    went uncontested). A bid landscape's point: what a competitor had to offer."""

    price: float
    clear_price: float
    revenue: float
    rate_type: int
    e_cpm: float = msgspec.field(name="eCPM")
    min_ecpm_to_win: float = msgspec.field(default=0.0, name="minECPMToWin")


class Decision(msgspec.Struct, rename="camel", omit_defaults=True):
    """One Kevel decision: the ad, its contents and its tracking URLs."""

    ad_id: int
    advertiser_id: int
    creative_id: int
    flight_id: int
    campaign_id: int
    priority_id: int
    click_url: str
    impression_url: str
    contents: msgspec.Raw
    events: list[Event] = []
    pricing: Pricing | None = None


class UserKey(msgspec.Struct):
    """The user key the response carries (a new one when the request had none)."""

    key: str


class DecisionResponse(msgspec.Struct, omit_defaults=True):
    """Kevel's Decision API v2 response: decisions per placement, and explain."""

    user: UserKey
    decisions: dict[str, Decision | list[Decision] | None]
    explain: dict[str, Any] | None = None


decoder = msgspec.json.Decoder(DecisionRequest)
encoder = msgspec.json.Encoder()


def contents(creative: Any, ad_type: Any | None) -> list[dict[str, Any]]:
    """Kevel `contents` of a creative (computed once, at snapshot compile time)."""
    width = getattr(ad_type, "width", None)
    height = getattr(ad_type, "height", None)
    if creative.kind == "image":
        data: dict[str, Any] = {
            "imageUrl": creative.image_url,
            "title": creative.title,
            "fileName": creative.image_url.rsplit("/", 1)[-1],
        }
        if width and height:
            data.update(width=width, height=height)
        item = {"type": "html", "template": creative.template or "image", "data": data, "body": ""}
    elif creative.kind == "html":
        item = {"type": "html", "template": creative.template, "data": {}, "body": creative.body}
    elif creative.kind == "product":
        data = {
            "productId": creative.product_id,
            "title": creative.title,
            "imageUrl": creative.image_url,
            **creative.data,
        }
        item = {
            "type": "raw",
            "template": creative.template or "product",
            "data": data,
            "body": creative.body,
        }
    else:
        data = {"title": creative.title, "imageUrl": creative.image_url, **creative.data}
        item = {
            "type": "raw",
            "template": creative.template or "native",
            "data": data,
            "body": creative.body,
        }
    return [item]


def product_contents(creative: Any, product: dict[str, Any]) -> list[dict[str, Any]]:
    """Kevel `contents` of an ad promoting a catalog product: the product's fields (the
    creative's title and image win when it has them), then its data, then the creative's."""
    data = {
        "productId": product["id"],
        "title": creative.title or product["title"],
        "imageUrl": creative.image_url or product["image_url"],
        "brand": product["brand"],
        "category": product["category"],
        "price": product["price"],
        "available": product["available"],
        "url": product["url"],
        **product["data"],
        **creative.data,
    }
    return [
        {
            "type": "raw",
            "template": creative.template or "product",
            "data": data,
            "body": creative.body,
        }
    ]
