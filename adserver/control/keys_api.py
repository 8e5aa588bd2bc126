"""Keys and the audit log on the management API: `GET /v1/me`, `GET`/`POST /v1/keys`,
`POST /v1/keys/{key_id}/revoke` (admin keys, within their network) and `GET /v1/audit`
(admin and read-only keys: their network's rows, an advertiser's own)."""

from __future__ import annotations

from functools import partial
from typing import Any

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adserver.common.validation import FieldError, Invalid, convert
from adserver.control import auth
from adserver.control.auth import Principal
from adserver.control.repo import MAX_LIMIT, Forbidden, NotFound
from adserver.control.responses import int_param, json_response


class KeyCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The body of `POST /v1/keys`: the new key's role, name and scope."""

    role: auth.Role
    name: str = ""
    network_id: int | None = None
    advertiser_id: int | None = None


async def me(api: Any, request: Request, who: Principal) -> Response:
    return json_response(who)


async def create_key(api: Any, request: Request, who: Principal) -> Response:
    if who.role != "admin" or who.advertiser_id is not None:
        raise Forbidden("only an admin key can create keys")
    req = convert(KeyCreate, await api.body(request))

    def work() -> dict[str, Any]:
        network_id = req.network_id
        errors = []
        with api.store.transaction() as db:
            if req.advertiser_id is not None:
                row = db.execute(
                    "SELECT network_id FROM advertisers WHERE id = ?", (req.advertiser_id,)
                ).fetchone()
                if row is None or (who.network_id and row[0] != who.network_id):
                    errors.append(FieldError("advertiser_id", "advertiser not found"))
                else:
                    network_id = row[0]
            elif req.role == "advertiser":
                errors.append(FieldError("advertiser_id", "required for an advertiser key"))
            if who.network_id is not None:
                if req.network_id not in (None, who.network_id):
                    errors.append(FieldError("network_id", "outside this key's network"))
                network_id = who.network_id
            elif (
                network_id is not None
                and not db.execute("SELECT 1 FROM networks WHERE id = ?", (network_id,)).fetchone()
            ):
                errors.append(FieldError("network_id", "network not found"))
            if errors:
                raise Invalid(errors)
            key, info = auth.create_key(
                db,
                role=req.role,
                name=req.name,
                created_by=who.key_id,
                network_id=network_id,
                advertiser_id=req.advertiser_id,
            )
        return {"key": key, **msgspec.to_builtins(info)}

    return json_response(await run_in_threadpool(work), 201)


async def list_keys(api: Any, request: Request, who: Principal) -> Response:
    if who.role != "admin" or who.advertiser_id is not None:
        raise Forbidden("only an admin key can list keys")
    keys = await run_in_threadpool(auth.list_keys, api.store)
    if who.network_id is not None:
        keys = [k for k in keys if k.network_id == who.network_id]
    return json_response({"data": keys})


async def revoke(api: Any, request: Request, who: Principal) -> Response:
    if who.role != "admin" or who.advertiser_id is not None:
        raise Forbidden("only an admin key can revoke keys")
    key_id = request.path_params["key_id"]

    def work() -> auth.KeyInfo:
        with api.store.transaction() as db:
            info = auth.revoke_key(db, key_id, who.key_id)
            if info is None or (who.network_id and info.network_id != who.network_id):
                raise NotFound(f"key {key_id} not found")
            return info

    return json_response(await run_in_threadpool(work))


async def audit(api: Any, request: Request, who: Principal) -> Response:
    if who.role == "advertiser":
        raise Forbidden("the audit log is for admin and read-only keys")
    q = request.query_params
    errors: list[FieldError] = []
    limit = int_param(q.get("limit", "100"), "limit", 1, MAX_LIMIT, errors)
    clauses, params = ["1 = 1"], list[Any]()
    if who.network_id is not None:
        clauses.append("network_id = ?")
        params.append(who.network_id)
    if who.advertiser_id is not None:  # a read-only key of one advertiser: its rows only
        clauses.append("advertiser_id = ?")
        params.append(who.advertiser_id)
    for name in ("entity", "entity_id", "key_id", "action"):
        if name in q:
            clauses.append(f"{name} = ?")
            params.append(q[name])
    if "before_id" in q:
        clauses.append("id < ?")
        params.append(int_param(q["before_id"], "before_id", 1, 2**62, errors))
    if errors:
        raise Invalid(errors)
    sql = f"SELECT * FROM audit WHERE {' AND '.join(clauses)} ORDER BY id DESC LIMIT ?"
    rows = await run_in_threadpool(api.store.read, sql, [*params, limit])
    return json_response({"data": [_audit_entry(r) for r in rows]})


def routes(api: Any) -> list[Route]:
    def h(fn: Any) -> Any:
        return api.handler(partial(fn, api))

    return [
        Route("/v1/me", h(me)),
        Route("/v1/keys", h(list_keys), methods=["GET"]),
        Route("/v1/keys", h(create_key), methods=["POST"]),
        Route("/v1/keys/{key_id}/revoke", h(revoke), methods=["POST"]),
        Route("/v1/audit", h(audit), methods=["GET"]),
    ]


def _audit_entry(row: Any) -> dict[str, Any]:
    before = msgspec.json.decode(row["before"]) if row["before"] else None
    after = msgspec.json.decode(row["after"]) if row["after"] else None
    changes = {}
    if after is not None:
        for k, v in after.items():
            old = None if before is None else before.get(k)
            if old != v and k != "updated_at":
                changes[k] = {"before": old, "after": v}
    return {
        "id": row["id"],
        "at": row["at"],
        "key_id": row["key_id"],
        "entity": row["entity"],
        "entity_id": row["entity_id"],
        "action": row["action"],
        "changes": changes,
        "before": before,
        "after": after,
    }
