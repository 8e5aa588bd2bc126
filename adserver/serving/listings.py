"""Sponsored-listings routes in the Topsort v2 shape (adserver/wire/topsort.py).

`POST /v2/auctions`: up to 5 auctions a call, each run through the decision pipeline as one
sponsored-product placement of `slots` (up to 40) and answered with ranked winners. An
auction's candidates:

- `products.ids` given: the ads of those products only (and within `category` if given),
  ranked by bid x pCTR x quality score (`products.qualityScores`, in (0, 1], default 1);
  the retailer chose them, so no relevance gate;
- else `category` (`id`, `ids`: in all of them, `disjunctions`: in one of each list): the
  ads of products in it; with a `searchQuery`, only those relevant to the query;
- else `searchQuery`: as a Kevel search (keywords, nearest products, relevance gate).

Pricing is CPC generalized second price. Each winner's `resolvedBidId` is its signed tracking
token: `POST /v2/events` takes impressions and clicks by it (the same ledger, dedupe by
event, and attribution as the beacons; a repeated event counts once) and purchases by order
id, attributed to earlier clicks and impressions of the same user (`opaqueUserId`). An
event's `occurredAt` is its time when it lies in the last 7 days (else: when received).

Both routes take an API key as `Authorization: Bearer <key>` (or `X-Api-Key`) of role admin
or readonly; the key's network is the marketplace (an unscoped key names it with
`?network_id=`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import msgspec
import numpy as np
from starlette.requests import Request
from starlette.responses import Response

from adserver.common import apikeys, clock
from adserver.common.entities import MAX_AMOUNT
from adserver.common.validation import TOO_DEEP, ascii_int
from adserver.config import Config
from adserver.serving import beacons, metrics, pipeline
from adserver.serving.bound import BoundSnapshot
from adserver.serving.errors import error, field_of
from adserver.serving.stages import sponsored
from adserver.serving.stages.resolve import BadRequest
from adserver.serving.worker import Worker
from adserver.snapshot import format as f
from adserver.wire import kevel, topsort

DIV = "listings"


class Unauthorized(Exception):
    """A listings call without a key of the right role."""

    pass


def network_of(
    worker: Worker,
    snap: BoundSnapshot,
    request: Request,
    roles: tuple[str, ...] = ("admin", "readonly"),
) -> int:
    """The marketplace a request's key speaks for (Unauthorized when none, or when the key
    is not of one of `roles`: reporting events writes, so it takes an admin key)."""
    caller = worker.caller(request)
    if caller is None or caller.role not in roles:
        raise Unauthorized(
            f"send an API key of role {' or '.join(roles)} as Authorization: Bearer <key>"
        )
    network: int | None = caller.network
    if network == apikeys.UNSCOPED:
        network = ascii_int(request.query_params.get("network_id", ""))
        if network is None:
            raise BadRequest("network_id", "an unscoped key must name the network")
    if network not in snap.networks:
        raise BadRequest("network_id", f"unknown network {network}")
    return network


def _category_rows(
    snap: BoundSnapshot, network: int, types: tuple[int, ...], cat: topsort.Category
) -> np.ndarray:
    """Ad rows (of `types`) of products in the category expression (CNF)."""
    groups = (
        ([[cat.id]] if cat.id else [])
        + [[i] for i in cat.ids or ()]
        + [list(d) for d in cat.disjunctions or ()]
    )
    result: np.ndarray | None = None
    for group in groups:
        keys = [f.posting_key("cat", network, t, f.category_id(c)) for t in types for c in group]
        found = snap.lists(keys)
        rows = np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.int32)
        result = rows if result is None else np.intersect1d(result, rows)
    return result if result is not None else np.zeros(0, dtype=np.int32)


def context(
    snap: BoundSnapshot, network: int, types: tuple[int, ...], a: topsort.Auction
) -> sponsored.Context | None:
    """The auction's own candidates and relevance (None: a plain search)."""
    if a.products is None and a.category is None:
        return None
    ctx = sponsored.Context(types)
    rows: np.ndarray | None = None
    if a.products is not None:
        ids = a.products.ids
        scores = a.products.quality_scores
        if scores is not None and len(scores) != len(ids):
            raise BadRequest("products.qualityScores", "needs one score per product id")
        if scores is not None and not all(0 < q <= 1 for q in scores):
            raise BadRequest("products.qualityScores", "each score must be in (0, 1]")
        prows = sponsored.product_rows(snap, network, ids)
        known = prows >= 0
        found = sponsored.product_lists(snap, np.unique(prows[known]), types)
        rows = np.concatenate(found) if found else np.zeros(0, dtype=np.int32)
        q = np.array(scores if scores is not None else [1.0] * len(ids))[known]
        order = np.argsort(prows[known], kind="stable")
        ctx.quality = (prows[known][order], q[order])
    if a.category is not None:
        in_category = _category_rows(snap, network, types, a.category)
        rows = in_category if rows is None else np.intersect1d(rows, in_category)
    ctx.candidates = rows.astype(np.int32)  # type: ignore[union-attr]
    if a.products is None and a.search_query and snap.embedder is not None:
        ctx.vector, ctx.confidence = snap.embedder.query(a.search_query)
    return ctx


