"""The OpenAPI 3.1 document of the decision server (the data plane's port), generated from
the wire Structs: Kevel's Decision API v2, the Topsort-shaped listings auction and events,
Azure Personalizer's rank and reward, beacons, conversions, health and metrics.

Only the shapes live here; the facts of each format are in the wire modules. The management
API's document is adserver/control/openapi.py (a separate port, a separate document).
"""

from __future__ import annotations

import functools
from typing import Any

import msgspec

from adserver import __version__
from adserver.serving.beacons import Conversion
from adserver.wire import kevel, personalizer, topsort

REF = "#/components/schemas/{name}"
MONEY = {
    "anyOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": r"^\d+(\.\d{1,6})?$"}]
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(name=name)}


def _body(name: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(name)}}}


def _ok(
    description: str, schema: dict[str, Any] | None = None, media: str = "application/json"
) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description}
    if schema is not None:
        out["content"] = {media: {"schema": schema}}
    return out


ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "object"}}}
ERRORS = {
    "400": _ok("Invalid request: the bad field is named", ERROR),
    "401": _ok("Missing or invalid key", ERROR),
    "413": _ok("Body too large", ERROR),
    "429": _ok("Too many requests (Retry-After)", ERROR),
    "503": _ok("Not ready (no snapshot yet) or too many connections", ERROR),
}
BEARER: list[dict[str, list[str]]] = [{"Bearer": []}]
PERSONALIZER_KEY: list[dict[str, list[str]]] = [{"PersonalizerKey": []}]


def _beacon(summary: str, op_id: str, redirect: bool = False) -> dict[str, Any]:
    params = [
        {
            "name": "t",
            "in": "query",
            "required": True,
            "schema": {"type": "string"},
            "description": "the signed tracking token of the decision's URL",
        },
        {
            "name": "e",
            "in": "query",
            "schema": {"type": "string"},
            "description": "event id (/e.gif): a custom event of the ad",
        },
    ]
    params += [
        {
            "name": n,
            "in": "query",
            "schema": {"type": "string"},
            "description": "a revenue adjustment: needs POST and an admin key of the"
            " flight's network",
        }
        for n in ("override", "additional", "eventMultiplier", "gmv")
    ]
    responses: dict[str, Any] = {
        "204": _ok("Counted (or a repeat, or filtered as a robot)"),
        "200": _ok("A 1x1 GIF", {"type": "string"}, "image/gif"),
        "400": ERRORS["400"],
        "403": _ok("Not allowed", ERROR),
        "410": _ok("The token expired", ERROR),
    }
    if redirect:
        responses["302"] = _ok("On to the ad's click URL")
    op = {
        "tags": ["tracking"],
        "summary": summary,
        "operationId": op_id,
        "parameters": params,
        "responses": responses,
    }
    return {"get": op, "post": {**op, "operationId": op_id + "_post"}}


def _personalizer(base: str) -> dict[str, Any]:
    tag = ["personalizer" if base == "/personalizer" else "personalizer v1.0"]
    suffix = "" if base == "/personalizer" else "_v1"
    event = [{"name": "event_id", "in": "path", "required": True, "schema": {"type": "string"}}]

    def op(summary: str, op_id: str, body: str | None, answer: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "tags": tag,
            "summary": summary,
            "operationId": op_id + suffix,
            "security": PERSONALIZER_KEY,
            "responses": {
                "201" if answer else "204": _ok("Done", _ref(answer) if answer else None),
                **ERRORS,
            },
        }
        if body:
            out["requestBody"] = _body(body)
        return out

    def forwarded(name: str, what: str) -> dict[str, Any]:
        ops: dict[str, Any] = {}
        for method in ("get", "put", "post", "delete"):
            ops[method] = {
                "tags": tag,
                "summary": f"{what} (forwarded to the management API's"
                " /v1/personalizer/...; needs an unscoped admin key)",
                "operationId": f"{method}_{name}{suffix}",
                "security": PERSONALIZER_KEY,
                "responses": {
                    "200": _ok("As the management API answers", {"type": "object"}),
                    **ERRORS,
                },
            }
        return ops

    rest = [{"name": "rest", "in": "path", "required": True, "schema": {"type": "string"}}]
    paths: dict[str, Any] = {
        f"{base}/rank": {
            "post": op("Rank actions for a context", "rank", "RankRequest", "RankResponse")
        },
        f"{base}/events/{{event_id}}/reward": {
            "parameters": event,
            "post": op("Reward a ranking", "reward", "RewardRequest", None),
        },
        f"{base}/events/{{event_id}}/activate": {
            "parameters": event,
            "post": op("Activate a deferred ranking", "activate", None, None),
        },
        f"{base}/multislot/rank": {
            "post": op(
                "Rank actions for several slots",
                "multislot_rank",
                "MultiSlotRankRequest",
                "MultiSlotRankResponse",
            )
        },
        f"{base}/multislot/events/{{event_id}}/reward": {
            "parameters": event,
            "post": op(
                "Reward each slot of a ranking", "multislot_reward", "MultiSlotRewardRequest", None
            ),
        },
        f"{base}/multislot/events/{{event_id}}/activate": {
            "parameters": event,
            "post": op("Activate a deferred multi-slot ranking", "multislot_activate", None, None),
        },
        f"{base}/configurations/{{rest}}": {
            "parameters": rest,
            **forwarded("configurations", "Service and policy configuration"),
        },
    }
    for name in ("evaluations", "model", "logs", "featureImportances"):
        what = f"Personalizer {name}"
        paths[f"{base}/{name}"] = forwarded(name, what)
        paths[f"{base}/{name}/{{rest}}"] = {"parameters": rest, **forwarded(name + "_item", what)}
    return paths


