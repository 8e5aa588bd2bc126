"""The console's plumbing and its sign-in and out: the in-process API call, the page
renderer, sessions and forms (`Console`); the entity pages are in entity_pages.py.

Every page reads and writes through the management API's routes, called in-process
(`ApiCall`) with the signed-in user's scope as the principal: the same authorization and
validation as an API key of the same role, the same audit rows (by `user:<email>`), the
same snapshot after a change. A page the user's scope cannot reach answers 404, as the API
does. Forms are URL-encoded, carry the session's CSRF token, and are answered with a
redirect (POST, redirect, GET); a refused write shows each error at its field.
"""

from __future__ import annotations

import os
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlencode

import jinja2
import msgspec
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from adserver.control.auth import Principal
from adserver.control.console import users
from adserver.control.console.forms import local_time
from adserver.control.console.nav import menu
from adserver.web.ratelimit import LIMITER

HERE = os.path.dirname(__file__)
SESSION_COOKIE = "adserver_session"
LOGIN_COOKIE = "adserver_login"  # the sign-in form's CSRF token (there is no session yet)
PRINCIPAL = "adserver.principal"  # the ASGI scope key the management API trusts (in-process)
MAX_FORM = 64 << 10
HEADERS = {
    # scripts and everything else from this server only; inline styles too (the charts set
    # theirs), never inline scripts
    "content-security-policy": "default-src 'self'; img-src 'self' https: data:; "
    "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}
templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(os.path.join(HERE, "templates")),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
templates.globals["local_time"] = local_time  # an RFC 3339 time in a time zone


class ApiCall:
    """The management API's app called in-process with a principal: (status, JSON body)."""

    def __init__(self, api: Any):
        self.api = api

    async def __call__(
        self,
        who: Principal,
        method: str,
        path: str,
        query: dict[str, Any] | None = None,
        body: Any = None,
    ) -> tuple[int, Any]:
        raw = b"" if body is None else msgspec.json.encode(body)
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": urlencode(query or {}).encode(),
            "root_path": "",
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(raw)).encode()),
            ],
            "client": ("console", 0),
            "server": ("console", 0),
            PRINCIPAL: who,
        }
        sent = False
        status, chunks = 500, []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.api.asgi(scope, receive, send)
        data = b"".join(chunks)
        return status, msgspec.json.decode(data) if data else None


OPERATIONS = ("admin", "readonly")


def api_message(answer: Any, status: int) -> str:
    """The message of a management API error answer (else what status it had)."""
    err = answer.get("error") if isinstance(answer, dict) else None
    return (err or {}).get("message") or f"refused ({status})"


def page(name: str, status: int = 200, **values: Any) -> HTMLResponse:
    """A template rendered as a page, with the console's security headers."""
    return HTMLResponse(templates.get_template(name).render(**values), status, headers=HEADERS)


