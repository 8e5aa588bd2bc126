"""Delivery on the management API: `GET /v1/reports` (adserver/control/reports.py) and a
flight's pacing, `GET /v1/flights/{id}/pacing` (adserver/control/pacing.py)."""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adserver.control import reports as report_queries
from adserver.control.auth import Principal
from adserver.control.responses import json_response
from adserver.control.schema import SPECS


async def reports(api: Any, request: Request, who: Principal) -> Response:
    params = report_queries.parse(request.query_params)
    rows = await run_in_threadpool(report_queries.run, api.store, who, params)
    if params["format"] == "csv":
        return Response(report_queries.to_csv(rows), media_type="text/csv")
    return json_response({"data": rows})


async def pacing(api: Any, request: Request, who: Principal) -> Response:
    """A flight's pacing: today's goal, plan and delivery so far, its throttle and, near
    a cap, each worker's allowance (adserver/control/pacing.py)."""
    id_ = api.path_id(request)
    flight: Any = await run_in_threadpool(api.repo.get, SPECS["flights"], who, id_)
    st = api.pacer.status.get(id_) if api.pacer is not None else None
    if st is None:
        capped = flight.daily_cap is not None or flight.lifetime_cap is not None
        return json_response(
            {
                "flight_id": id_,
                "mode": flight.pacing,
                "paced": False,
                "reason": (
                    "not active"
                    if not flight.is_active or flight.archived
                    else "waiting for the controller's next step"
                    if capped
                    else "no daily or lifetime cap to pace"
                ),
                "throttle": 1.0,
            }
        )
    rows = await run_in_threadpool(
        api.store.read,
        "SELECT hour, SUM(spend_nanos), SUM(impressions), SUM(clicks) FROM stats_hourly"
        " WHERE flight_id = ? AND hour >= ? GROUP BY hour ORDER BY hour",
        (id_, _hour_text(st.day_start)),
    )
    column = {"spend": 1, "impressions": 2, "clicks": 3}.get(st.metric or "spend", 1)
    scale = 1e-9 if column == 1 else 1.0
    hourly: dict[str, float] = {r[0]: (r[column] or 0) * scale for r in rows}
    cumulative, total = [], 0.0
    for h in range(24):
        hour = _hour_text(st.day_start + 3600 * h)
        if st.day_start + 3600 * h > st.updated_at:
            break
        total += hourly.get(hour, 0.0)
        cumulative.append(round(total, 9))
    return json_response(
        {
            "flight_id": id_,
            "mode": st.mode,
            "paced": st.mode != "asap",
            "metric": st.metric,
            "goal": _round(st.goal),
            "plan": _round(st.plan),
            "day_plan": _round(st.day_plan),
            "actual": _round(st.actual),
            "throttle": round(st.throttle, 6),
            "allowance_per_worker": _round(st.allowance),
            "lifetime_delivered": _round(st.lifetime_delivered),
            "day_start": _iso(st.day_start),
            "updated_at": _iso(st.updated_at),
            "hourly_plan": [round(x, 9) for x in st.hourly_plan],
            "day_hourly_plan": [round(x, 9) for x in st.day_hourly_plan],
            "hourly_actual": cumulative,
            "forecast_trust": round(st.forecast_trust, 3),
        }
    )


def routes(api: Any) -> list[Route]:
    return [
        Route("/v1/reports", api.handler(partial(reports, api)), methods=["GET"]),
        Route("/v1/flights/{id}/pacing", api.handler(partial(pacing, api)), methods=["GET"]),
    ]


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 9)


def _hour_text(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H")


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat().replace("+00:00", "Z")
