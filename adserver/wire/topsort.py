"""Sponsored-listings auctions in the public Topsort v2 shape: `POST /v2/auctions` and
`POST /v2/events` (facts: ../shared/specs/sponsored-listings.md). Field names are Topsort's;
unknown fields are ignored. Our extension: an auction may name `siteId` and `zoneId` (for
flights targeted to them; default: the network's first site, no zone).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

MAX_AUCTIONS = 5
MAX_SLOTS = 40
MAX_PRODUCTS = 500
MAX_EVENTS = 1000

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class Products(msgspec.Struct, rename="camel"):
    """A listings auction's own products, with optional quality scores."""

    ids: Annotated[list[Text], msgspec.Meta(min_length=1, max_length=MAX_PRODUCTS)]
    quality_scores: list[float] | None = None


class Category(msgspec.Struct):
    """A listings auction's category: one id, all of several ids, or one of each list."""

    id: Text | None = None
    ids: Annotated[list[Text], msgspec.Meta(max_length=20)] | None = None
    disjunctions: (
        Annotated[
            list[Annotated[list[Text], msgspec.Meta(min_length=1, max_length=20)]],
            msgspec.Meta(max_length=20),
        ]
        | None
    ) = None


class Auction(msgspec.Struct, rename="camel"):
    """One listings auction: slots and what it runs over (products, category, query)."""

    type: Literal["listings", "banners"]
    slots: Annotated[int, msgspec.Meta(ge=1, le=MAX_SLOTS)]
    products: Products | None = None
    category: Category | None = None
    search_query: Annotated[str, msgspec.Meta(max_length=1000)] | None = None
    page: dict[str, Any] | None = None
    opaque_user_id: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    site_id: int | None = None
    zone_id: int | None = None


class AuctionRequest(msgspec.Struct):
    """Up to five auctions in one call."""

    auctions: Annotated[list[Auction], msgspec.Meta(min_length=1, max_length=MAX_AUCTIONS)]


class Winner(msgspec.Struct, rename="camel"):
    """An auction's winner: rank, product id, resolved bid id, campaign."""

    rank: int
    type: str
    id: str
    resolved_bid_id: str
    campaign_id: str


class Result(msgspec.Struct, rename="camel", omit_defaults=True):
    """One auction's result: its winners, `error`, and our message and explain."""

    result_type: str
    winners: list[Winner]
    error: bool  # always sent: Topsort's result type requires it
    message: str | None = None  # our extension: why an auction failed
    # our extension, with ?explain=true: why each ad won or lost (/api/v2's explain shape)
    explain: dict[str, Any] | None = None


class AuctionResponse(msgspec.Struct):
    """The results, one per auction in order."""

    results: list[Result]


class Tracked(msgspec.Struct, rename="camel"):
    """An impression or a click of an auction winner."""

    id: Text
    resolved_bid_id: Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]
    occurred_at: str | None = None
    opaque_user_id: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    placement: dict[str, Any] | None = None


class Item(msgspec.Struct, rename="camel"):
    """A purchased product: id, unit price, quantity."""

    product_id: Text
    unit_price: Annotated[float, msgspec.Meta(ge=0, le=1e7)]
    quantity: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 1
    resolved_bid_id: str | None = None
    vendor_id: str | None = None


class Purchase(msgspec.Struct, rename="camel"):
    """A purchase event: order id, user, items."""

    id: Text
    items: Annotated[list[Item], msgspec.Meta(min_length=1, max_length=1000)]
    occurred_at: str | None = None
    opaque_user_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None


class EventsRequest(msgspec.Struct):
    """Impressions, clicks and purchases reported in one call."""

    impressions: Annotated[list[Tracked], msgspec.Meta(max_length=MAX_EVENTS)] = []
    clicks: Annotated[list[Tracked], msgspec.Meta(max_length=MAX_EVENTS)] = []
    purchases: Annotated[list[Purchase], msgspec.Meta(max_length=MAX_EVENTS)] = []


auction_decoder = msgspec.json.Decoder(AuctionRequest)
events_decoder = msgspec.json.Decoder(EventsRequest)
encoder = msgspec.json.Encoder()
