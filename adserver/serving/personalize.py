"""Personalizer's runtime on the decision workers: rank, reward and activate, single- and
multi-slot, under `/personalizer/v1.0/...` (azure-cognitiveservices-personalizer) and
`/personalizer/...?api-version=...` (azure-ai-personalizer).

Authenticated by `Ocp-Apim-Subscription-Key`: a live admin API key of ours (event ids are
kept per network: see `prelude`; administration, forwarded to the control process, takes
an unscoped admin key: the policy is the installation's). A rank is
answered from the worker's policy (adserver/learn/bandit.py) and logged to its decision log
(stream `decisions`, `{"t": "pz_rank", ...}`: context, actions, exclusions, the
probabilities used, the chosen action); rewards and activations go to its event log (stream
`events`, fsynced before the 204), to be joined with the ranks by the control process.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
import urllib.error
import urllib.request
from typing import Any

import msgspec
import numpy as np
from starlette.requests import Request
from starlette.responses import Response

from adserver.common import clock
from adserver.common.validation import TOO_DEEP
from adserver.config import Config
from adserver.formats import livestate
from adserver.kernels import bandit as bandit_kernels
from adserver.learn import bandit
from adserver.serving.worker import Worker
from adserver.wire import personalizer as pz

JSON = "application/json"
HEADER = "ocp-apim-subscription-key"
ADMIN = (
    "evaluations",
    "model",
    "logs",
    "featureImportances",
)  # forwarded with configurations/... to the control
MAX_MODEL_BYTES = 80 << 20  # an imported model: 2^24 float32 weights, zipped


def error(status: int, code: str, message: str, target: str | None = None) -> Response:
    return Response(pz.error_body(code, message, target), status, media_type=JSON)


def routes(worker: Worker, config: Config) -> dict[str, Any]:
    async def prelude(request: Request, decoder: Any, limit: int = 0) -> Any:
        snap = worker.snapshot
        if snap is None:
            return error(503, "ServiceUnavailable", "the service is starting")
        caller = worker.caller(request, HEADER)
        if caller is None or caller.role != "admin":
            return error(
                401,
                "PermissionDenied",
                "Access denied: give a valid key in Ocp-Apim-Subscription-Key",
            )
        # event ids are kept per network: a key of network N ranks and rewards `nN:<id>`
        # (an unscoped key the bare id), so no key can reward, activate or collide with
        # the events of another network
        request.state.namespace = f"n{caller.network}:" if caller.network else ""
        body = await request.body()
        limit = limit or config.max_body_bytes
        if len(body) > limit:
            return error(413, "BadRequest", f"body larger than {limit} bytes")
        if decoder is None:
            return None
        try:
            return decoder.decode(body)
        except msgspec.ValidationError as e:
            text = str(e)
            target = text.partition(" - at `$")[2].rstrip("`").lstrip(".") or None
            return error(400, "BadRequest", text.partition(" - at `$")[0], target)
        except msgspec.DecodeError as e:
            return error(400, "BadRequest", f"the body is not valid JSON: {e}")
        except RecursionError:  # contextFeatures nested thousands deep
            return error(400, "BadRequest", TOO_DEEP)

    def capped(actions: list[pz.RankableAction]) -> set[int]:
        """The actions at their daily cap (counts from live.lmdb, projected by the control
        process from every worker's logged choices: a cap can be passed by what the workers
        choose before the next projection, about a second's worth)."""
        out: set[int] = set()
        live = worker.live
        if live is None:
            return out
        day = time.strftime("%Y-%m-%d", time.gmtime(clock.now()))
        with live.begin() as txn:
            for i, a in enumerate(actions):
                c = a.constraints
                if c is not None and c.daily_cap is not None:
                    shown = livestate.decode(txn.get(livestate.action_key(day, a.id))) or 0
                    if shown >= c.daily_cap:
                        out.add(i)
        return out

    def floors_of(actions: list[pz.RankableAction]) -> np.ndarray | None:
        if not any(a.constraints is not None and a.constraints.min_share for a in actions):
            return None
        return np.array(
            [(a.constraints.min_share or 0.0) if a.constraints else 0.0 for a in actions]
        )

    def rank_one(
        policy: bandit.Policy,
        ctx: tuple[np.ndarray, np.ndarray],
        acts: tuple[np.ndarray, ...],
        allowed: np.ndarray,
        baseline: int,
        floor: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, int, int]:
        """(scores, the probabilities used, the chosen action, the policy's own best). In
        Apprentice and LoggingOnly modes the baseline is returned, with probability 1;
        `floor`: each action's minimum share (its constraints)."""
        scores = policy.scores(policy.rows(ctx, acts))
        p = policy.probabilities(scores, allowed)
        if floor is not None and policy.mode == "Online":
            bandit_kernels.floors(p, floor, allowed)
        best = int(np.argmax(np.where(allowed, scores, -np.inf)))
        if policy.mode != "Online":
            p = np.zeros_like(p)
            p[baseline] = 1.0
            return scores, p, baseline, best
        return scores, p, bandit.draw(p, float(worker.rng.random())), best

    async def checked(request: Request, decoder: Any, check: Any) -> Any:
        """The decoded body once `check` accepts it, else the error response."""
        req = await prelude(request, decoder)
        if isinstance(req, Response):
            return req
        try:
            check(req)
        except pz.Invalid as e:
            return error(400, "BadRequest", e.message, e.target)
        return req

    async def rank(request: Request) -> Response:
        req = await checked(request, pz.rank_decoder, pz.check_rank)
        if isinstance(req, Response):
            return req
        policy = worker.policy
        excluded = set(req.excluded_actions or ())
        at_cap = capped(req.actions)
        allowed = np.array(
            [a.id not in excluded and i not in at_cap for i, a in enumerate(req.actions)]
        )
        if not allowed.any():
            return error(
                400, "BadRequest", "every action is excluded or at its daily cap", "actions"
            )
        ctx = bandit.context_arrays(req.context_features)
        acts = bandit.action_arrays(req.actions)
        baseline = int(np.argmax(allowed))  # the first action not excluded
        scores, p, chosen, best = rank_one(
            policy, ctx, acts, allowed, baseline, floors_of(req.actions)
        )
        order = [chosen] + sorted(
            (i for i in range(len(req.actions)) if i != chosen),
            key=lambda i: (-p[i], -scores[i], i),
        )
        event_id = req.event_id or os.urandom(16).hex()
        ids = [a.id for a in req.actions]
        if worker.records is not None:
            worker.records.append(
                {
                    "t": "pz_rank",
                    "id": request.state.namespace + event_id,
                    "ts": clock.now(),
                    "policy": policy.version,
                    "context": req.context_features,
                    "actions": msgspec.to_builtins(req.actions),
                    "excluded": sorted(excluded | {req.actions[i].id for i in at_cap}),
                    "probabilities": [round(float(x), 6) for x in p],
                    "chosen": chosen,
                    "baseline": baseline,
                    "best": best,
                    "mode": policy.mode,
                    "defer": bool(req.defer_activation),
                }
            )
        out = pz.RankResponse(
            ranking=[pz.RankedAction(ids[i], round(float(p[i]), 6)) for i in order],
            event_id=event_id,
            reward_action_id=ids[chosen],
        )
        return Response(pz.encoder.encode(out), 201, media_type=JSON)

    async def multislot_rank(request: Request) -> Response:
        req = await checked(request, pz.multislot_decoder, pz.check_multislot)
        if isinstance(req, Response):
            return req
        policy = worker.policy
        acts = bandit.action_arrays(req.actions)
        ids = [a.id for a in req.actions]
        taken: set[int] = capped(req.actions)  # at their daily cap: in no slot
        floor = floors_of(req.actions)
        slots, logged = [], []
        for s in req.slots:
            excluded = set(s.excluded_actions or ())
            allowed = np.array([i not in taken and a not in excluded for i, a in enumerate(ids)])
            if not allowed.any():  # every action is used up: the slot gets its baseline
                slots.append(pz.SlotResponse(s.id, s.baseline_action))
                logged.append(
                    {"slot": s.id, "chosen": ids.index(s.baseline_action), "probabilities": None}
                )
                continue
            ctx = bandit.context_arrays(req.context_features, s.features)
            baseline = ids.index(s.baseline_action)
            if not allowed[baseline]:  # taken or excluded: the first allowed stands in
                baseline = int(np.argmax(allowed))
            _, p, chosen, best = rank_one(policy, ctx, acts, allowed, baseline, floor)
            taken.add(chosen)
            slots.append(pz.SlotResponse(s.id, ids[chosen]))
            logged.append(
                {
                    "slot": s.id,
                    "features": s.features,
                    "chosen": chosen,
                    "baseline": baseline,
                    "best": best,
                    "allowed": np.flatnonzero(allowed).tolist(),
                    "probabilities": [round(float(x), 6) for x in p],
                }
            )
        event_id = req.event_id or os.urandom(16).hex()
        if worker.records is not None:
            worker.records.append(
                {
                    "t": "pz_mrank",
                    "id": request.state.namespace + event_id,
                    "ts": clock.now(),
                    "policy": policy.version,
                    "context": req.context_features,
                    "actions": msgspec.to_builtins(req.actions),
                    "slots": logged,
                    "mode": policy.mode,
                    "defer": bool(req.defer_activation),
                }
            )
        out = pz.MultiSlotRankResponse(slots=slots, event_id=event_id)
        return Response(pz.encoder.encode(out), 201, media_type=JSON)

    async def log_event(record: dict[str, Any]) -> Response:
        await worker.events.append({**record, "ts": clock.now()})  # type: ignore[union-attr]
        return Response(status_code=204)

    def event_id(request: Request) -> str | Response:
        eid = request.path_params["event_id"]
        if not eid or len(eid) > pz.MAX_ID:
            return error(
                400, "BadRequest", f"an event id has 1 to {pz.MAX_ID} characters", "eventId"
            )
        return eid

    async def on_event(request: Request, decoder: Any, check: Any, make: Any) -> Response:
        """A reward or an activation: checked, then appended to the event log (204)."""
        req = await (
            checked(request, decoder, check) if decoder is not None else prelude(request, None)
        )
        if isinstance(req, Response):
            return req
        eid = event_id(request)
        if isinstance(eid, Response):
            return eid
        return await log_event(make(request.state.namespace + eid, req))

    async def reward(request: Request) -> Response:
        return await on_event(
            request,
            pz.reward_decoder,
            lambda r: pz.check_reward(r.value),
            lambda eid, r: {
                "t": "pz_reward",
                "id": f"pr:{eid}:{os.urandom(6).hex()}",
                "event": eid,
                "value": r.value,
            },
        )

    async def multislot_reward(request: Request) -> Response:
        return await on_event(
            request,
            pz.multislot_reward_decoder,
            pz.check_multislot_reward,
            lambda eid, r: {
                "t": "pz_mreward",
                "id": f"pr:{eid}:{os.urandom(6).hex()}",
                "event": eid,
                "rewards": [[x.slot_id, x.value] for x in r.reward],
            },
        )

    async def activate(request: Request) -> Response:
        return await on_event(
            request,
            None,
            None,
            lambda eid, _: {"t": "pz_activate", "id": f"pa:{eid}", "event": eid},
        )

    async def forward(request: Request) -> Response:
        """Administration calls go to the control process, the one writer of the store."""
        got = await prelude(request, None, MAX_MODEL_BYTES)
        if isinstance(got, Response):
            return got
        try:
            with open(os.path.join(config.data_dir, "control.url")) as src:
                control = src.read().strip()
        except OSError:
            return error(503, "ServiceUnavailable", "the control process is not running")
        path = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
        rest = path[path.index("/personalizer/") + len("/personalizer/") :]
        if rest.startswith("v1.0/"):
            rest = rest[len("v1.0/") :]
        url = f"{control}/v1/personalizer/{rest}"
        if request.url.query:
            url += "?" + request.url.query
        body = await request.body()
        headers = {
            "X-Api-Key": request.headers[HEADER],
            "Content-Type": request.headers.get("content-type", JSON),
        }
        try:
            status, ctype, data = await asyncio.to_thread(
                _call, request.method, url, body or None, headers, config.tls_cert
            )
        except OSError as e:
            return error(503, "ServiceUnavailable", f"the control process did not answer: {e}")
        return Response(data, status, media_type=ctype)

    out: dict[str, Any] = {}
    for base in ("/personalizer/v1.0", "/personalizer"):
        out[base + "/configurations/{rest:path}"] = forward
        for admin in ADMIN:
            out[f"{base}/{admin}"] = out[f"{base}/{admin}/{{rest:path}}"] = forward
        out[base + "/rank"] = rank
        out[base + "/events/{event_id:path}/reward"] = reward
        out[base + "/events/{event_id:path}/activate"] = activate
        out[base + "/multislot/rank"] = multislot_rank
        out[base + "/multislot/events/{event_id:path}/reward"] = multislot_reward
        out[base + "/multislot/events/{event_id:path}/activate"] = activate
    return out


def _call(
    method: str, url: str, body: bytes | None, headers: dict[str, str], cafile: str | None = None
) -> tuple[int, str, bytes]:
    """One HTTP call to the control process (standard library, in a worker thread); over
    TLS the control process's certificate is trusted as configured (`cafile`)."""
    req = urllib.request.Request(url, data=body, headers=headers, method=method)
    context = ssl.create_default_context(cafile=cafile) if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(req, timeout=10, context=context) as r:
            return r.status, r.headers.get("content-type", JSON), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("content-type", JSON), e.read()
