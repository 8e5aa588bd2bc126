"""Beacons: impression pixel, click redirect, custom-event pixel (Kevel's shapes) and
server-to-server conversions. Each good event is appended to the worker's `events` log and
answered only after the batch holding it is fsynced (adserver/serving/eventlog.py).

Token fields (written by stages/respond.py): request id, ad, flight, creative, campaign,
advertiser, divName, clear price (micro-units), rate type, user key, bot filtering asked,
site, zone, network, click destination, custom event ids allowed. The URL path names the
event: /i.gif an impression, /r a click, /e.gif?e=<id> a custom event of the allowed ids.
"""

from __future__ import annotations

import base64
import uuid
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from adserver import clock
from adserver.serving import bots, metrics
from adserver.serving.stages.respond import TOKEN_KIND
from adserver.serving.worker import Worker
from adserver.validation import FieldError, Invalid, convert
from adserver.wire.kevel import EVENT_CLICK, EVENT_VIEW

GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_CACHE = {"cache-control": "no-store, max-age=0"}
FIELDS = ("req", "ad", "flight", "creative", "campaign", "advertiser", "div", "price",
          "rate", "user", "botf", "site", "zone", "network")


def _micros(raw: str, name: str) -> int:
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise Invalid([FieldError(name, "must be a decimal amount")]) from None
    if not value.is_finite() or value < 0 or value > 10**9:
        raise Invalid([FieldError(name, "must be an amount from 0 to 1e9")])
    return int(value * 1_000_000)


def _params(request: Request) -> dict[str, Any]:
    """The revenue parameters the published client may append to a tracking URL."""
    q = request.query_params
    out: dict[str, Any] = {}
    for name in ("override", "additional", "gmv"):
        if q.get(name):
            out[name] = _micros(q[name], name)
    if q.get("eventMultiplier"):
        raw = q["eventMultiplier"]
        if not raw.isdigit() or not 1 <= int(raw) <= 10000:
            raise Invalid([FieldError("eventMultiplier", "must be an integer from 1 to 10000")])
        out["mult"] = int(raw)
    return out


