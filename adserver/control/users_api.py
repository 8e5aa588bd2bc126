"""Console users on the management API: `GET`/`POST /v1/users` and
`POST /v1/users/{id}/disable`, for admin keys (and admin users) within their network. The
bootstrap key makes the first admin user this way; `adserver users` does the same from the
command line. A user's password is set here and never returned."""

from __future__ import annotations

from functools import partial
from typing import Any

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adserver.common.validation import FieldError, Invalid, convert
from adserver.control.auth import Principal, Role
from adserver.control.console import users
from adserver.control.repo import Forbidden, NotFound
from adserver.control.responses import json_response
from adserver.control.store import now


class UserCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The body of `POST /v1/users`."""

    email: str
    password: str
    role: Role
    network_id: int | None = None
    advertiser_id: int | None = None


def _admin(who: Principal) -> None:
    if who.role != "admin" or who.advertiser_id is not None:
        raise Forbidden("only an admin can manage console users")


def _audit(api: Any, who: Principal, action: str, user: users.User) -> None:
    with api.store.transaction() as db:
        db.execute(
            "INSERT INTO audit (at, key_id, entity, entity_id, action, network_id,"
            " advertiser_id, before, after) VALUES (?, ?, 'users', ?, ?, ?, ?, NULL, ?)",
            (
                now(),
                who.key_id,
                str(user.id),
                action,
                user.network_id,
                user.advertiser_id,
                msgspec.json.encode(user).decode(),
            ),
        )


async def create(api: Any, request: Request, who: Principal) -> Response:
    _admin(who)
    req = convert(UserCreate, await api.body(request))

    def work() -> users.User:
        network_id = req.network_id
        if who.network_id is not None:  # an admin of one network adds users to it only
            if req.network_id not in (None, who.network_id):
                raise Invalid([FieldError("network_id", "outside this key's network")])
            network_id = who.network_id
            if req.advertiser_id is not None:
                rows = api.store.read(
                    "SELECT network_id FROM advertisers WHERE id = ?", (req.advertiser_id,)
                )
                if not rows or rows[0][0] != who.network_id:
                    raise Invalid([FieldError("advertiser_id", "advertiser not found")])
        user = users.create_user(
            api.store, req.email, req.password, req.role, network_id, req.advertiser_id
        )
        _audit(api, who, "create", user)
        return user

    return json_response(await run_in_threadpool(work), 201)


def _scoped(api: Any, who: Principal) -> list[users.User]:
    rows = api.store.read(
        "SELECT id, email, role, network_id, advertiser_id FROM console_users"
        " WHERE disabled_at IS NULL ORDER BY id"
    )
    found = [users.User(*r) for r in rows]
    return [u for u in found if who.network_id is None or u.network_id == who.network_id]


async def list_(api: Any, request: Request, who: Principal) -> Response:
    _admin(who)
    return json_response({"data": await run_in_threadpool(_scoped, api, who)})


async def disable(api: Any, request: Request, who: Principal) -> Response:
    _admin(who)
    id_ = api.path_id(request)

    def work() -> users.User:
        user = next((u for u in _scoped(api, who) if u.id == id_), None)
        if user is None:
            raise NotFound(f"no user {id_}")
        users.disable(api.store, user.email)
        _audit(api, who, "disable", user)
        return user

    return json_response(await run_in_threadpool(work))


def routes(api: Any) -> list[Route]:
    def h(fn: Any) -> Any:
        return api.handler(partial(fn, api), snapshot=False)

    return [
        Route("/v1/users", h(list_), methods=["GET"]),
        Route("/v1/users", h(create), methods=["POST"]),
        Route("/v1/users/{id}/disable", h(disable), methods=["POST"]),
    ]
