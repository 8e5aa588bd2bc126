"""The shared vocabulary: the ad server's entities as msgspec Structs.

These are the writable fields of each entity, exactly as the management API takes them and as
the control store keeps them (one column each; lists and nested Structs as JSON, money as
integer micro-units in `<field>_micros` columns). Read-only fields (id, archived, timestamps)
are added by the API. `check()` holds the rules that span fields; rules that need other rows
(a flight on an archived campaign) live in the control plane.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec

from adserver.common.expr import ExprError, parse
from adserver.common.validation import SAFE_URL, FieldError

Id = Annotated[int, msgspec.Meta(ge=1, le=2**62)]
MAX_BID = 100_000
"""Largest bid or flat fee of a flight: a click at this CPC is 1e14 nanos, so a pass of the
aggregator (20,000 records at most) cannot overflow int64 whatever it holds."""
MAX_AMOUNT = 10_000_000
"""Largest amount a tracked record carries besides a bid (an order's value, a revenue
adjustment, a GMV), in currency units: 1e13 micros, for the same reason."""
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Url = Annotated[str, msgspec.Meta(max_length=2048)]
ClickUrl = Annotated[
    str,
    msgspec.Meta(
        max_length=2048,
        pattern=f"{SAFE_URL}|^$",
        description="where a click goes: an absolute http or https URL (or empty)",
    ),
]
Money = Annotated[
    Decimal,
    msgspec.Meta(
        description="amount of money, >= 0, at most 6 decimal places (a number or a string)",
        extra_json_schema={"type": ["number", "string"], "minimum": 0},
    ),
]
Time = Annotated[dt.datetime, msgspec.Meta(tz=True, description="RFC 3339 time with zone")]


class Entity(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=False):
    """Base of every entity Struct."""

    def check(self) -> list[FieldError]:
        return []


# ---- inventory -------------------------------------------------------------------------


Host = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=253,
        pattern=r"^(?i:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)(?:\.(?i:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?))*$",
        description="a host name: it and its subdomains",
    ),
]


class Network(Entity, kw_only=True):
    """A retail media network: the tenant every site, advertiser and key belongs to."""

    name: Name
    time_zone: str = "UTC"
    currency: Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$")] = "USD"
    """The ISO 4217 code of every amount of money in the network (bids, budgets, spend)."""
    click_domains: Annotated[list[Host], msgspec.Meta(max_length=200)] = []
    """Where clicks may be sent on to: these hosts and their subdomains (empty: any http or
    https destination). A placement clickUrl elsewhere is a 400; a creative's is never
    redirected to."""

    def check(self) -> list[FieldError]:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(self.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return [FieldError("time_zone", f"unknown time zone {self.time_zone!r}")]
        return []


class Site(Entity, kw_only=True):
    """A storefront of a network: web, iOS or Android."""

    network_id: Id
    name: Name
    url: Url = ""
    platform: Literal["web", "ios", "android"] = "web"


class Zone(Entity, kw_only=True):
    """A place on a site's pages, with the page type it is on."""

    site_id: Id
    name: Name
    page_type: Literal["home", "search", "category", "product", "cart", "other"] = "other"


class AdType(Entity, kw_only=True):
    """A format a placement asks for: a sponsored product, display (with its size), native or
    video."""

    network_id: Id
    name: Name
    format: Literal["sponsored_product", "display", "native", "video"]
    width: Annotated[int, msgspec.Meta(ge=1, le=10000)] | None = None
    height: Annotated[int, msgspec.Meta(ge=1, le=10000)] | None = None

    def check(self) -> list[FieldError]:
        if self.format == "display" and (self.width is None or self.height is None):
            return [FieldError("width", "a display ad type needs width and height")]
        return []


class Channel(Entity, kw_only=True):
    """A group of sites sold together; priorities belong to a channel."""

    network_id: Id
    name: Name
    site_ids: list[Id] = []


class Priority(Entity, kw_only=True):
    """A tier of the waterfall; lower tiers are tried first."""

    channel_id: Id
    name: Name
    tier: Annotated[int, msgspec.Meta(ge=1, le=1000)]
    selection: Literal["lottery", "auction"] = "auction"
    second_price: bool = True
    floor_cpm: Money | None = None
    floor_cpc: Money | None = None


