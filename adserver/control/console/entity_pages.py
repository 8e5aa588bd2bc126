"""The console's entity pages, one set per entity kind of the API (control/schema.SPECS):
a list (filtered by any field the API filters on, paged by the API's cursor, sorted within
the page), a new-object form, an object's page with every field and its edit form, and
archive/restore. Advertisers see the demand they own (campaigns, flights, ads, creatives)
and read their network's inventory; admins and read-only users every kind in their scope.
Everything goes through the management API (pages.ApiCall), so its checks hold here too.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from adserver.control.console import forms, users
from adserver.control.console.nav import DEMAND, TITLES, menu_kinds
from adserver.control.console.pages import HEADERS, api_message
from adserver.control.schema import SPECS

# the columns a list shows (beside id and name), when the kind has them
LISTED = (
    "advertiser_id",
    "campaign_id",
    "flight_id",
    "creative_id",
    "network_id",
    "site_id",
    "kind",
    "status",
    "rate_type",
    "price",
    "start",
    "end",
    "is_active",
)
PAGE = 50


def _children(name: str) -> list[tuple[str, str]]:
    """(kind, its field naming this kind) for the kinds whose parent is `name`."""
    return [(k, s.parent[0]) for k, s in SPECS.items() if s.parent and s.parent[1] == name]


def routes(console: Any) -> list[Route]:
    call = console.call

    def writable(s: users.Session, name: str) -> bool:
        if s.user.role == "readonly":
            return False
        return s.user.role == "admin" or name in DEMAND

    async def options(who: Any, fields: list[forms.Field]) -> dict[str, list[dict[str, Any]]]:
        """The choices of each reference field (a number input when there are too many)."""
        found = {}
        for f in fields:
            if f.kind == "ref" and f.ref:
                status, got = await call(who, "GET", f"/v1/{f.ref}", {"limit": 500})
                if status == 200 and not got.get("next_cursor"):
                    found[f.name] = got["data"]
            elif f.name == "product_id" and who.network_id is not None:
                # suggestions for a product field: the network's catalog (its first 1,000)
                status, got = await call(
                    who, "GET", f"/v1/networks/{who.network_id}/products", {"limit": 1000}
                )
                if status == 200:
                    found["product_id"] = got["data"]
        return found

    async def list_(request: Request) -> Response:
        s = console.signed_in(request)
        if s is None:
            return console.to_login()
        name = request.path_params["kind"]
        if name not in SPECS or (name not in menu_kinds(s.user.role)):
            return console.not_found(request, s, f"no list {name!r}")
        who = s.user.principal()
        query = {k: v for k, v in request.query_params.items() if k not in ("sort",)}
        query.setdefault("limit", str(PAGE))
        status, got = await call(who, "GET", f"/v1/{name}", query)
        if status != 200:
            message = api_message(got, status)
            return console.view(
                request, s, "error.html", status, title=TITLES[name], message=message
            )
        rows = got["data"]
        sort = request.query_params.get("sort", "id")
        key = sort.lstrip("-")
        if rows and key in rows[0]:
            rows.sort(
                key=lambda r: (
                    r[key] is None,
                    str(r[key]) if not isinstance(r[key], (int, float)) else r[key],
                ),
                reverse=sort.startswith("-"),
            )
        columns = [c for c in LISTED if rows and c in rows[0]]
        filters = {k: v for k, v in query.items() if k not in ("limit", "cursor")}
        return console.view(
            request,
            s,
            "entity_list.html",
            kind=name,
            title=TITLES[name],
            rows=rows,
            columns=columns,
            sort=sort,
            filters=filters,
            next_cursor=got.get("next_cursor"),
            can_write=writable(s, name),
            tz=await console.time_zone(who),
            local_time=forms.local_time,
            singular=SPECS[name].singular,
        )

    async def new(request: Request) -> Response:
        s = console.signed_in(request)
        if s is None:
            return console.to_login()
        name = request.path_params["kind"]
        if name not in SPECS or not writable(s, name):
            return console.not_found(request, s, f"no form for {name!r}")
        spec = SPECS[name]
        who = s.user.principal()
        tz = await console.time_zone(who)
        fields = forms.fields(spec)
        values = {f.name: request.query_params.get(f.name, "") for f in fields}
        if spec.parent and spec.parent[0] == "advertiser_id" and s.user.advertiser_id:
            values["advertiser_id"] = str(s.user.advertiser_id)
        errors: dict[str, str] = {}
        message = None
        if request.method == "POST":
            data = await console.form(request)
            if not users.csrf_ok(s.csrf, data.get("csrf")):
                return console.refused(request, s)
            values = {f.name: data.get(f.name, "") for f in fields}
            values.update(
                {
                    f.name: "on" if data.get(f.name) == "on" else ""
                    for f in fields
                    if f.kind == "bool"
                }
            )
            body, errors = forms.to_body(spec, data, tz)
            if not errors:
                status, got = await call(who, "POST", f"/v1/{name}", body=body)
                if status == 201:
                    return RedirectResponse(f"/console/{name}/{got['id']}", 303, headers=HEADERS)
                message, errors = _problem(got)
        else:  # a new form starts from the API's defaults
            for f in fields:
                if not values[f.name] and f.kind == "bool":
                    values[f.name] = "on" if _default(spec, f.name) else ""
                elif not values[f.name] and f.kind == "choice":
                    values[f.name] = str(_default(spec, f.name) or "")
        return console.view(
            request,
            s,
            "entity_new.html",
            400 if errors or message else 200,
            kind=name,
            title=f"New {spec.singular}",
            fields=fields,
            values=values,
            errors=errors,
            message=message,
            options=await options(who, fields),
            tz=tz,
        )

    async def one(request: Request) -> Response:
        s = console.signed_in(request)
        if s is None:
            return console.to_login()
        name, raw = request.path_params["kind"], request.path_params["id"]
        if name not in SPECS or name not in menu_kinds(s.user.role):
            return console.not_found(request, s, f"no {name!r} page")
        spec = SPECS[name]
        who = s.user.principal()
        status, got = await call(who, "GET", f"/v1/{name}/{raw}")
        if status != 200:
            return console.not_found(request, s, f"no {spec.singular} {raw} you may see")
        tz = await console.time_zone(who)
        fields = forms.fields(spec)
        values = {f.name: forms.form_value(f, got.get(f.name), tz) for f in fields}
        values.update({f.name: "on" if got.get(f.name) else "" for f in fields if f.kind == "bool"})
        errors: dict[str, str] = {}
        message = None
        status_code = 200
        if request.method == "POST":
            data = await console.form(request)
            if not users.csrf_ok(s.csrf, data.get("csrf")):
                return console.refused(request, s)
            action = data.get("action", "save")
            if action in ("archive", "restore"):
                st, answer = await call(who, "POST", f"/v1/{name}/{got['id']}/{action}")
                if st == 200:
                    return RedirectResponse(request.url.path, 303, headers=HEADERS)
                message, errors = _problem(answer)
            else:
                values = {f.name: data.get(f.name, "") for f in fields}
                body, errors = forms.to_body(spec, data, tz)
                if not errors:
                    st, answer = await call(who, "PATCH", f"/v1/{name}/{got['id']}", body=body)
                    if st == 200:
                        return RedirectResponse(request.url.path, 303, headers=HEADERS)
                    message, errors = _problem(answer)
            status_code = 400
        children = [
            (
                TITLES[k],
                f"/console/{k}?{field}={got['id']}",
                f"/console/{k}/new?{field}={got['id']}",
            )
            for k, field in _children(name)
            if k in menu_kinds(s.user.role)
        ]
        return console.view(
            request,
            s,
            "entity.html",
            status_code,
            kind=name,
            title=got.get("name") or f"{spec.singular} {got['id']}",
            item=got,
            fields=fields,
            values=values,
            errors=errors,
            message=message,
            options=await options(who, fields) if writable(s, name) else {},
            can_write=writable(s, name),
            children=children,
            singular=spec.singular,
            tz=tz,
            local_time=forms.local_time,
            shown=forms.form_value,
        )

    async def home(request: Request) -> Response:
        request.scope["path_params"] = {"kind": "campaigns"}
        return await list_(request)

    return [
        Route("/console/", home),
        Route("/console/{kind}", list_),
        Route("/console/{kind}/new", new, methods=["GET", "POST"]),
        Route("/console/{kind}/{id}", one, methods=["GET", "POST"]),
    ]


def _default(spec: Any, field: str) -> Any:
    for f in __import__("msgspec").structs.fields(spec.struct):
        if f.name == field:
            return None if f.required else f.default
    return None


def _problem(answer: Any) -> tuple[str, dict[str, str]]:
    """An API error's message and its errors by form control."""
    err = (answer or {}).get("error", {}) if isinstance(answer, dict) else {}
    return err.get("message", "the request failed"), forms.errors_by_field(err.get("fields") or [])
