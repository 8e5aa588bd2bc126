"""The console's operations pages (admins; read-only users see them without their
buttons): models (each version's metrics and gate result; activate, shadow, pin, roll
back), API keys (create with a scope, shown once; revoke) and the audit log. Every action is
the management API's own route, called with the user's scope."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from adserver.control.console import users
from adserver.control.console.pages import HEADERS, OPERATIONS, api_message

MODELS = ("ctr", "cvr")
MODEL_ACTIONS = {
    "activate": ("POST", "/versions/{version}/activate"),
    "shadow": ("POST", "/versions/{version}/shadow"),
    "pin": ("POST", "/versions/{version}/pin"),
    "unpin": ("DELETE", "/versions/{version}/pin"),
    "rollback": ("POST", "/rollback"),
    "stop_shadow": ("DELETE", "/shadow"),
}


def routes(console: Any) -> list[Route]:
    call = console.call

    def gate(request: Request) -> Any:
        return console.gate(request, OPERATIONS, "this page is for operations")

    async def act(request: Request, s: Any) -> tuple[str | None, str | None]:
        """A posted action's outcome: (message for the page, or None on success)."""
        data = await console.form(request)
        if not users.csrf_ok(s.csrf, data.get("csrf")):
            return "the form expired: reload", None
        if s.user.role != "admin":
            return "only an admin may do this", None
        return None, data.get("action")

    async def models(request: Request) -> Response:
        s, refused = gate(request)
        if s is None:
            return refused
        who = s.user.principal()
        message = None
        if request.method == "POST":
            message, action = await act(request, s)
            data = await console.form(request)
            name, version = data.get("name", ""), data.get("version", "")
            if message is None and (name not in MODELS or action not in MODEL_ACTIONS):
                message = "unknown model or action"
            if message is None and action:
                method, path = MODEL_ACTIONS[action]
                status, got = await call(
                    who, method, f"/v1/models/{name}" + path.format(version=version)
                )
                if status < 300:
                    return RedirectResponse("/console/models", 303, headers=HEADERS)
                message = api_message(got, status)
        _, summary = await call(who, "GET", "/v1/models")
        versions = {}
        for name in MODELS:
            status, got = await call(who, "GET", f"/v1/models/{name}/versions")
            versions[name] = got["data"] if status == 200 else []
        return console.view(
            request,
            s,
            "models.html",
            400 if message else 200,
            summary=summary or {},
            versions=versions,
            message=message,
            can_act=s.user.role == "admin",
            tz=await console.time_zone(who),
        )

    async def keys(request: Request) -> Response:
        s, refused = gate(request)
        if s is None:
            return refused
        who = s.user.principal()
        message, made = None, None
        if request.method == "POST":
            message, action = await act(request, s)
            data = await console.form(request)
            if message is None and action == "create":
                body: dict[str, Any] = {"role": data.get("role", ""), "name": data.get("name", "")}
                for field in ("network_id", "advertiser_id"):
                    raw = data.get(field, "").strip()
                    if raw:
                        body[field] = int(raw) if raw.isascii() and raw.isdigit() else raw
                status, got = await call(who, "POST", "/v1/keys", body=body)
                if status == 201:
                    made = got  # shown once, on this answer only
                else:
                    err = (got or {}).get("error", {})
                    fields = "; ".join(
                        f"{f.get('field')}: {f.get('message')}" for f in err.get("fields") or []
                    )
                    message = err.get("message", "refused") + (f" ({fields})" if fields else "")
            elif message is None and action == "revoke":
                key_id = data.get("key_id", "")
                status, got = await call(who, "POST", f"/v1/keys/{key_id}/revoke")
                if status == 200:
                    return RedirectResponse("/console/keys", 303, headers=HEADERS)
                message = api_message(got, status)
        status, got = await call(who, "GET", "/v1/keys")
        listed = got["data"] if status == 200 else []
        _, advertisers = await call(who, "GET", "/v1/advertisers", {"limit": 1000})
        return console.view(
            request,
            s,
            "keys.html",
            400 if message else 200,
            keys=listed,
            made=made,
            message=message,
            advertisers=(advertisers or {}).get("data", []),
            can_act=s.user.role == "admin",
            readable=status == 200,
            tz=await console.time_zone(who),
        )

    async def audit(request: Request) -> Response:
        s, refused = gate(request)
        if s is None:
            return refused
        who = s.user.principal()
        query = {
            k: v
            for k, v in request.query_params.items()
            if k in ("entity", "entity_id", "key_id", "action", "before_id")
        }
        status, got = await call(who, "GET", "/v1/audit", {**query, "limit": 100})
        rows = got["data"] if status == 200 else []
        return console.view(
            request,
            s,
            "audit.html",
            200 if status == 200 else 400,
            rows=rows,
            filters=query,
            older=rows[-1]["id"] if len(rows) == 100 else None,
            message=None if status == 200 else api_message(got, status),
            tz=await console.time_zone(who),
        )

    return [
        Route("/console/models", models, methods=["GET", "POST"]),
        Route("/console/keys", keys, methods=["GET", "POST"]),
        Route("/console/audit", audit),
    ]
