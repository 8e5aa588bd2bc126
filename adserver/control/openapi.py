"""The OpenAPI 3.1 document of the management API, generated from the entity Structs."""

from __future__ import annotations

import copy
import functools
from typing import Any

import msgspec

from adserver import __version__
from adserver.common.entities import Product
from adserver.control.auth import KeyInfo, Principal
from adserver.control.products import BatchRequest, BatchResult, ProductOut
from adserver.control.schema import SPECS

REF = "#/components/schemas/{name}"


class FieldErrorBody(msgspec.Struct):
    """One bad field of an error: its name and what is wrong."""

    field: str
    message: str


class ErrorDetail(msgspec.Struct):
    """The error's status, code, message and bad fields."""

    status: int
    code: str
    message: str
    fields: list[FieldErrorBody] = []


class Error(msgspec.Struct):
    """Every error's document: `{"error": {...}}`."""

    error: ErrorDetail


MONEY_IN = {
    "anyOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": r"^\d+(\.\d{1,6})?$"}]
}


def _type_money(components: dict[str, Any]) -> None:
    """Money as it travels: written as a JSON number or a decimal string, returned as a
    JSON number (msgspec describes a Decimal as a string)."""

    def money(out: bool) -> dict[str, Any]:
        if out:
            return {"type": "number", "minimum": 0, "description": "amount of money"}
        return {
            **copy.deepcopy(MONEY_IN),
            "description": "amount of money, >= 0, at most 6"
            " decimal places (a JSON number or a decimal string)",
        }

    def walk(node: Any, out: bool) -> None:
        items = (
            node.items()
            if isinstance(node, dict)
            else enumerate(node)
            if isinstance(node, list)
            else ()
        )
        for key, value in list(items):
            if isinstance(value, dict) and value.get("format") == "decimal":
                node[key] = money(out)
            else:
                walk(value, out)

    for name, schema in components.items():
        walk(schema, name.endswith("Out"))


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(name=name)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERRORS = {
    "400": _json(_ref("Error"), "Invalid request: each bad field is named"),
    "401": _json(_ref("Error"), "Missing or invalid API key"),
    "403": _json(_ref("Error"), "The key's role may not do this"),
    "404": _json(_ref("Error"), "No such object visible to this key"),
    "413": _json(_ref("Error"), "Body too large"),
}


