"""The console's live preview: "what would this page show, and why isn't my ad showing?"

The user describes a page (site, zone, ad type, page type, search, keywords, product,
category, user key); the console sends that decision request to the decision API, as a
storefront would but marked `notrack` (no decision record; its tracking URLs are never
fired here, so nothing is billed), with an explain credential for the user's own scope
(formats/signing.explain_token, signed with the tracking keys the workers hold). The page
shows the ads that won with their creatives, the pricing of the user's own winners (the
clearing price), and every candidate of the user's and why it won or lost. The workers scope
the explain: an advertiser sees only its own ads' fates.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adserver.common import clock
from adserver.control.console.pages import api_message
from adserver.formats import signing

DIV = "preview"
TIMEOUT_S = 5.0


def decision_url(settings: Any) -> str:
    """The decision API's base URL as the console reaches it."""
    url = getattr(settings, "decision_url", None) or (
        f"http://{getattr(settings, 'host', '127.0.0.1')}:{getattr(settings, 'port', 8080)}"
    )
    return url.replace("//0.0.0.0:", "//127.0.0.1:")


def call_decisions(
    url: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = TIMEOUT_S,
) -> tuple[int, Any]:
    """A JSON call to the decision API (POST with a body, else GET): (HTTP status, the
    decoded answer or None); status 0 with the reason when it did not answer."""
    req = urllib.request.Request(
        url + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={
            "content-type": "application/json",
            "user-agent": "adserver-console",
            **(headers or {}),
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        try:
            return e.code, json.loads(e.read())
        except ValueError:
            return e.code, None
    except (OSError, ValueError) as e:
        return 0, {"error": {"message": f"the decision API did not answer: {e}"}}


def _ids(raw: str) -> list[str]:
    return [w.strip() for w in raw.split(",") if w.strip()][:20]


def routes(console: Any, api: Any) -> list[Route]:
    call = console.call

    async def preview(request: Request) -> Response:
        s = console.signed_in(request)
        if s is None:
            return console.to_login()
        who = s.user.principal()
        q = request.query_params
        _, sites = await call(who, "GET", "/v1/sites", {"limit": 500})
        _, zones = await call(who, "GET", "/v1/zones", {"limit": 500})
        _, types = await call(who, "GET", "/v1/ad_types", {"limit": 500})
        sites_, zones_, types_ = ((x or {}).get("data", []) for x in (sites, zones, types))
        form = {
            k: q.get(k, "")
            for k in (
                "site_id",
                "zone_id",
                "ad_type_id",
                "count",
                "page_type",
                "search",
                "keywords",
                "product_id",
                "category",
                "user_key",
            )
        }
        form["count"] = form["count"] or "2"
        errors: dict[str, str] = {}
        result: dict[str, Any] | None = None
        message = None
        if "show" in q:
            site = next((x for x in sites_ if str(x["id"]) == form["site_id"]), None)
            if site is None:
                errors["site_id"] = "choose a site"
            if not any(str(t["id"]) == form["ad_type_id"] for t in types_):
                errors["ad_type_id"] = "choose an ad type"
            if form["zone_id"] and not any(str(z["id"]) == form["zone_id"] for z in zones_):
                errors["zone_id"] = "not a zone you may use"
            if not (form["count"].isascii() and form["count"].isdigit()) or not (
                1 <= int(form["count"]) <= 10
            ):
                errors["count"] = "a whole number from 1 to 10"
            if not errors and site is not None:
                body = _request(form, site["network_id"])
                keys = await run_in_threadpool(signing.read_keys, os.path.dirname(api.store.path))
                token = signing.explain_token(
                    signing.Signer(keys),
                    s.user.role,
                    s.user.network_id,
                    s.user.advertiser_id,
                    clock.now(),
                )
                status, got = await run_in_threadpool(
                    call_decisions,
                    decision_url(api.settings),
                    "/api/v2",
                    body,
                    {"x-adzerk-explain": token},
                )
                if status == 200:
                    result = _shape(got, s.user)
                else:
                    message = api_message(got, status)
        return console.view(
            request,
            s,
            "preview_page.html",
            400 if errors or message else 200,
            form=form,
            errors=errors,
            message=message,
            sites=sites_,
            zones=zones_,
            ad_types=types_,
            result=result,
        )

    return [Route("/console/preview", preview)]


def _request(form: dict[str, str], network: int) -> dict[str, Any]:
    """The Kevel decision request of the form (notrack: a preview is never recorded)."""
    placement: dict[str, Any] = {
        "divName": DIV,
        "networkId": network,
        "siteId": int(form["site_id"]),
        "adTypes": [int(form["ad_type_id"])],
        "count": int(form["count"]),
    }
    if form["zone_id"]:
        placement["zoneIds"] = [int(form["zone_id"])]
    properties = {
        k: form[f]
        for k, f in (
            ("page_type", "page_type"),
            ("productId", "product_id"),
            ("category", "category"),
        )
        if form[f]
    }
    if properties:
        placement["properties"] = properties
    body: dict[str, Any] = {
        "placements": [placement],
        "includePricingData": True,
        "notrack": True,
    }
    if form["search"]:
        body["searchTerm"] = form["search"]
    if form["keywords"]:
        body["keywords"] = _ids(form["keywords"])
    if form["user_key"]:
        body["user"] = {"key": form["user_key"]}
    return body


def _shape(got: dict[str, Any], user: Any) -> dict[str, Any]:
    """Winners (pricing only for the user's own ads) and the explained candidates."""
    made = (got.get("decisions") or {}).get(DIV)
    winners = made if isinstance(made, list) else [made] if made else []
    mine = []
    for d in winners:
        own = user.advertiser_id is None or d.get("advertiserId") == user.advertiser_id
        mine.append(
            {
                "ad_id": d["adId"],
                "creative_id": d["creativeId"],
                "flight_id": d["flightId"],
                "advertiser_id": d["advertiserId"],
                "own": own,
                "pricing": d.get("pricing") if own else None,
            }
        )
    explain = ((got.get("explain") or {}).get(DIV)) or {}
    return {"winners": mine, "results": explain.get("results") or [], "explained": bool(explain)}