class Console:
    """What every page handler shares: the store (sessions), the in-process API call, the
    form reader and the page renderer."""

    def __init__(self, api: Any):
        self.store = api.store
        self.call = ApiCall(api)
        self._networks: dict[int, tuple[str, str, float]] = {}

    async def form(self, request: Request) -> dict[str, str]:
        """A URL-encoded form's fields, the first value of each (empty when larger than
        MAX_FORM)."""
        return {k: v[0] for k, v in (await self.form_lists(request)).items()}

    @staticmethod
    async def form_lists(request: Request) -> dict[str, list[str]]:
        """A URL-encoded form's fields with every value each was sent with."""
        raw = await request.body()
        if len(raw) > MAX_FORM:
            return {}
        return parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)

    def signed_in(self, request: Request) -> users.Session | None:
        return users.session(self.store, request.cookies.get(SESSION_COOKIE))

    def gate(
        self, request: Request, roles: tuple[str, ...], what: str
    ) -> tuple[users.Session, None] | tuple[None, Response]:
        """The session of a page for `roles` only: (session, None), or (None, the answer:
        to sign in, or not found for another role, as the API answers out of scope)."""
        s = self.signed_in(request)
        if s is None:
            return None, self.to_login()
        if s.user.role not in roles:
            return None, self.not_found(request, s, what)
        return s, None

    @staticmethod
    def to_login() -> Response:
        return RedirectResponse("/console/login", 303, headers=HEADERS)

    @staticmethod
    def view(request: Request, s: users.Session, name: str, status: int = 200, **v: Any) -> Any:
        return page(
            name,
            status,
            user=s.user,
            csrf=s.csrf,
            path=request.url.path,
            menu=menu(s.user.role),
            **v,
        )

    def not_found(self, request: Request, s: users.Session, what: str) -> Response:
        return self.view(request, s, "error.html", 404, title="Not found", message=what)

    def refused(self, request: Request, s: users.Session) -> Response:
        return self.view(
            request, s, "error.html", 403, title="Refused", message="the form expired: reload"
        )

    async def time_zone(self, who: Principal) -> str:
        """The time zone dates are shown and entered in: the user's network's (UTC for a
        user of every network)."""
        return (await self.network(who))[0]

    async def network(self, who: Principal) -> tuple[str, str]:
        """(time zone, currency) of the user's network, read at most once a minute; a user
        of every network: UTC, and the currency when all networks share one."""
        key = who.network_id or 0
        found = self._networks.get(key)
        if found is None or found[2] < time.monotonic():
            if who.network_id is None:
                status, got = await self.call(who, "GET", "/v1/networks", {"limit": 1000})
                currencies = {n["currency"] for n in got["data"]} if status == 200 else set()
                facts = ("UTC", currencies.pop() if len(currencies) == 1 else "")
            else:
                status, got = await self.call(who, "GET", f"/v1/networks/{who.network_id}")
                facts = (got["time_zone"], got["currency"]) if status == 200 else ("UTC", "")
            found = self._networks[key] = (*facts, time.monotonic() + 60)
        return found[0], found[1]


def auth_routes(console: Console) -> list[Any]:
    """Sign-in and out, the redirects to the console, and its static files."""
    store = console.store

    async def root(request: Request) -> Response:
        return RedirectResponse("/console/", 303)

    async def login_page(request: Request) -> Response:
        token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
        response = page("login.html", csrf=token, error=None, email="")
        _cookie(response, LOGIN_COOKIE, token, 600)
        return response

    async def login(request: Request) -> Response:
        data = await console.form(request)
        token = request.cookies.get(LOGIN_COOKIE) or ""
        if not token or not users.csrf_ok(token, data.get("csrf")):
            return page("login.html", 403, csrf=token, email="", error="the form expired: retry")
        email = data.get("email", "").strip()
        got = await _thread(users.sign_in, store, email, data.get("password", ""))
        if got is None:
            LIMITER.failed(request.client.host if request.client else None)
            return page("login.html", 401, csrf=token, email=email, error="wrong email or password")
        response = RedirectResponse("/console/", 303, headers=HEADERS)
        _cookie(response, SESSION_COOKIE, got[0], users.SESSION_S)
        response.delete_cookie(LOGIN_COOKIE, path="/console")
        return response

    async def logout(request: Request) -> Response:
        s = console.signed_in(request)
        if s is not None:
            if not users.csrf_ok(s.csrf, (await console.form(request)).get("csrf")):
                return console.refused(request, s)
            await _thread(users.sign_out, store, request.cookies.get(SESSION_COOKIE))
        response = console.to_login()
        response.delete_cookie(SESSION_COOKIE, path="/console")
        return response

    return [
        Route("/", root),
        Route("/console", root),
        Route("/console/login", login_page, methods=["GET"]),
        Route("/console/login", login, methods=["POST"]),
        Route("/console/logout", logout, methods=["POST"]),
        Mount("/console/static", StaticFiles(directory=os.path.join(HERE, "static"))),
    ]


def _cookie(response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/console",
        secure=True,
        httponly=True,
        samesite="strict",
    )


async def _thread(fn: Any, *args: Any) -> Any:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args)