def run_auction(
    b: pipeline.Bundle, network: int, a: topsort.Auction, ctx: pipeline.Facts
) -> tuple[topsort.Result, dict[str, Any] | None]:
    """One auction's result and its decision record (None: it did not run). With an explain
    caller in `ctx`, the result carries the placement's explain."""
    snap = b.snap
    if a.type == "banners":
        return topsort.Result(
            result_type="banners",
            winners=[],
            error=True,
            message="banners auctions are not supported",
        ), None
    types = tuple(sorted(snap.sponsored_ad_types))
    if not types or snap.products is None:
        return topsort.Result(
            result_type="listings",
            winners=[],
            error=True,
            message="the network has no sponsored-product index yet",
        ), None
    if a.products is None and a.category is None and not a.search_query:
        return topsort.Result(
            result_type="listings",
            winners=[],
            error=True,
            message="an auction needs products, a category or a searchQuery",
        ), None
    site = (
        a.site_id
        if a.site_id is not None
        else min((s for s, n in snap.sites.items() if n == network), default=0)
    )
    placement = kevel.Placement(
        div_name=DIV,
        network_id=network,
        site_id=site,
        zone_ids=[a.zone_id] if a.zone_id else None,
        ad_types=list(types),
        count=a.slots,
    )
    req = kevel.DecisionRequest(
        placements=[placement],
        search_term=a.search_query,
        user=kevel.User(key=a.opaque_user_id or None),
    )
    given = context(snap, network, types, a)
    ctx.listings = {DIV: given} if given is not None else None
    response, record = pipeline.decide(b, req, ctx)
    made = response.decisions[DIV]
    items = made if isinstance(made, list) else [made] if made else []
    winners = []
    for rank, d in enumerate(items, 1):
        product = msgspec.json.decode(d.contents)[0]["data"].get("productId", "")
        winners.append(
            topsort.Winner(
                rank=rank,
                type="product",
                id=product,
                resolved_bid_id=d.impression_url.split("t=", 1)[1],
                campaign_id=str(d.campaign_id),
            )
        )
    explain = response.explain.get(DIV) if response.explain else None
    return topsort.Result(
        result_type="listings", winners=winners, error=False, explain=explain
    ), record


MAX_AGE_S = 7 * 86400  # occurredAt older than this, or in the future, is replaced by now
SKEW_S = 60


def _epoch(text: str | None) -> float | None:
    """The unix time of an RFC 3339 `occurredAt`, or None when absent or implausible."""
    if not text:
        return None
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest("occurredAt", f"not an RFC 3339 time: {text!r}") from None
    if t.tzinfo is None:
        raise BadRequest("occurredAt", "needs a time zone")
    now = clock.now()
    return t.timestamp() if now - MAX_AGE_S <= t.timestamp() <= now + SKEW_S else None


