"""The console's health and pacing pages.

Health (operations): is the store answering and which snapshot is published (the control
process's /readyz), which snapshot the decision workers serve (the decision API's /readyz),
how far behind the event logs the aggregator is, and the records in quarantine (scoped like
`GET /v1/quarantine`). Pacing (anyone who may see the flight): a flight's day so far, the
plan against the delivery hour by hour, its throttle and allowance, drawn with plotly.js."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adserver.control import telemetry
from adserver.control.console.pages import OPERATIONS, api_message
from adserver.control.console.preview_page import call_decisions, decision_url


def routes(console: Any, api: Any) -> list[Route]:
    call = console.call

    async def health(request: Request) -> Response:
        s, refused = console.gate(request, OPERATIONS, "this page is for operations")
        if s is None:
            return refused
        who = s.user.principal()
        control_status, control = await call(who, "GET", "/readyz")
        url = decision_url(api.settings)
        http, answer = await run_in_threadpool(call_decisions, url, "/readyz", None, None, 2.0)
        decisions = {"http": http, "reason": api_message(answer, http), **(answer or {})}
        _, quarantined = await call(who, "GET", "/v1/quarantine", {"limit": 100})
        lag_s = telemetry.REGISTRY.get_sample_value("adserver_control_aggregator_lag_seconds")
        lag_events = telemetry.REGISTRY.get_sample_value("adserver_control_aggregator_lag_events")
        return console.view(
            request,
            s,
            "health.html",
            control=control or {},
            control_ok=control_status == 200,
            decisions=decisions,
            decision_url=url,
            lag_s=lag_s,
            lag_events=lag_events,
            quarantined=(quarantined or {}).get("data", []),
        )

    async def pacing(request: Request) -> Response:
        s = console.signed_in(request)
        if s is None:
            return console.to_login()
        who = s.user.principal()
        raw = request.path_params["id"]
        status, flight = await call(who, "GET", f"/v1/flights/{raw}")
        if status != 200:
            return console.not_found(request, s, f"no flight {raw} you may see")
        _, got = await call(who, "GET", f"/v1/flights/{flight['id']}/pacing")
        got = got or {}
        chart = {  # the plans are cumulative, at the end of each hour of the local day
            "plan": got.get("hourly_plan") or [],
            "day_plan": got.get("day_hourly_plan") or [],
            "actual": got.get("hourly_actual") or [],
            "curve": flight.get("pacing_curve") or [],
            "metric": got.get("metric") or "spend",
        }
        return console.view(
            request,
            s,
            "pacing.html",
            flight=flight,
            pacing=got,
            chart=chart,
            tz=await console.time_zone(who),
        )

    return [
        Route("/console/health", health),
        Route("/console/flights/{id}/pacing", pacing),
    ]
