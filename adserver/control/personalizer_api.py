"""Personalizer's administration on the control plane: the service configuration and the
learning policy (`/v1/personalizer/configurations/service`, `/v1/personalizer/configurations/
policy`), stored in the control store (pz_settings) and applied by the learner
(control/personalizer.py), which publishes them with the next policy version.

The decision workers forward the clients' `/personalizer/.../configurations/...` calls here
(serving/personalize.py): the data plane writes no shared state. Bodies and errors are
Personalizer's (camelCase; durations in ISO 8601, such as "PT10M").
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adserver.common.validation import TOO_DEEP
from adserver.control.auth import Principal
from adserver.control.personalizer import current_settings
from adserver.control.pz_config import (
    Invalid,
    PolicyConfiguration,
    ServiceConfiguration,
    Settings,
    _audit,
    check_service,
    iso,
    parse_arguments,
    parse_time,
)
from adserver.control.repo import Forbidden
from adserver.control.store import Store
from adserver.wire.personalizer import error_body


class EvaluationRequest(msgspec.Struct, rename="camel"):
    """The body of `PUT /v1/personalizer/evaluations/{id}`: a window and candidate policies."""

    name: str
    start_time: str
    end_time: str
    policies: list[PolicyConfiguration] = []
    enable_policy_optimization: bool = False


class ApplyRequest(msgspec.Struct, rename="camel"):
    """The body of `applyFromEvaluation`: the evaluation and the policy to apply."""

    evaluation_id: str
    policy_name: str


class ImportanceRequest(msgspec.Struct, rename="camel"):
    """The body of `PUT /v1/personalizer/featureImportances/{id}`: a window."""

    name: str
    start_time: str
    end_time: str
    description: str | None = None


def routes(api: Any, store: Store, defaults: Any = None, learner: Any = None) -> list[Route]:
    """`defaults`: the process's learner settings (control/personalizer.Settings);
    `learner`: its learner (control/personalizer.Learner), for the model routes."""
    settings = Settings(store)

    def ok(value: Any) -> Response:
        return Response(msgspec.json.encode(value), 200, media_type="application/json")

    def bad(e: Invalid | str, target: str | None = None) -> Response:
        msg, tgt = (e.message, e.target) if isinstance(e, Invalid) else (e, target)
        return Response(error_body("BadRequest", msg, tgt), 400, media_type="application/json")

    def admin(who: Principal) -> None:
        # one policy, configuration and log for the installation (like a Personalizer
        # resource): only a key of no network and no advertiser administers it
        if who.role != "admin" or not who.is_global:
            raise Forbidden(
                "Personalizer administration takes an unscoped admin key (the"
                " policy serves every network)"
            )

    async def decode(request: Request, kind: type) -> Any:
        raw = await request.body()
        try:
            return msgspec.json.decode(raw, type=kind)
        except msgspec.ValidationError as e:
            text = str(e)
            raise Invalid(
                text.partition(" - at `$")[0],
                text.partition(" - at `$")[2].rstrip("`").lstrip(".") or "",
            ) from None
        except msgspec.DecodeError as e:
            raise Invalid(f"the body is not valid JSON: {e}", "") from None
        except RecursionError:
            raise Invalid(TOO_DEEP, "") from None

    async def service(request: Request, who: Principal) -> Response:
        admin(who)
        if request.method == "GET":
            return ok(await run_in_threadpool(settings.get, "service"))
        try:
            body = await decode(request, ServiceConfiguration)
            check_service(body)
        except Invalid as e:
            return bad(e)
        body.last_configuration_edit_date = (
            dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
        )
        await run_in_threadpool(settings.put, "service", body, who)
        return ok(body)

    async def policy(request: Request, who: Principal) -> Response:
        admin(who)
        if request.method == "GET":
            return ok(await run_in_threadpool(settings.get, "policy"))
        if request.method == "DELETE":
            await run_in_threadpool(settings.delete, "policy", who)
            return ok(PolicyConfiguration())
        try:
            body = await decode(request, PolicyConfiguration)
            parse_arguments(body.arguments)
        except Invalid as e:
            return bad(e)
        await run_in_threadpool(settings.put, "policy", body, who)
        return ok(body)

    def not_found(eid: str) -> Response:
        return Response(
            error_body("ResourceNotFound", f"no evaluation {eid!r}"),
            404,
            media_type="application/json",
        )

    async def stored(request: Request, key: str, shown: str) -> Response:
        """GET or DELETE a kept job (an evaluation, or a feature importance under 'fi:')."""
        rows = await run_in_threadpool(
            store.read, "SELECT result FROM pz_evaluations WHERE id = ?", (key,)
        )
        if not rows:
            return not_found(shown)
        if request.method == "GET":
            return Response(rows[0][0], 200, media_type="application/json")
        with store.transaction() as db:
            db.execute("DELETE FROM pz_evaluations WHERE id = ?", (key,))
        return Response(status_code=204)

    def window(body: Any) -> tuple[float, float]:
        """(start, end) of a job's body; Invalid names the bad field."""

        try:
            start, end = parse_time(body.start_time), parse_time(body.end_time)
        except ValueError as e:
            raise Invalid(
                f"startTime and endTime must be ISO 8601 times: {e}", "startTime"
            ) from None
        if end <= start:
            raise Invalid("endTime must be after startTime", "endTime")
        return start, end

    async def evaluation(request: Request, who: Principal) -> Response:
        from adserver.control import evaluations

        admin(who)
        eid = request.path_params["eid"]
        if request.method in ("GET", "DELETE"):
            return await stored(request, eid, eid)
        if not eid or len(eid) > 256 or eid.startswith("fi:"):
            return bad(
                "an evaluation id has 1 to 256 characters and does not start with 'fi:'",
                "evaluationId",
            )
        try:
            body = await decode(request, EvaluationRequest)
            start, end = window(body)
            for p in body.policies:
                parse_arguments(p.arguments)
        except Invalid as e:
            return bad(e)
        if store.read("SELECT 1 FROM pz_evaluations WHERE id = ?", (eid,)):
            return Response(
                error_body("Conflict", f"evaluation {eid!r} exists"),
                409,
                media_type="application/json",
            )
        joined = current_settings(store, defaults)
        created = iso(dt.datetime.now(dt.UTC).timestamp())
        result = await run_in_threadpool(
            evaluations.evaluate,
            store,
            joined,
            start,
            end,
            [(p.name, p.arguments) for p in body.policies],
        )
        doc = {
            "id": eid,
            "name": body.name,
            "startTime": iso(start),
            "endTime": iso(end),
            "creationTime": created,
            "status": "Succeeded",
            "evaluationType": "Manual",
            "events": result["events"],
            "optimalPolicy": result["optimalPolicy"],
            "content": {
                "startTime": iso(start),
                "endTime": iso(end),
                "intervalInMinutes": 0,
                "value": result["value"],
            },
        }
        raw = msgspec.json.encode(doc).decode()
        with store.transaction() as db:
            db.execute(
                "INSERT INTO pz_evaluations VALUES (?, ?, ?, ?)",
                (eid, created, msgspec.json.encode(body).decode(), raw),
            )
            _audit(db, who, eid, "evaluate")
        return Response(raw, 200, media_type="application/json")

    async def evaluation_list(request: Request, who: Principal) -> Response:
        admin(who)
        rows = await run_in_threadpool(
            store.read,
            "SELECT result FROM pz_evaluations WHERE id NOT LIKE 'fi:%' ORDER BY created_at DESC",
        )
        items = [msgspec.json.decode(r[0]) for r in rows]
        for x in items:
            x.pop("content", None)
        return ok({"value": items, "nextLink": None})

    async def apply(request: Request, who: Principal) -> Response:
        admin(who)
        try:
            body = await decode(request, ApplyRequest)
        except Invalid as e:
            return bad(e)
        rows = store.read("SELECT result FROM pz_evaluations WHERE id = ?", (body.evaluation_id,))
        if not rows:
            return not_found(body.evaluation_id)
        found = [
            v
            for v in msgspec.json.decode(rows[0][0])["content"]["value"]
            if v["name"] == body.policy_name and v["policySource"] == "Custom"
        ]
        if not found:
            return bad(
                f"evaluation {body.evaluation_id!r} has no candidate policy {body.policy_name!r}",
                "policyName",
            )
        await run_in_threadpool(
            settings.put,
            "policy",
            PolicyConfiguration(body.policy_name, found[0]["arguments"]),
            who,
        )
        return Response(status_code=204)

    async def model(request: Request, who: Principal) -> Response:
        """GET: the active policy as a zip (manifest.json, weights.npy); PUT: make such a zip
        the policy (verified; learning continues from it); DELETE: start from zero."""
        admin(who)
        if learner is None:
            return Response(
                error_body("ServiceUnavailable", "no learner here"),
                503,
                media_type="application/json",
            )
        if request.method == "GET":
            data = await run_in_threadpool(learner.export)
            return Response(data, 200, media_type="application/octet-stream")
        if request.method == "DELETE":
            await run_in_threadpool(learner.reset)
            await run_in_threadpool(audit_model, who, "reset")
            return Response(status_code=204)
        try:
            await run_in_threadpool(learner.import_, await request.body())
        except ValueError as e:
            return bad(str(e), "body")
        await run_in_threadpool(audit_model, who, "import")
        return Response(status_code=204)

    def audit_model(who: Principal, action: str) -> None:
        with store.transaction() as db:
            _audit(db, who, "model", action)

    async def model_properties(request: Request, who: Principal) -> Response:
        admin(who)
        return ok(learner.properties() if learner is not None else {})

    async def logs(request: Request, who: Principal) -> Response:
        admin(who)
        if request.method == "DELETE":
            with store.transaction() as db:
                for table in ("pz_ranks", "pz_rewards", "pz_activations"):
                    db.execute(f"DELETE FROM {table}")
                _audit(db, who, "logs", "delete")
            return Response(status_code=204)
        low, high = store.read("SELECT min(at), max(at) FROM pz_ranks")[0]
        return ok(
            {"dateRange": {"from": iso(low) if low else None, "to": iso(high) if high else None}}
        )

    async def importance(request: Request, who: Principal) -> Response:
        from adserver.control import evaluations

        admin(who)
        fid = request.path_params["fid"]
        if request.method in ("GET", "DELETE"):
            return await stored(request, "fi:" + fid, fid)
        try:
            body = await decode(request, ImportanceRequest)
            start, end = window(body)
        except Invalid as e:
            return bad(e)
        scores = await run_in_threadpool(evaluations.importances, store, learner, start, end)
        created = iso(dt.datetime.now(dt.UTC).timestamp())
        doc = {
            "id": fid,
            "name": body.name,
            "description": body.description,
            "startTime": iso(start),
            "endTime": iso(end),
            "creationTime": created,
            "status": "Succeeded",
            "featureScores": scores,
        }
        raw = msgspec.json.encode(doc).decode()
        with store.transaction() as db:
            db.execute(
                "INSERT INTO pz_evaluations VALUES (?, ?, ?, ?) ON CONFLICT (id) DO"
                " UPDATE SET result = excluded.result",
                ("fi:" + fid, created, msgspec.json.encode(body).decode(), raw),
            )
        return Response(raw, 200, media_type="application/json")

    async def importance_list(request: Request, who: Principal) -> Response:
        admin(who)
        rows = store.read(
            "SELECT result FROM pz_evaluations WHERE id LIKE 'fi:%' ORDER BY created_at DESC"
        )
        return ok({"value": [msgspec.json.decode(r[0]) for r in rows], "nextLink": None})

    base = "/v1/personalizer/configurations"
    return [
        Route(
            "/v1/personalizer/featureImportances",
            api.handler(importance_list, False),
            methods=["GET"],
        ),
        Route(
            "/v1/personalizer/featureImportances/{fid:path}",
            api.handler(importance, False),
            methods=["GET", "PUT", "DELETE"],
        ),
        Route(base + "/applyFromEvaluation", api.handler(apply, False), methods=["POST"]),
        Route(
            "/v1/personalizer/model", api.handler(model, False), methods=["GET", "PUT", "DELETE"]
        ),
        Route(
            "/v1/personalizer/model/properties",
            api.handler(model_properties, False),
            methods=["GET"],
        ),
        Route("/v1/personalizer/logs", api.handler(logs, False), methods=["DELETE"]),
        Route("/v1/personalizer/logs/properties", api.handler(logs, False), methods=["GET"]),
        Route(base + "/service", api.handler(service, False), methods=["GET", "PUT"]),
        Route(base + "/policy", api.handler(policy, False), methods=["GET", "PUT", "DELETE"]),
        Route("/v1/personalizer/evaluations", api.handler(evaluation_list, False), methods=["GET"]),
        Route(
            "/v1/personalizer/evaluations/{eid:path}",
            api.handler(evaluation, False),
            methods=["GET", "PUT", "DELETE"],
        ),
    ]


