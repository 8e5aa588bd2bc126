"""The console's personalization page (admins): the Personalizer's offline evaluations,
each policy's expected reward drawn with its confidence interval (plotly.js), the one the
evaluation found best, and the learning policy in force. Read through the Personalizer
administration routes of the management API."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from adserver.control.console import users
from adserver.control.console.pages import HEADERS, api_message


def routes(console: Any) -> list[Route]:
    call = console.call

    async def page(request: Request) -> Response:
        s, refused = console.gate(request, ("admin",), "the personalization page is for admins")
        if s is None:
            return refused
        who = s.user.principal()
        message = None
        if request.method == "POST":
            data = await console.form(request)
            if not users.csrf_ok(s.csrf, data.get("csrf")):
                return console.refused(request, s)
            status, got, target = await _act(call, who, data)
            if status < 300:
                return RedirectResponse(target, 303, headers=HEADERS)
            message = api_message(got, status)
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
            message=message,
        )

    return [Route("/console/personalization", page, methods=["GET", "POST"])]


async def _act(call: Any, who: Any, data: dict[str, str]) -> tuple[int, Any, str]:
    """Create an evaluation, or apply a policy an evaluation found: (status, answer, the page
    to show after)."""
    if data.get("action") == "apply":
        eid = data.get("evaluation_id", "")
        status, got = await call(
            who,
            "POST",
            "/v1/personalizer/configurations/applyFromEvaluation",
            body={"evaluationId": eid, "policyName": data.get("policy_name", "")},
        )
        return status, got, f"/console/personalization?id={quote(eid, safe='')}"
    eid = data.get("id", "").strip()
    policies = []
    for line in data.get("policies", "").splitlines():
        name, _, arguments = line.partition(":")
        if name.strip():
            policies.append({"name": name.strip(), "arguments": arguments.strip()})
    body = {
        "name": data.get("name", "") or eid,
        "startTime": data.get("start", ""),
        "endTime": data.get("end", ""),
        "policies": policies,
    }
    if not eid:
        return 400, {"error": {"message": "an evaluation needs an id"}}, ""
    status, got = await call(
        who, "PUT", f"/v1/personalizer/evaluations/{quote(eid, safe='')}", body=body
    )
    return status, got, f"/console/personalization?id={quote(eid, safe='')}"