@functools.cache
def document() -> dict[str, Any]:
    """The decision server's OpenAPI 3.1 document (built once)."""
    types: list[Any] = [
        kevel.DecisionRequest,
        kevel.DecisionResponse,
        topsort.AuctionRequest,
        topsort.AuctionResponse,
        topsort.EventsRequest,
        Conversion,
        personalizer.RankRequest,
        personalizer.RankResponse,
        personalizer.MultiSlotRankRequest,
        personalizer.MultiSlotRankResponse,
        personalizer.RewardRequest,
        personalizer.MultiSlotRewardRequest,
    ]
    _, components = msgspec.json.schema_components(types, ref_template=REF)
    for item in components["ConversionItem"]["properties"], components["Conversion"]["properties"]:
        for name, schema in item.items():
            if "decimal" in str(schema):
                item[name] = {
                    **MONEY,
                    "description": "amount of money (a JSON number or a decimal string)",
                }
    paths: dict[str, Any] = {
        "/api/v2": {
            "post": {
                "tags": ["decisions"],
                "summary": "Kevel Decision API v2: which ads to show",
                "operationId": "decide",
                "requestBody": _body("DecisionRequest"),
                "parameters": [
                    {
                        "name": "X-Adzerk-Explain",
                        "in": "header",
                        "schema": {"type": "string"},
                        "description": "an API key: adds why each candidate won or lost",
                    }
                ],
                "responses": {
                    "200": _ok("Decisions per placement", _ref("DecisionResponse")),
                    **ERRORS,
                },
            }
        },
        "/v2/auctions": {
            "post": {
                "tags": ["listings"],
                "summary": "Sponsored listings auctions (Topsort v2 shape)",
                "operationId": "auctions",
                "security": BEARER,
                "requestBody": _body("AuctionRequest"),
                "parameters": [
                    {
                        "name": "network_id",
                        "in": "query",
                        "schema": {"type": "integer"},
                        "description": "the network (only with an unscoped key)",
                    },
                    {
                        "name": "explain",
                        "in": "query",
                        "schema": {"enum": ["true", "false"]},
                        "description": "add each auction's explain",
                    },
                ],
                "responses": {
                    "200": _ok("One result per auction", _ref("AuctionResponse")),
                    **ERRORS,
                },
            }
        },
        "/v2/events": {
            "post": {
                "tags": ["listings"],
                "summary": "Impressions, clicks and purchases of auction winners (an admin key)",
                "operationId": "events",
                "security": BEARER,
                "requestBody": _body("EventsRequest"),
                "responses": {
                    "200": _ok(
                        "Accepted and rejected events",
                        {
                            "type": "object",
                            "properties": {
                                "accepted": {"type": "integer"},
                                "rejected": {"type": "array", "items": {"type": "object"}},
                            },
                        },
                    ),
                    **ERRORS,
                },
            }
        },
        "/i.gif": _beacon("Count an impression", "impression"),
        "/e.gif": _beacon("Count a custom event", "event"),
        "/r": _beacon("Count a click and redirect to the ad's destination", "click", True),
        "/v1/conversions": {
            "post": {
                "tags": ["tracking"],
                "summary": "Report a purchase (an admin key of its network)",
                "operationId": "conversion",
                "security": [{"ApiKey": []}],
                "requestBody": _body("Conversion"),
                "responses": {"202": _ok("Recorded"), **ERRORS},
            }
        },
        "/healthz": {
            "get": {
                "tags": ["operations"],
                "summary": "The process is alive",
                "operationId": "healthz",
                "responses": {"200": _ok("ok", {"type": "object"})},
            }
        },
        "/readyz": {
            "get": {
                "tags": ["operations"],
                "summary": "A snapshot is loaded",
                "operationId": "readyz",
                "responses": {"200": _ok("ready", {"type": "object"}), "503": ERRORS["503"]},
            }
        },
        "/metrics": {
            "get": {
                "tags": ["operations"],
                "summary": "Prometheus metrics (allowed networks, or a bearer key)",
                "operationId": "metrics",
                "responses": {
                    "200": _ok("Prometheus text", {"type": "string"}, "text/plain"),
                    "403": _ok("Not allowed", ERROR),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "tags": ["operations"],
                "summary": "This document",
                "operationId": "openapi",
                "responses": {"200": _ok("OpenAPI 3.1", {"type": "object"})},
            }
        },
    }
    paths.update(_personalizer("/personalizer"))
    paths.update(_personalizer("/personalizer/v1.0"))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "adserver decision API",
            "version": __version__,
            "description": "The data plane: decisions, auctions, tracking, Personalizer."
            " The management API is on the control port.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "Bearer": {"type": "http", "scheme": "bearer"},
                "ApiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
                "PersonalizerKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Ocp-Apim-Subscription-Key",
                },
            },
        },
    }