@functools.cache
def document() -> dict[str, Any]:
    """The whole OpenAPI 3.1 document (built once)."""
    types: list[Any] = [Error, KeyInfo, Principal, Product, ProductOut, BatchRequest, BatchResult]
    for spec in SPECS.values():
        types += [spec.struct, spec.out]
    _, components = msgspec.json.schema_components(types, ref_template=REF)
    _type_money(components)
    paths: dict[str, Any] = {}
    for spec in SPECS.values():
        name, out = spec.struct.__name__, spec.out.__name__
        patch = copy.deepcopy(components[name])
        patch.pop("required", None)
        components[name + "Patch"] = patch
        page = {
            "type": "object",
            "properties": {
                "data": {"type": "array", "items": _ref(out)},
                "next_cursor": {"type": ["string", "null"]},
            },
            "required": ["data", "next_cursor"],
        }
        id_param = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
        filters = [
            {"name": c.column, "in": "query", "required": False, "schema": {}}
            for c in spec.columns
            if c.kind in ("scalar", "bool")
        ]
        common = [
            {
                "name": "limit",
                "in": "query",
                "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
            },
            {"name": "cursor", "in": "query", "schema": {"type": "string"}},
            {
                "name": "archived",
                "in": "query",
                "schema": {"enum": ["false", "true", "all"], "default": "false"},
            },
        ]
        tag = [spec.name]
        a = "an" if spec.singular[0] in "aeiou" else "a"
        paths[f"/v1/{spec.name}"] = {
            "get": {
                "tags": tag,
                "summary": f"List {spec.name}",
                "operationId": f"list_{spec.name}",
                "parameters": common + filters,
                "responses": {"200": _json(page, "A page, in id order"), **ERRORS},
            },
            "post": {
                "tags": tag,
                "summary": f"Create {a} {spec.singular}",
                "operationId": f"create_{spec.name}",
                "requestBody": _json(_ref(name), spec.singular) | {"required": True},
                "responses": {"201": _json(_ref(out), "Created"), **ERRORS},
            },
        }
        paths[f"/v1/{spec.name}/{{id}}"] = {
            "parameters": [id_param],
            "get": {
                "tags": tag,
                "summary": f"Get {a} {spec.singular}",
                "operationId": f"get_{spec.name}",
                "responses": {"200": _json(_ref(out), "The object"), **ERRORS},
            },
            "patch": {
                "tags": tag,
                "summary": f"Change fields of {a} {spec.singular}",
                "operationId": f"update_{spec.name}",
                "requestBody": _json(_ref(name + "Patch"), "Fields to change") | {"required": True},
                "responses": {"200": _json(_ref(out), "Updated"), **ERRORS},
            },
        }
        paths[f"/v1/{spec.name}/{{id}}/archive"] = {
            "parameters": [id_param],
            "post": {
                "tags": tag,
                "summary": f"Archive {a} {spec.singular}",
                "operationId": f"archive_{spec.name}",
                "responses": {"200": _json(_ref(out), "Archived"), **ERRORS},
            },
        }
        paths[f"/v1/{spec.name}/{{id}}/restore"] = {
            "parameters": [id_param],
            "post": {
                "tags": tag,
                "summary": f"Restore {a} archived {spec.singular} (what it refers to must be live)",
                "operationId": f"restore_{spec.name}",
                "responses": {"200": _json(_ref(out), "Restored"), **ERRORS},
            },
        }
    paths["/v1/me"] = {
        "get": {
            "tags": ["keys"],
            "summary": "The calling key's scope",
            "responses": {"200": _json(_ref("Principal"), "Scope")},
        }
    }
    paths["/v1/keys"] = {
        "get": {
            "tags": ["keys"],
            "summary": "List API keys (admin)",
            "responses": {"200": _json({"type": "object"}, "Keys"), **ERRORS},
        },
        "post": {
            "tags": ["keys"],
            "summary": "Create an API key; the key is shown only here",
            "responses": {"201": _json({"type": "object"}, "The new key"), **ERRORS},
        },
    }
    paths["/v1/keys/{key_id}/revoke"] = {
        "post": {
            "tags": ["keys"],
            "summary": "Revoke an API key",
            "parameters": [
                {"name": "key_id", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "responses": {"200": _json(_ref("KeyInfo"), "Revoked"), **ERRORS},
        }
    }
    paths["/v1/users"] = {
        "get": {
            "tags": ["users"],
            "summary": "List console users (admin; within its network)",
            "responses": {"200": _json({"type": "object"}, "Users"), **ERRORS},
        },
        "post": {
            "tags": ["users"],
            "summary": "Create a console user: email, password (10-200 characters), role, "
            "network_id, advertiser_id (an advertiser user's)",
            "responses": {"201": _json({"type": "object"}, "The new user"), **ERRORS},
        },
    }
    paths["/v1/users/{id}/disable"] = {
        "parameters": [
            {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
        ],
        "post": {
            "tags": ["users"],
            "summary": "Disable a console user (its sessions end)",
            "responses": {"200": _json({"type": "object"}, "Disabled"), **ERRORS},
        },
    }
    paths["/v1/reports"] = {
        "get": {
            "tags": ["reports"],
            "summary": "Impressions, clicks, conversions, spend, GMV, ROAS, eCPM, eCPC and "
            "fill rate grouped by any of network, site, zone, advertiser, "
            "campaign, flight, ad, creative, by hour or day (JSON or CSV)",
            "parameters": [
                {"name": "group_by", "in": "query", "schema": {"type": "string"}},
                {
                    "name": "interval",
                    "in": "query",
                    "schema": {"enum": ["hour", "day", "none"], "default": "day"},
                },
                {"name": "from", "in": "query", "schema": {"type": "string"}},
                {"name": "to", "in": "query", "schema": {"type": "string"}},
                {
                    "name": "format",
                    "in": "query",
                    "schema": {"enum": ["json", "csv"], "default": "json"},
                },
                *(
                    {
                        "name": f"{d}_id",
                        "in": "query",
                        "description": "only these ids (comma list)",
                        "schema": {"type": "string"},
                    }
                    for d in (
                        "network",
                        "site",
                        "zone",
                        "advertiser",
                        "campaign",
                        "flight",
                        "ad",
                        "creative",
                    )
                ),
            ],
            "responses": {"200": _json({"type": "object"}, "Rows"), **ERRORS},
        }
    }
    paths["/v1/flights/{id}/pacing"] = {
        "parameters": [id_param],
        "get": {
            "tags": ["flights"],
            "summary": "A flight's pacing: mode, metric, today's goal, plan and delivery so "
            "far (also per hour, cumulative), throttle (0-1), each worker's "
            "allowance near a hard cap, and how much the traffic forecast has "
            "learned (0-1)",
            "operationId": "get_flight_pacing",
            "responses": {"200": _json({"type": "object"}, "Pacing state"), **ERRORS},
        },
    }
    net_param = {
        "name": "network_id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer"},
    }
    pid_param = {
        "name": "product_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": "the retailer's product id",
    }
    tag = ["products"]
    paths["/v1/networks/{network_id}/products"] = {
        "parameters": [net_param],
        "get": {
            "tags": tag,
            "summary": "List a network's catalog in product id order "
            "(filters: brand, category = any level of the path)",
            "operationId": "list_products",
            "parameters": [
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                },
                {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                {"name": "brand", "in": "query", "schema": {"type": "string"}},
                {"name": "category", "in": "query", "schema": {"type": "string"}},
            ],
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {
                            "data": {"type": "array", "items": _ref("ProductOut")},
                            "next_cursor": {"type": ["string", "null"]},
                        },
                    },
                    "A page",
                ),
                **ERRORS,
            },
        },
        "post": {
            "tags": tag,
            "summary": "Create or replace up to 1000 products and delete "
            "ids, in one transaction; bad products are reported one by one and the good "
            "ones kept",
            "operationId": "batch_products",
            "requestBody": _json(_ref("BatchRequest"), "Batch") | {"required": True},
            "responses": {"200": _json(_ref("BatchResult"), "What was written"), **ERRORS},
        },
    }
    paths["/v1/networks/{network_id}/products/{product_id}"] = {
        "parameters": [net_param, pid_param],
        "get": {
            "tags": tag,
            "summary": "Get a product",
            "operationId": "get_product",
            "responses": {"200": _json(_ref("ProductOut"), "The product"), **ERRORS},
        },
        "put": {
            "tags": tag,
            "summary": "Create or replace a product",
            "operationId": "put_product",
            "requestBody": _json(_ref("Product"), "The product") | {"required": True},
            "responses": {
                "200": _json(_ref("ProductOut"), "Replaced"),
                "201": _json(_ref("ProductOut"), "Created"),
                **ERRORS,
            },
        },
        "delete": {
            "tags": tag,
            "summary": "Delete a product",
            "operationId": "delete_product",
            "responses": {"200": _json(_ref("ProductOut"), "Deleted"), **ERRORS},
        },
    }
    paths["/v1/networks/{network_id}/catalog"] = {
        "parameters": [net_param],
        "get": {
            "tags": tag,
            "summary": "The catalog's state: products, the product index"
            " (version, products and sponsored products indexed, build time, last error)"
            " and the embedding model (which, how and when trained, why)",
            "operationId": "get_catalog_status",
            "responses": {"200": _json({"type": "object"}, "Catalog status"), **ERRORS},
        },
    }
    paths["/v1/quarantine"] = {
        "get": {
            "tags": ["operations"],
            "summary": "Event records the aggregator set aside"
            " (admin and read-only keys of a network: its own)",
            "operationId": "list_quarantine",
            "parameters": [
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                },
                {"name": "after_id", "in": "query", "schema": {"type": "integer", "minimum": 0}},
            ],
            "responses": {"200": _json({"type": "object"}, "Quarantined records"), **ERRORS},
        }
    }
    plain = {"get": {"tags": ["operations"], "responses": {"200": {"description": "OK"}}}}
    for path, summary, op_id in (
        ("/healthz", "The process is alive", "healthz"),
        ("/readyz", "Ready: the store is open and the workers' snapshot published", "readyz"),
        ("/metrics", "Prometheus metrics (allowed networks, or a bearer key)", "metrics"),
        ("/openapi.json", "This document", "openapi"),
    ):
        paths[path] = copy.deepcopy(plain)
        paths[path]["get"].update(summary=summary, operationId=op_id)
    from adserver.control import models_api

    paths.update(models_api.openapi_paths(ERRORS))
    from adserver.control import personalizer_api

    paths.update(personalizer_api.openapi_paths(ERRORS))
    paths["/v1/audit"] = {
        "get": {
            "tags": ["audit"],
            "summary": "Audit log, newest first",
            "responses": {"200": _json({"type": "object"}, "Entries"), **ERRORS},
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "adserver management API", "version": __version__},
        "servers": [{"url": "/"}],
        "security": [{"ApiKey": []}, {"AdzerkApiKey": []}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
                "AdzerkApiKey": {"type": "apiKey", "in": "header", "name": "X-Adzerk-ApiKey"},
            },
        },
    }