def openapi_paths(errors: dict[str, Any]) -> dict[str, Any]:
    """The Personalizer administration routes (adserver/control/personalizer_api.py)."""
    obj = {"content": {"application/json": {"schema": {"type": "object"}}}}
    # Personalizer's own errors ({"error": {"code", "message", "target"?}}, which its clients
    # parse) or, for the key checks in front of them, the management API's
    azure = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "target": {"type": "string"},
                },
            }
        },
    }
    either = {
        status: {
            "description": spec["description"],
            "content": {
                "application/json": {
                    "schema": {"anyOf": [spec["content"]["application/json"]["schema"], azure]}
                }
            },
        }
        for status, spec in errors.items()
    }

    def op(summary: str, op_id: str, body: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "tags": ["personalizer"],
            "summary": summary,
            "operationId": op_id,
            "responses": {
                "200": {"description": "OK", **obj},
                "201": {"description": "Created", **obj},
                "204": {"description": "Done, no content"},
                **either,
            },
        }
        if body:
            out["requestBody"] = {"required": True, **obj}
        return out

    return {
        "/v1/personalizer/configurations/service": {
            "get": op("Personalizer's service configuration", "get_pz_service"),
            "put": op("Replace it (durations in ISO 8601)", "put_pz_service", True),
        },
        "/v1/personalizer/configurations/policy": {
            "get": op("The learning policy {name, arguments}", "get_pz_policy"),
            "put": op("Replace it", "put_pz_policy", True),
            "delete": op("Back to the default policy", "reset_pz_policy"),
        },
        "/v1/personalizer/configurations/applyFromEvaluation": {
            "post": op(
                "Make an evaluated candidate the learning policy", "apply_pz_evaluation", True
            )
        },
        "/v1/personalizer/evaluations": {
            "get": op("Offline evaluations, newest first", "list_pz_evaluations")
        },
        "/v1/personalizer/evaluations/{eid}": {
            "parameters": [
                {"name": "eid", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "get": op("One evaluation with its results", "get_pz_evaluation"),
            "put": op(
                "Run an offline evaluation of candidate policies over a time window",
                "create_pz_evaluation",
                True,
            ),
            "delete": op("Delete an evaluation", "delete_pz_evaluation"),
        },
        "/v1/personalizer/model": {
            "get": op("Export the active policy (a zip)", "export_pz_model"),
            "put": op("Import an exported policy", "import_pz_model"),
            "delete": op("Reset the policy to zero weights", "reset_pz_model"),
        },
        "/v1/personalizer/model/properties": {
            "get": op("The active policy's times and counts", "get_pz_model_properties")
        },
        "/v1/personalizer/featureImportances": {
            "get": op("Feature importance jobs", "list_pz_feature_importances")
        },
        "/v1/personalizer/featureImportances/{fid}": {
            "parameters": [
                {"name": "fid", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "get": op("One job's feature scores", "get_pz_feature_importance"),
            "put": op(
                "Score the active policy's features over a time window",
                "create_pz_feature_importance",
                True,
            ),
            "delete": op("Delete a job", "delete_pz_feature_importance"),
        },
        "/v1/personalizer/logs": {"delete": op("Delete the logged events", "delete_pz_logs")},
        "/v1/personalizer/logs/properties": {
            "get": op("The time range of the logged events", "get_pz_log_properties")
        },
    }
