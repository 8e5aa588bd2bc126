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

from adserver.common import clock
from adserver.common.entities import MAX_AMOUNT
from adserver.common.validation import FieldError, Invalid, ascii_int, convert, json_body, safe_url
from adserver.config import Config
from adserver.serving import bots, metrics
from adserver.serving.errors import error
from adserver.serving.stages.respond import TOKEN_KIND
from adserver.serving.worker import Worker
from adserver.wire.kevel import EVENT_CLICK, EVENT_VIEW

GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_CACHE = {"cache-control": "no-store, max-age=0"}
FIELDS = (
    "req",
    "ad",
    "flight",
    "creative",
    "campaign",
    "advertiser",
    "div",
    "price",
    "rate",
    "user",
    "botf",
    "site",
    "zone",
    "network",
)


ADJUSTMENTS = ("override", "additional", "eventMultiplier", "gmv")


def _micros(raw: str, name: str, limit: float) -> int:
    try:
        value = Decimal(raw) if raw.isascii() else Decimal("nan")
    except InvalidOperation:
        raise Invalid([FieldError(name, "must be a decimal amount")]) from None
    if not value.is_finite() or value < 0 or value > Decimal(str(limit)):
        raise Invalid([FieldError(name, f"must be an amount from 0 to {limit:g}")])
    if value != value.quantize(Decimal("0.000001")):
        raise Invalid([FieldError(name, "at most 6 decimal places")])
    return int(value * 1_000_000)


def _params(q: Any, config: Config) -> dict[str, Any]:
    """The revenue adjustments a tracking URL carries (Kevel's pixel parameters), range
    checked: the caller must be allowed to set them (see `adjust`)."""
    out: dict[str, Any] = {}
    for name in ("override", "additional"):
        if q.get(name):
            out[name] = _micros(q[name], name, config.max_revenue_adjustment)
    if q.get("gmv"):
        out["gmv"] = _micros(q["gmv"], "gmv", MAX_AMOUNT)
    if q.get("eventMultiplier"):
        mult, top = ascii_int(q["eventMultiplier"], 6), config.max_event_multiplier
        if mult is None or not 1 <= mult <= top:
            raise Invalid([FieldError("eventMultiplier", f"must be an integer from 1 to {top}")])
        out["mult"] = mult
    return out


Id = Annotated[int, msgspec.Meta(ge=1, le=2**53)]


