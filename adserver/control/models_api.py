"""Management API routes of the model registry (adserver/control/registry.py):

    GET    /v1/models                                   active and shadow version per model
    GET    /v1/models/{name}/versions                   every version and its status
    GET    /v1/models/{name}/versions/{version}         one version, with its manifest
    PUT    /v1/models/{name}/versions?label=...         upload (a tar, optionally gzipped,
                                                        of manifest.json, features.json,
                                                        weights.npy): verify, gate, activate
    POST   /v1/models/{name}/versions/{version}/activate   {"force": false}
    POST   /v1/models/{name}/rollback                   back to the previously active one
    POST   /v1/models/{name}/versions/{version}/shadow  score live traffic beside the active
    DELETE /v1/models/{name}/shadow                     stop shadowing

Reading takes an admin or read-only key of any scope; changing takes a global admin key. A
refused model (files that do not verify, or a gate that says no) answers 422 with the reason.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import zlib
from typing import Any

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adserver.common.validation import Invalid, ascii_int, json_body
from adserver.control.auth import Principal
from adserver.control.registry import Refused, Registry
from adserver.control.repo import Forbidden
from adserver.control.responses import ApiError, json_response
from adserver.learn import ctr

MAX_UPLOAD = 320 << 20  # weights of 2^26 float32 buckets and their companions


class Activate(msgspec.Struct, forbid_unknown_fields=True):
    """The body of `POST .../activate`: `force` skips the gate."""

    force: bool = False


def routes(api: Any, registry: Registry) -> list[Route]:
    from adserver.common.validation import convert

    def reader(who: Principal) -> None:
        if who.role == "advertiser":
            raise Forbidden("the model registry is for admin and read-only keys")

    def admin(who: Principal) -> None:
        if who.role != "admin" or not who.is_global:
            raise Forbidden("changing models takes a global admin key")

    def name_of(request: Request) -> str:
        name = request.path_params["name"]
        if name not in ctr.NAMES:
            raise ApiError(404, "not_found", f"no model {name!r} (models: {', '.join(ctr.NAMES)})")
        return name

    def refused(e: Refused) -> Response:
        return json_response(
            {"error": {"status": 422, "code": "model_refused", "message": str(e)}}, 422
        )

    async def summary(request: Request, who: Principal) -> Response:
        reader(who)
        return json_response(await run_in_threadpool(registry.summary))

    async def list_(request: Request, who: Principal) -> Response:
        reader(who)
        return json_response({"data": await run_in_threadpool(registry.list, name_of(request))})

    async def get(request: Request, who: Principal) -> Response:
        reader(who)
        return json_response(
            await run_in_threadpool(registry.get, name_of(request), request.path_params["version"])
        )

    async def upload(request: Request, who: Principal) -> Response:
        admin(who)
        name = name_of(request)
        declared = request.headers.get("content-length")
        size = ascii_int(declared) if declared else None
        if size is not None and size > MAX_UPLOAD:
            raise ApiError(413, "too_large", f"model larger than {MAX_UPLOAD} bytes")
        staging = os.path.join(registry.data_dir, "models")
        os.makedirs(staging, exist_ok=True)
        fd, archive = tempfile.mkstemp(prefix=".upload-", suffix=".tar", dir=staging)
        try:  # streamed to disk, never held whole in memory
            written = 0
            with os.fdopen(fd, "wb") as out:
                async for chunk in request.stream():
                    written += len(chunk)
                    if written > MAX_UPLOAD:
                        raise ApiError(413, "too_large", f"model larger than {MAX_UPLOAD} bytes")
                    out.write(chunk)
            label = request.query_params.get("label", "")[:200]
            try:
                row = await run_in_threadpool(_import_tar, registry, name, archive, who, label)
            except Refused as e:
                return refused(e)
        finally:
            os.unlink(archive)
        return json_response(row, 201)

    async def activate(request: Request, who: Principal) -> Response:
        admin(who)
        name = name_of(request)
        raw = await request.body()
        try:
            body = convert(Activate, json_body(raw)) if raw.strip() else Activate()
        except Invalid as e:
            raise ApiError(400, "malformed_json", e.errors[0].message) from None
        try:
            return json_response(
                await run_in_threadpool(
                    registry.activate, name, request.path_params["version"], who, body.force
                )
            )
        except Refused as e:
            return refused(e)

    async def rollback(request: Request, who: Principal) -> Response:
        admin(who)
        try:
            return json_response(await run_in_threadpool(registry.rollback, name_of(request), who))
        except Refused as e:
            return refused(e)

    async def shadow(request: Request, who: Principal) -> Response:
        admin(who)
        version = request.path_params.get("version")
        try:
            return json_response(
                await run_in_threadpool(registry.shadow, name_of(request), version, who)
            )
        except Refused as e:
            return refused(e)

    async def pin(request: Request, who: Principal) -> Response:
        admin(who)
        return json_response(
            await run_in_threadpool(
                registry.pin,
                name_of(request),
                request.path_params["version"],
                request.method == "POST",
                who,
            )
        )

    base = "/v1/models/{name}"
    one = base + "/versions/{version}"
    h = api.handler
    return [
        Route(one + "/pin", h(pin, False), methods=["POST", "DELETE"]),
        Route("/v1/models", h(summary, False), methods=["GET"]),
        Route(base + "/versions", h(list_, False), methods=["GET"]),
        Route(base + "/versions", h(upload, False), methods=["PUT"]),
        Route(one, h(get, False), methods=["GET"]),
        Route(one + "/activate", h(activate, False), methods=["POST"]),
        Route(one + "/shadow", h(shadow, False), methods=["POST"]),
        Route(base + "/shadow", h(shadow, False), methods=["DELETE"]),
        Route(base + "/rollback", h(rollback, False), methods=["POST"]),
    ]


MAX_FILES = 16  # a model is manifest.json, features.json and weights.npy (in one folder)
MAX_EXTRACTED = 2 * MAX_UPLOAD  # what the archive may unpack to, all files together


def _extract(archive: str, into: str) -> None:
    """Unpack `archive` into `into`, member by member, refusing (Refused) before anything
    outgrows the bounds: more than MAX_FILES members, more than MAX_EXTRACTED bytes declared
    in all, or anything but plain files and folders (links, devices). A gzip bomb is refused
    at the member whose declared size passes the bound, before it is written."""
    total = count = 0
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            for member in tar:
                count += 1
                if count > MAX_FILES:
                    raise Refused(f"the archive holds more than {MAX_FILES} entries")
                if not (member.isfile() or member.isdir()):
                    raise Refused(f"the archive entry {member.name!r} is not a file or folder")
                total += member.size
                if total > MAX_EXTRACTED:
                    raise Refused(f"the archive unpacks to more than {MAX_EXTRACTED} bytes")
                tar.extract(member, into, filter="data")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise Refused(f"the body is not a readable tar archive: {e}") from None


def _import_tar(
    registry: Registry, name: str, archive: str, who: Principal, label: str
) -> dict[str, Any]:
    """Unpack an uploaded tar on disk (its files at the top or in one directory) and import
    it."""
    staging = os.path.join(registry.data_dir, "models")
    os.makedirs(staging, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".upload-", dir=staging)
    try:
        _extract(archive, tmp)
        src = tmp
        entries = [e for e in os.listdir(tmp) if not e.startswith(".")]
        if (
            "manifest.json" not in entries
            and len(entries) == 1
            and os.path.isdir(os.path.join(tmp, entries[0]))
        ):
            src = os.path.join(tmp, entries[0])
        missing = [
            f for f in ("manifest.json", *ctr.FILES) if not os.path.isfile(os.path.join(src, f))
        ]
        if missing:
            raise Refused(f"the archive lacks {', '.join(missing)}")
        return registry.import_dir(name, src, "api", who, label)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def openapi_paths(errors: dict[str, Any]) -> dict[str, Any]:
    """The registry's routes for the OpenAPI document (adserver/control/openapi.py)."""
    obj = {"content": {"application/json": {"schema": {"type": "object"}}}}

    def op(summary: str, op_id: str, ok: str = "200", **extra: Any) -> dict[str, Any]:
        return {
            "tags": ["models"],
            "summary": summary,
            "operationId": op_id,
            "responses": {
                ok: {"description": "OK", **obj},
                "422": {"description": "Refused: files or gate", **obj},
                **errors,
            },
            **extra,
        }

    name = {"name": "name", "in": "path", "required": True, "schema": {"enum": list(ctr.NAMES)}}
    version = {"name": "version", "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        "/v1/models": {"get": op("Active and shadow version of each model", "list_models")},
        "/v1/models/{name}/versions": {
            "parameters": [name],
            "get": op("Every version of a model: status, metrics, reason", "list_model_versions"),
            "put": op(
                "Upload a version (a tar, optionally gzipped, of manifest.json, "
                "features.json, weights.npy); verified, gated, activated if it passes",
                "upload_model",
                "201",
                parameters=[{"name": "label", "in": "query", "schema": {"type": "string"}}],
                requestBody={
                    "required": True,
                    "content": {
                        "application/gzip": {
                            "schema": {"type": "string", "contentMediaType": "application/gzip"}
                        },
                        "application/x-tar": {
                            "schema": {"type": "string", "contentMediaType": "application/x-tar"}
                        },
                    },
                },
            ),
        },
        "/v1/models/{name}/versions/{version}": {
            "parameters": [name, version],
            "get": op("One version with its manifest", "get_model_version"),
        },
        "/v1/models/{name}/versions/{version}/activate": {
            "parameters": [name, version],
            "post": op(
                "Activate a version if it passes the gate (force: skip the gate)",
                "activate_model",
                requestBody={
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"force": {"type": "boolean", "default": False}},
                            }
                        }
                    }
                },
            ),
        },
        "/v1/models/{name}/versions/{version}/shadow": {
            "parameters": [name, version],
            "post": op(
                "Shadow a version: scored on live traffic and logged, not used", "shadow_model"
            ),
        },
        "/v1/models/{name}/versions/{version}/pin": {
            "parameters": [name, version],
            "post": op("Pin a version: never pruned", "pin_model"),
            "delete": op("Unpin it", "unpin_model"),
        },
        "/v1/models/{name}/shadow": {
            "parameters": [name],
            "delete": op("Stop shadowing", "stop_shadow_model"),
        },
        "/v1/models/{name}/rollback": {
            "parameters": [name],
            "post": op("Re-activate the previously active version", "rollback_model"),
        },
    }
