"""The console's personalization page (admins): the Personalizer's offline evaluations,
each policy's expected reward drawn with its confidence interval (plotly.js), the one the
evaluation found best, and the learning policy in force. Read through the Personalizer
administration routes of the management API."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def routes(console: Any) -> list[Route]:
    call = console.call

    async def page(request: Request) -> Response:
        s = console.signed_in(request)
        if s is None:
            return console.to_login()
        if s.user.role != "admin":
            return console.not_found(request, s, "the personalization page is for admins")
        who = s.user.principal()
        _, listed = await call(who, "GET", "/v1/personalizer/evaluations")
        evaluations = (listed or {}).get("value", [])
        chosen = request.query_params.get("id") or (evaluations[0]["id"] if evaluations else "")
        detail, chart = None, None
        if chosen:
            status, got = await call(
                who, "GET", f"/v1/personalizer/evaluations/{quote(chosen, safe='')}"
            )
            if status != 200:
                return console.not_found(request, s, f"no evaluation {chosen!r}")
            detail = got
            rows = []
            for v in (got.get("content") or {}).get("value", []):
                summary = v.get("summary") or {}
                low, high = summary.get("confidenceInterval") or [None, None]
                rows.append(
                    {
                        "name": v.get("name"),
                        "reward": summary.get("expectedReward"),
                        "low": low,
                        "high": high,
                        "events": summary.get("numberOfEvents"),
                    }
                )
            chart = rows
        _, policy = await call(who, "GET", "/v1/personalizer/configurations/policy")
        return console.view(
            request,
            s,
            "personalization.html",
            evaluations=evaluations,
            chosen=chosen,
            detail=detail,
            rows=chart or [],
            policy=policy or {},
        )

    return [Route("/console/personalization", page)]