class ConversionItem(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A product in a reported purchase: id, unit price, quantity."""

    product_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    unit_price: Decimal
    quantity: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 1


class Conversion(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A purchase reported server to server."""

    order_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    user_key: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    network_id: Id
    items: Annotated[list[ConversionItem], msgspec.Meta(min_length=1, max_length=1000)]
    revenue: Decimal | None = None
    occurred_at: Annotated[float, msgspec.Meta(ge=0, le=2**33)] | None = None
    """Unix time of the purchase (default: when it is received)."""

    def check(self) -> list[FieldError]:
        """Amounts within MAX_AMOUNT, the items' total too."""
        errors = [
            FieldError(f"items[{n}].unit_price", f"must be at most {MAX_AMOUNT:,}")
            for n, i in enumerate(self.items)
            if i.unit_price > MAX_AMOUNT
        ]
        if self.revenue is not None and self.revenue > MAX_AMOUNT:
            errors.append(FieldError("revenue", f"must be at most {MAX_AMOUNT:,}"))
        if not errors and sum(i.unit_price * i.quantity for i in self.items) > MAX_AMOUNT:
            errors.append(FieldError("items", f"the items total more than {MAX_AMOUNT:,}"))
        return errors


def verify(
    worker: Worker, kind: str, token: str | None, event_raw: str = ""
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
        return (
            ("400" if verdict == "malformed" else "403"),
            fields,
            0,
            f"tracking token refused: {verdict}",
        )
    event = {"imp": EVENT_VIEW, "click": EVENT_CLICK}.get(kind)
    if event is None:
        event = ascii_int(event_raw, 9) or -1
        if event not in fields[len(FIELDS) + 1]:
            metrics.refused_tokens.labels("event not asked for").inc()
            return "400", fields, event, "event id not among those the decision asked for"
    return "ok", fields, event, ""


async def append(
    worker: Worker,
    kind: str,
    fields: list[Any],
    event: int,
    bot: bool,
    extra: dict[str, Any],
    ts: float | None = None,
) -> None:
    """Append a verified tracking event to the worker's log (fsynced before returning);
    `ts`: when it happened, if not now."""
    rec = dict(zip(FIELDS, fields))
    ident = f"{rec['req']}:{rec['ad']}"
    rec.update(
        t=kind,
        ev=event,
        ts=ts or clock.now(),
        bot=bot,
        **extra,
        id=f"{kind[0]}:{ident}" if kind != "event" else f"e{event}:{ident}",
    )
    if kind == "click":
        rec["dest"] = fields[len(FIELDS)]
    await worker.events.append(rec)  # type: ignore[union-attr]
    metrics.beacons.labels(kind, "bot" if bot else "ok").inc()


class Forbidden(Exception):
    """A tracking request asking for what its key may not do (a revenue adjustment)."""

    def __init__(self, field: str, message: str):
        self.field, self.message = field, message


def adjust(worker: Worker, config: Config, request: Request, fields: list[Any]) -> dict[str, Any]:
    """The revenue adjustments of a beacon, allowed only server to server: a POST with an
    admin API key of the flight's network (a browser cannot set them, nor can anyone who
    copies a tracking URL). Raises Invalid (400) or Forbidden (403)."""
    q = request.query_params
    if not any(q.get(name) for name in ADJUSTMENTS):
        return {}
    field = next(name for name in ADJUSTMENTS if q.get(name))
    if request.method != "POST":
        raise Forbidden(
            field,
            "revenue adjustments are accepted only server to server: POST"
            " the tracking URL with an admin API key of the flight's network",
        )
    caller = worker.caller(request)
    if (
        caller is None
        or caller.role != "admin"
        or not caller.may_see(fields[FIELDS.index("network")])
    ):
        raise Forbidden(
            field, "revenue adjustments need an admin API key of the flight's network (X-Api-Key)"
        )
    return _params(q, config)


def routes(worker: Worker, config: Config) -> dict[str, Any]:

    async def record(kind: str, request: Request) -> tuple[str, list[Any]] | Response:
        if worker.signer is None or worker.events is None:
            return error(503, "not_ready", "not ready")
        q = request.query_params
        verdict, fields, event, message = verify(worker, kind, q.get("t"), q.get("e", ""))
        if verdict == "expired":
            return "expired", fields
        if verdict != "ok":
            return error(int(verdict), "bad_token", message)
        try:
            extra = adjust(worker, config, request, fields)
        except Invalid as e:
            return error(400, "invalid", e.errors[0].message, e.errors[0].field)
        except Forbidden as e:
            return error(403, "forbidden", e.message, e.field)
        bot = bots.why_invalid(request.headers) if fields[FIELDS.index("botf")] else None
        await append(worker, kind, fields, event, bot is not None, extra)
        return "ok", fields

    async def pixel(request: Request, kind: str) -> Response:
        done = await record(kind, request)
        if isinstance(done, Response):
            return done
        return Response(GIF, media_type="image/gif", headers=NO_CACHE)

    async def impression(request: Request) -> Response:
        return await pixel(request, "imp")

    async def custom_event(request: Request) -> Response:
        return await pixel(request, "event")

    async def click(request: Request) -> Response:
        done = await record("click", request)
        if isinstance(done, Response):
            return done
        dest = done[1][len(FIELDS)]
        if not dest:
            return Response(status_code=204, headers=NO_CACHE)
        snap = worker.snapshot
        domains = snap.click_domains.get(done[1][FIELDS.index("network")]) if snap else None
        if not safe_url(dest, domains):  # signed before it was checked, or not allowed
            metrics.refused_tokens.labels("unsafe destination").inc()
            return Response(status_code=204, headers=NO_CACHE)
        return Response(status_code=302, headers={"location": dest, **NO_CACHE})

    async def conversion(request: Request) -> Response:
        snap = worker.snapshot
        if snap is None or worker.events is None:
            return error(503, "not_ready", "not ready")
        caller = worker.caller(request)
        if caller is None or caller.role != "admin":
            return error(401, "unauthorized", "an admin API key is required")
        try:
            body = json_body(await request.body())
        except Invalid as e:
            return error(400, "malformed_json", e.errors[0].message, e.errors[0].field)
        try:
            conv = convert(Conversion, body)
        except Invalid as e:
            return error(400, "invalid", "invalid conversion", fields=e.errors)
        if not caller.may_see(conv.network_id) or conv.network_id not in snap.networks:
            return error(
                404, "not_found", f"no network {conv.network_id} for this key", "network_id"
            )
        total = sum((i.unit_price * i.quantity for i in conv.items), Decimal(0))
        items = [[i.product_id, int(i.unit_price * 1_000_000), i.quantity] for i in conv.items]
        revenue = conv.revenue if conv.revenue is not None else total
        await worker.events.append(
            {
                "t": "conv",
                "id": f"o:{conv.network_id}:{conv.order_id}",
                "ts": conv.occurred_at or clock.now(),
                "order": conv.order_id,
                "user": conv.user_key,
                "network": conv.network_id,
                "items": items,
                "revenue": int(revenue * 1_000_000),
                "rid": uuid.uuid4().hex,
            }
        )
        metrics.beacons.labels("conversion", "ok").inc()
        return Response(
            msgspec.json.encode({"order_id": conv.order_id, "accepted": True}),
            status_code=202,
            media_type="application/json",
        )

    return {
        "/i.gif": impression,
        "/e.gif": custom_event,
        "/r": click,
        "/v1/conversions": conversion,
    }
