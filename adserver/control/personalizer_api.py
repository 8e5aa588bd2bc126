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
import re
from typing import Any, Literal

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adserver.control.auth import Principal
from adserver.control.repo import Forbidden
from adserver.control.store import Store, now
from adserver.wire.personalizer import error_body

DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def seconds(text: str) -> float:
    """ISO 8601 duration (days, hours, minutes, seconds) in seconds; ValueError if not one."""
    m = DURATION.match(text or "")
    if not m or text in ("P", "PT") or text.endswith("T"):
        raise ValueError(f"{text!r} is not an ISO 8601 duration such as PT10M")
    d, h, mi, s = (float(x) if x else 0.0 for x in m.groups())
    return d * 86400 + h * 3600 + mi * 60 + s


def duration(total: float) -> str:
    d, rest = divmod(int(round(total)), 86400)
    h, rest = divmod(rest, 3600)
    mi, s = divmod(rest, 60)
    out = "P" + (f"{d}D" if d else "")
    tail = (f"{h}H" if h else "") + (f"{mi}M" if mi else "") + (f"{s}S" if s else "")
    return out + ("T" + tail if tail or not d else "")


class ServiceConfiguration(msgspec.Struct, rename="camel", omit_defaults=False):
    reward_wait_time: str = "PT10M"
    default_reward: float = 0.0
    reward_aggregation: Literal["earliest", "sum"] = "earliest"
    exploration_percentage: float = 0.2
    model_export_frequency: str = "PT5M"
    log_retention_days: int = 90
    learning_mode: Literal["Online", "Apprentice", "LoggingOnly"] = "Online"
    is_auto_optimization_enabled: bool = False
    auto_optimization_frequency: str | None = None
    auto_optimization_start_date: str | None = None
    last_configuration_edit_date: str | None = None
    log_mirror_enabled: bool | None = None
    log_mirror_sas_uri: str | None = None


class PolicyConfiguration(msgspec.Struct, rename="camel"):
    name: str = "default"
    arguments: str = "--cb_explore_adf --epsilon 0.2 --cb_type mtr -l 0.5 -b 18"


class Invalid(Exception):
    def __init__(self, message: str, target: str):
        super().__init__(message)
        self.message, self.target = message, target


def check_service(c: ServiceConfiguration) -> None:
    for name, value, lo, hi in (("rewardWaitTime", c.reward_wait_time, 5, 2 * 86400),
                                ("modelExportFrequency", c.model_export_frequency, 60, 86400)):
        try:
            s = seconds(value)
        except ValueError as e:
            raise Invalid(str(e), name) from None
        if not lo <= s <= hi:
            raise Invalid(f"{name} must be from {duration(lo)} to {duration(hi)}", name)
    if not -1 <= c.default_reward <= 1:
        raise Invalid("defaultReward must be between -1 and 1", "defaultReward")
    if not 0 <= c.exploration_percentage <= 1:
        raise Invalid("explorationPercentage must be between 0 and 1", "explorationPercentage")
    if not 0 <= c.log_retention_days <= 365 * 10:
        raise Invalid("logRetentionDays must be from 0 to 3650", "logRetentionDays")


FLAGS = {"--epsilon": ("epsilon", float), "--lambda": ("lam", float), "-l": ("lr", float),
         "-b": ("bits", int)}


def parse_arguments(text: str) -> dict[str, Any]:
    """The learner settings a policy's argument string names (Vowpal Wabbit's spelling:
    --epsilon E, --softmax [--lambda L], -l RATE, -b BITS); other flags are accepted and
    have no effect here."""
    words = text.split()
    out: dict[str, Any] = {"softmax": "--softmax" in words}
    for i, w in enumerate(words):
        if w in FLAGS:
            name, kind = FLAGS[w]
            try:
                out[name] = kind(words[i + 1])
            except (IndexError, ValueError):
                raise Invalid(f"{w} needs a {kind.__name__} value", "arguments") from None
    if not 0 <= out.get("epsilon", 0.2) <= 1:
        raise Invalid("--epsilon must be between 0 and 1", "arguments")
    if not 8 <= out.get("bits", 18) <= 24:
        raise Invalid("-b must be from 8 to 24", "arguments")
    if not 0 < out.get("lr", 0.5) <= 10:
        raise Invalid("-l must be in (0, 10]", "arguments")
    return out