def routes(worker: Worker, config: Config) -> dict[str, Any]:
    async def prelude(
        request: Request, decoder: Any, roles: tuple[str, ...] = ("admin", "readonly")
    ) -> tuple[pipeline.Bundle, int, Any] | Response:
        bundle = worker.bundle
        if bundle is None or worker.events is None:
            return error(503, "not_ready", "no snapshot loaded yet")
        try:
            network = network_of(worker, bundle.snap, request, roles)
        except Unauthorized as e:
            return error(401, "unauthorized", str(e))
        except BadRequest as e:
            return error(400, "invalid", e.message, e.field)
        body = await request.body()
        if len(body) > config.max_body_bytes:
            return error(413, "too_large", f"body larger than {config.max_body_bytes} bytes")
        try:
            return bundle, network, decoder.decode(body)
        except msgspec.ValidationError as e:
            field, message = field_of(e)
            return error(400, "invalid", message, field)
        except msgspec.DecodeError as e:
            return error(400, "malformed_json", f"body is not valid JSON: {e}")
        except RecursionError:
            return error(400, "malformed_json", TOO_DEEP)

    async def auctions(request: Request) -> Response:
        got = await prelude(request, topsort.auction_decoder)
        if isinstance(got, Response):
            return got
        bundle, network, body = got
        results = []
        # ?explain=true: the caller (an admin or read-only key of the network) reads why
        explain = (
            worker.caller(request) if request.query_params.get("explain") in ("1", "true") else None
        )
        for i, a in enumerate(body.auctions):
            ctx = worker.facts(
                bundle.snap,
                clock.now(),
                config.public_url or "",
                explain,
                request.headers.get("user-agent") or "",
            )
            try:
                result, record = run_auction(bundle, network, a, ctx)
            except BadRequest as e:
                return error(400, "invalid", e.message, f"auctions[{i}].{e.field}")
            if record is not None and worker.records is not None:
                worker.records.append(record)
            results.append(result)
        metrics.TALLY.ok += 1
        return Response(
            topsort.encoder.encode(topsort.AuctionResponse(results)),
            200,
            media_type="application/json",
        )

    async def events(request: Request) -> Response:
        got = await prelude(request, topsort.events_decoder, ("admin",))  # it writes
        if isinstance(got, Response):
            return got
        _, network, body = got
        rejected: list[dict[str, str]] = []
        pending = []
        net_field = beacons.FIELDS.index("network")
        for kind, items in (("imp", body.impressions), ("click", body.clicks)):
            for ev in items:
                verdict, fields, event, message = beacons.verify(worker, kind, ev.resolved_bid_id)
                if verdict != "ok":
                    rejected.append({"id": ev.id, "reason": message or "resolvedBidId expired"})
                elif fields[net_field] != network:
                    rejected.append({"id": ev.id, "reason": "resolvedBidId of another network"})
                else:
                    try:
                        ts = _epoch(ev.occurred_at)
                    except BadRequest as e:
                        rejected.append({"id": ev.id, "reason": e.message})
                        continue
                    pending.append(
                        beacons.append(worker, kind, fields, event, False, {"eid": ev.id}, ts)
                    )
        for p in body.purchases:
            if not p.opaque_user_id:
                rejected.append({"id": p.id, "reason": "opaqueUserId is required"})
                continue
            try:
                ts = _epoch(p.occurred_at) or clock.now()
            except BadRequest as e:
                rejected.append({"id": p.id, "reason": e.message})
                continue
            items = [[i.product_id, int(round(i.unit_price * 1e6)), i.quantity] for i in p.items]
            if sum(i[1] * i[2] for i in items) > MAX_AMOUNT * 1_000_000:
                rejected.append(
                    {"id": p.id, "reason": f"the purchase's items total more than {MAX_AMOUNT:,}"}
                )
                continue
            events = worker.events
            assert events is not None  # prelude answered 503 without an event log
            pending.append(
                events.append(
                    {
                        "t": "conv",
                        "id": f"o:{network}:{p.id}",
                        "ts": ts,
                        "order": p.id,
                        "user": p.opaque_user_id,
                        "network": network,
                        "items": items,
                        "revenue": sum(i[1] * i[2] for i in items),
                        "rid": uuid.uuid4().hex,
                    }
                )
            )
        await asyncio.gather(*pending)  # one group commit for the lot
        return Response(
            topsort.encoder.encode({"accepted": len(pending), "rejected": rejected}),
            200,
            media_type="application/json",
        )

    return {"/v2/auctions": auctions, "/v2/events": events}