# ---- demand ----------------------------------------------------------------------------


class Advertiser(Entity, kw_only=True):
    """A brand or seller buying on a network."""

    network_id: Id
    name: Name
    domain: Annotated[str, msgspec.Meta(max_length=253)] = ""


class Campaign(Entity, kw_only=True):
    """An advertiser's campaign: its flights share it."""

    advertiser_id: Id
    name: Name
    is_active: bool = True


class Cap(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A daily or lifetime cap: spend, impressions or clicks."""

    metric: Literal["spend", "impressions", "clicks"]
    value: Money


class FrequencyCap(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """At most `count` impressions per user per window, at the flight, campaign or advertiser
    level."""

    level: Literal["flight", "campaign", "advertiser"] = "flight"
    count: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]
    window_seconds: Annotated[int, msgspec.Meta(ge=60, le=366 * 86400)]


class Keyword(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A keyword the flight (the ad group) targets, or excludes (`negative`). `bid`: what
    its ads bid (in the flight's rate type) on a request this keyword matches, instead of
    the flight's price; the highest of the matched keywords wins."""

    text: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    match: Literal["exact", "phrase", "broad"] = "broad"
    negative: bool = False
    bid: Money | None = None


class GeoTarget(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A place a flight targets (or excludes): country, region, metro, city."""

    country: Annotated[str, msgspec.Meta(pattern="^[A-Z]{2}$")]
    region: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    metro: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    city: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    exclude: bool = False


class Daypart(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Hours [start_hour, end_hour) on the given weekdays (0 = Monday), network time zone."""

    days: list[Annotated[int, msgspec.Meta(ge=0, le=6)]] = msgspec.field(
        default_factory=lambda: [0, 1, 2, 3, 4, 5, 6]
    )
    start_hour: Annotated[int, msgspec.Meta(ge=0, le=23)] = 0
    end_hour: Annotated[int, msgspec.Meta(ge=1, le=24)] = 24


class Flight(Entity, kw_only=True):
    """What an advertiser buys: dates, rate and price, targeting (zones, sites, keywords,
    segments, geo, dayparts, an expression), caps and pacing."""

    campaign_id: Id
    priority_id: Id
    name: Name
    start: Time
    end: Time | None = None
    is_active: bool = True
    rate_type: Literal["flat", "cpm", "cpc", "cpa"] = "cpm"
    price: Money
    """The CPM/CPC/CPA bid, or the flat fee."""
    daily_cap: Cap | None = None
    lifetime_cap: Cap | None = None
    pacing: Literal["even", "asap", "front_loaded", "custom"] = "even"
    """How a capped flight spreads its daily goal: with the forecast traffic (even), ahead
    of it (front_loaded), by `pacing_curve` (custom), or as fast as it can (asap)."""
    pacing_curve: list[Annotated[float, msgspec.Meta(ge=0, le=1e6)]] = []
    """With pacing "custom": 24 weights, one per local hour of the network's time zone."""
    frequency_caps: list[FrequencyCap] = []
    keywords: list[Keyword] = []
    custom_targeting: Annotated[str, msgspec.Meta(max_length=4096)] | None = None
    geo: list[GeoTarget] = []
    dayparts: list[Daypart] = []
    site_ids: list[Id] = []
    zone_ids: list[Id] = []
    segments: list[Annotated[str, msgspec.Meta(min_length=1, max_length=100)]] = []
    dedupe: Literal["none", "flight", "campaign", "advertiser", "creative"] = "none"
    click_window_days: Annotated[int, msgspec.Meta(ge=0, le=90)] = 7
    view_window_days: Annotated[int, msgspec.Meta(ge=0, le=90)] = 1

    def check(self) -> list[FieldError]:
        errors = []
        if self.end is not None and self.end <= self.start:
            errors.append(FieldError("end", "must be after start"))
        if self.price > MAX_BID:
            errors.append(FieldError("price", f"must be at most {MAX_BID:,}"))
        errors += [
            FieldError(f"keywords[{i}].bid", f"must be at most {MAX_BID:,}")
            for i, k in enumerate(self.keywords)
            if k.bid is not None and k.bid > MAX_BID
        ]
        for name in ("daily_cap", "lifetime_cap"):
            cap = getattr(self, name)
            if cap is not None and cap.metric != "spend" and cap.value != int(cap.value):
                errors.append(FieldError(f"{name}.value", f"{cap.metric} must be a whole number"))
        if self.custom_targeting is not None:
            try:
                parse(self.custom_targeting)
            except ExprError as e:
                errors.append(FieldError("custom_targeting", str(e)))
        if self.pacing == "custom" and (
            len(self.pacing_curve) != 24 or not sum(self.pacing_curve) > 0
        ):
            errors.append(
                FieldError("pacing_curve", "custom pacing needs 24 hourly weights, not all zero")
            )
        elif self.pacing != "custom" and self.pacing_curve:
            errors.append(FieldError("pacing_curve", 'only with pacing "custom"'))
        for i, part in enumerate(self.dayparts):
            if part.end_hour <= part.start_hour:
                errors.append(FieldError(f"dayparts[{i}].end_hour", "must be after start_hour"))
        return errors


class Creative(Entity, kw_only=True):
    """What an ad shows: an image, HTML, a native template's data or a product; served once
    approved."""

    advertiser_id: Id
    ad_type_id: Id
    name: Name
    kind: Literal["image", "html", "native", "product"]
    status: Literal["draft", "pending", "approved", "rejected"] = "draft"
    click_url: ClickUrl = ""
    image_url: Url = ""
    title: Annotated[str, msgspec.Meta(max_length=500)] = ""
    body: Annotated[str, msgspec.Meta(max_length=65536)] = ""
    template: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    data: dict[str, Any] = {}
    product_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    review_reason: Annotated[str, msgspec.Meta(max_length=500)] = ""
    """Why an admin rejected the creative (or a note on approving it); written by admins
    only."""

    def check(self) -> list[FieldError]:
        need = {"image": "image_url", "html": "body", "product": "product_id"}.get(self.kind)
        if need and not getattr(self, need):
            return [FieldError(need, f"required for a {self.kind} creative")]
        return []


class Ad(Entity, kw_only=True):
    """A creative placed on a flight."""

    flight_id: Id
    creative_id: Id
    product_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    weight: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 100
    relevancy_score: Annotated[int, msgspec.Meta(ge=1, le=1000)] | None = None
    is_active: bool = True


# ---- catalog ---------------------------------------------------------------------------

ProductId = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
MAX_VECTOR_DIM = 4096
CATEGORY_SEPARATOR = " > "


class Product(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A product of a network's catalog, keyed by the retailer's id (SKU).

    `category` is the path from the root, as a list or as one string separated by " > "; each
    level is a category a request may name. `vector`, when given, is the product's embedding
    in the space of the network's embedding model (indexes/README.md, "Embedding models"):
    its length must be the model's dimension. `data` is shown to the storefront with the ad.
    """

    id: ProductId
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]
    brand: Annotated[str, msgspec.Meta(max_length=200)] = ""
    category: list[Annotated[str, msgspec.Meta(min_length=1, max_length=200)]] | str = []
    price: Money
    available: bool = True
    image_url: Url = ""
    url: Url = ""
    vector: Annotated[list[float], msgspec.Meta(min_length=2, max_length=MAX_VECTOR_DIM)] | None = (
        None
    )
    data: dict[str, Any] = {}

    def path(self) -> list[str]:
        """The category path as a list of levels."""
        if isinstance(self.category, str):
            return [c.strip() for c in self.category.split(">") if c.strip()]
        return [c.strip() for c in self.category if c.strip()]

    def check(self) -> list[FieldError]:
        errors = []
        path = self.path()
        if len(path) > 10:
            errors.append(FieldError("category", "at most 10 levels"))
        if any(len(c) > 200 for c in path):
            errors.append(FieldError("category", "a level is longer than 200 characters"))
        if self.vector is not None:
            import math

            if not all(math.isfinite(x) for x in self.vector):
                errors.append(FieldError("vector", "every component must be a finite number"))
            elif not any(self.vector):
                errors.append(FieldError("vector", "must not be all zeros"))
        if len(msgspec.json.encode(self.data)) > 8192:
            errors.append(FieldError("data", "at most 8192 bytes of JSON"))
        return errors