class Settings:
    """pz_settings in the control store (the control process is its one writer)."""

    def __init__(self, store: Store):
        self.store = store

    def get(self, name: str) -> Any:
        rows = self.store.read("SELECT value FROM pz_settings WHERE name = ?", (name,))
        kind = ServiceConfiguration if name == "service" else PolicyConfiguration
        return msgspec.json.decode(rows[0][0], type=kind) if rows else kind()

    def put(self, name: str, value: Any, who: Principal) -> None:
        raw = msgspec.json.encode(value).decode()
        with self.store.transaction() as db:
            db.execute("INSERT INTO pz_settings VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE"
                       " SET value = excluded.value, updated_at = excluded.updated_at",
                       (name, raw, now()))
            db.execute("INSERT INTO audit (at, key_id, entity, entity_id, action, network_id,"
                       " advertiser_id, before, after) VALUES (?, ?, 'personalizer', ?,"
                       " 'update', NULL, NULL, NULL, ?)", (now(), who.key_id, name, raw))

    def delete(self, name: str, who: Principal) -> None:
        with self.store.transaction() as db:
            db.execute("DELETE FROM pz_settings WHERE name = ?", (name,))
            db.execute("INSERT INTO audit (at, key_id, entity, entity_id, action, network_id,"
                       " advertiser_id, before, after) VALUES (?, ?, 'personalizer', ?,"
                       " 'reset', NULL, NULL, NULL, NULL)", (now(), who.key_id, name))


def routes(api: Any, store: Store) -> list[Route]:
    settings = Settings(store)

    def ok(value: Any) -> Response:
        return Response(msgspec.json.encode(value), 200, media_type="application/json")

    def bad(e: Invalid | str, target: str | None = None) -> Response:
        msg, tgt = (e.message, e.target) if isinstance(e, Invalid) else (e, target)
        return Response(error_body("BadRequest", msg, tgt), 400, media_type="application/json")

    def admin(who: Principal) -> None:
        if who.role != "admin":
            raise Forbidden("Personalizer administration takes an admin key")

    async def decode(request: Request, kind: type) -> Any:
        raw = await request.body()
        try:
            return msgspec.json.decode(raw, type=kind)
        except msgspec.ValidationError as e:
            text = str(e)
            raise Invalid(text.partition(" - at `$")[0],
                          text.partition(" - at `$")[2].rstrip("`").lstrip(".") or "") from None
        except msgspec.DecodeError as e:
            raise Invalid(f"the body is not valid JSON: {e}", "") from None

    async def service(request: Request, who: Principal) -> Response:
        admin(who)
        if request.method == "GET":
            return ok(await run_in_threadpool(settings.get, "service"))
        try:
            body = await decode(request, ServiceConfiguration)
            check_service(body)
        except Invalid as e:
            return bad(e)
        body.last_configuration_edit_date = dt.datetime.now(dt.UTC).isoformat().replace(
            "+00:00", "Z")
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

    base = "/v1/personalizer/configurations"
    return [Route(base + "/service", api.handler(service, False), methods=["GET", "PUT"]),
            Route(base + "/policy", api.handler(policy, False),
                  methods=["GET", "PUT", "DELETE"])]


def learner_settings(store: Store) -> tuple[ServiceConfiguration, dict[str, Any]] | None:
    """The stored service configuration and policy arguments, None when neither was set."""
    rows = dict(store.read("SELECT name, value FROM pz_settings"))
    if not rows:
        return None
    s = Settings(store)
    return s.get("service"), parse_arguments(s.get("policy").arguments)



def openapi_paths(errors: dict[str, Any]) -> dict[str, Any]:
    """These routes for the OpenAPI document (adserver/control/openapi.py)."""
    obj = {"content": {"application/json": {"schema": {"type": "object"}}}}

    def op(summary: str, op_id: str, body: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"tags": ["personalizer"], "summary": summary,
                               "operationId": op_id,
                               "responses": {"200": {"description": "OK", **obj},
                                             "400": {"description": "Refused", **obj},
                                             **errors}}
        if body:
            out["requestBody"] = {"required": True, **obj}
        return out

    return {
        "/v1/personalizer/configurations/service": {
            "get": op("Personalizer's service configuration", "get_pz_service"),
            "put": op("Replace it (durations in ISO 8601)", "put_pz_service", True)},
        "/v1/personalizer/configurations/policy": {
            "get": op("The learning policy {name, arguments}", "get_pz_policy"),
            "put": op("Replace it", "put_pz_policy", True),
            "delete": op("Back to the default policy", "reset_pz_policy")},
    }