class ConversionItem(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    product_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    unit_price: Decimal
    quantity: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 1


class Conversion(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A purchase reported server to server."""

    order_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    user_key: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    network_id: Annotated[int, msgspec.Meta(ge=1)]
    items: Annotated[list[ConversionItem], msgspec.Meta(min_length=1, max_length=1000)]
    revenue: Decimal | None = None
    occurred_at: float | None = None
    """Unix time of the purchase (default: when it is received)."""


def verify(worker: Worker, kind: str, token: str | None, event_raw: str = ""
           ) -> tuple[str, list[Any], int, str]:
    """Check a tracking token for an event of `kind` ("imp", "click", "event"): returns
    (verdict, token fields, Kevel event id, message); verdict "ok", "expired" (a click past
    its expiry: send the user on, bill nothing) or an HTTP status as text."""
    signer = worker.signer
    assert signer is not None
    verdict, layout, fields = signer.verify(token or "", clock.now())
    if verdict == "ok" and (layout != TOKEN_KIND or len(fields) != len(FIELDS) + 2):
        verdict = "malformed"
    if verdict != "ok":
        metrics.refused_tokens.labels(verdict).inc()
        if verdict == "expired" and kind == "click" and len(fields) == len(FIELDS) + 2:
            return "expired", fields, EVENT_CLICK, ""
        return ("400" if verdict == "malformed" else "403"), fields, 0, \
            f"tracking token refused: {verdict}"
    event = {"imp": EVENT_VIEW, "click": EVENT_CLICK}.get(kind)
    if event is None:
        event = int(event_raw) if event_raw.isdigit() else -1
        if event not in fields[len(FIELDS) + 1]:
            metrics.refused_tokens.labels("event not asked for").inc()
            return "400", fields, event, "event id not among those the decision asked for"
    return "ok", fields, event, ""


async def append(worker: Worker, kind: str, fields: list[Any], event: int, bot: bool,
                 extra: dict[str, Any], ts: float | None = None) -> None:
    """Append a verified tracking event to the worker's log (fsynced before returning);
    `ts`: when it happened, if not now."""
    rec = dict(zip(FIELDS, fields))
    ident = f"{rec['req']}:{rec['ad']}"
    rec.update(t=kind, ev=event, ts=ts or clock.now(), bot=bot, **extra,
               id=f"{kind[0]}:{ident}" if kind != "event" else f"e{event}:{ident}")
    if kind == "click":
        rec["dest"] = fields[len(FIELDS)]
    await worker.events.append(rec)  # type: ignore[union-attr]
    metrics.beacons.labels(kind, "bot" if bot else "ok").inc()


def routes(worker: Worker) -> dict[str, Any]:
    from adserver.serving.app import error, may_explain  # the app module owns the JSON errors

    async def record(kind: str, token: str | None, request: Request, extra: dict[str, Any]
                     ) -> tuple[str, list[Any]] | Response:
        if worker.signer is None or worker.events is None:
            return error(503, "not_ready", "not ready")
        verdict, fields, event, message = verify(worker, kind, token,
                                                 request.query_params.get("e", ""))
        if verdict == "expired":
            return "expired", fields
        if verdict != "ok":
            return error(int(verdict), "bad_token", message)
        bot = bots.why_invalid(request.headers) if fields[FIELDS.index("botf")] else None
        await append(worker, kind, fields, event, bot is not None, extra)
        return "ok", fields

    async def pixel(request: Request, kind: str) -> Response:
        try:
            extra = _params(request)
        except Invalid as e:
            return error(400, "invalid", e.errors[0].message, e.errors[0].field)
        done = await record(kind, request.query_params.get("t"), request, extra)
        if isinstance(done, Response):
            return done
        return Response(GIF, media_type="image/gif", headers=NO_CACHE)

    async def impression(request: Request) -> Response:
        return await pixel(request, "imp")

    async def custom_event(request: Request) -> Response:
        return await pixel(request, "event")

    async def click(request: Request) -> Response:
        try:
            extra = _params(request)
        except Invalid as e:
            return error(400, "invalid", e.errors[0].message, e.errors[0].field)
        done = await record("click", request.query_params.get("t"), request, extra)
        if isinstance(done, Response):
            return done
        dest = done[1][len(FIELDS)]
        if not dest:
            return Response(status_code=204, headers=NO_CACHE)
        return Response(status_code=302, headers={"location": dest, **NO_CACHE})

    async def conversion(request: Request) -> Response:
        snap = worker.snapshot
        presented = request.headers.get("x-api-key") or request.headers.get("x-adzerk-apikey")
        if snap is None or worker.events is None:
            return error(503, "not_ready", "not ready")
        if not may_explain(snap, worker.config, presented, roles=("admin",)):
            return error(401, "unauthorized", "an admin API key is required")
        try:
            body = msgspec.json.decode(await request.body())
        except msgspec.DecodeError as e:
            return error(400, "malformed_json", f"body is not valid JSON: {e}")
        try:
            conv = convert(Conversion, body)
        except Invalid as e:
            return error(400, "invalid", "invalid conversion", fields=e.errors)
        items = [[i.product_id, int(i.unit_price * 1_000_000), i.quantity] for i in conv.items]
        revenue = conv.revenue if conv.revenue is not None else sum(
            (i.unit_price * i.quantity for i in conv.items), Decimal(0))
        await worker.events.append({
            "t": "conv", "id": f"o:{conv.network_id}:{conv.order_id}",
            "ts": conv.occurred_at or clock.now(), "order": conv.order_id,
            "user": conv.user_key, "network": conv.network_id, "items": items,
            "revenue": int(revenue * 1_000_000), "rid": uuid.uuid4().hex})
        metrics.beacons.labels("conversion", "ok").inc()
        return Response(msgspec.json.encode({"order_id": conv.order_id, "accepted": True}),
                        status_code=202, media_type="application/json")

    return {"/i.gif": impression, "/e.gif": custom_event, "/r": click,
            "/v1/conversions": conversion}
