"""The console's reports: delivery, spend and outcomes over time, grouped by advertiser,
campaign, flight, creative, site or zone, in the network's time zone and currency; a chart
of any metric per group (plotly.js, served from the installed `plotly` package: no CDN), the
totals as a table, and the same rows as CSV. Rows come from `GET /v1/reports` with the user's
scope (an advertiser sees its own delivery only); the API's buckets are UTC hours, regrouped
here into the network's local hours or days."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import zoneinfo
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from adserver.common import clock
from adserver.control.console.pages import HEADERS, api_message

GROUPS = ("advertiser", "campaign", "flight", "creative", "site", "zone")
METRICS = ("spend", "impressions", "clicks", "ctr", "conversions", "gmv", "roas")
SUMMED = ("impressions", "clicks", "conversions", "spend", "gmv", "requests")
MAX_DAYS = 92


def plotly_js() -> str:
    """The path of the plotly.js bundle the `plotly` package ships."""
    import plotly

    return os.path.join(os.path.dirname(plotly.__file__), "package_data", "plotly.min.js")


def _local_day(text: str | None, tz: zoneinfo.ZoneInfo, default: dt.date) -> dt.date | None:
    if not text:
        return default
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def buckets_between(
    begin: dt.datetime, finish: dt.datetime, interval: str, tz: zoneinfo.ZoneInfo
) -> list[str]:
    """Every local day or hour from `begin` up to `finish` (the chart's axis, gaps shown)."""
    step = dt.timedelta(days=1) if interval == "day" else dt.timedelta(hours=1)
    fmt = "%Y-%m-%d" if interval == "day" else "%Y-%m-%d %H:00"
    out: list[str] = []
    t = begin.astimezone(dt.UTC)
    while t < finish and len(out) < 24 * (MAX_DAYS + 1):
        label = t.astimezone(tz).strftime(fmt)
        if not out or out[-1] != label:
            out.append(label)
        t += step if interval == "hour" else dt.timedelta(hours=1)
    return out


def aggregate(
    rows: list[dict[str, Any]], group: str, interval: str, tz: zoneinfo.ZoneInfo
) -> tuple[list[str], dict[Any, dict[str, Any]], dict[Any, dict[str, dict[str, Any]]]]:
    """The API's hourly UTC rows regrouped: (local buckets in order, totals per group id,
    sums per group id per bucket). Ratios are computed from the sums."""
    buckets: set[str] = set()
    totals: dict[Any, dict[str, Any]] = {}
    series: dict[Any, dict[str, dict[str, Any]]] = {}
    for r in rows:
        utc = dt.datetime.strptime(r["hour"], "%Y-%m-%dT%H").replace(tzinfo=dt.UTC)
        local = utc.astimezone(tz)
        bucket = local.strftime("%Y-%m-%d" if interval == "day" else "%Y-%m-%d %H:00")
        buckets.add(bucket)
        gid = r[f"{group}_id"]
        name = r.get(f"{group}_name") or str(gid)
        for target in (
            totals.setdefault(gid, {"id": gid, "name": name}),
            series.setdefault(gid, {}).setdefault(bucket, {}),
        ):
            for m in SUMMED:
                value = r.get(m) or 0
                target[m] = target.get(m, 0) + (
                    Decimal(str(value)) if m in ("spend", "gmv") else value
                )
    for sums in [*totals.values(), *(b for s in series.values() for b in s.values())]:
        _ratios(sums)
    return sorted(buckets), totals, series


def _ratios(s: dict[str, Any]) -> None:
    imps, clicks, spend = s.get("impressions", 0), s.get("clicks", 0), s.get("spend", Decimal(0))
    s["ctr"] = round(clicks / imps, 6) if imps else None
    s["roas"] = round(float(s.get("gmv", 0) / spend), 4) if spend else None
    s["ecpm"] = (spend * 1000 / imps).quantize(Decimal("0.01")) if imps else None


def routes(console: Any) -> list[Route]:
    call = console.call

    async def read(request: Request) -> tuple[Any, dict[str, Any]] | Response:
        s = console.signed_in(request)
        if s is None:
            return console.to_login()
        who = s.user.principal()
        tz_name, currency = await console.network(who)
        tz = zoneinfo.ZoneInfo(tz_name)
        q = request.query_params
        today = dt.datetime.fromtimestamp(clock.now(), tz).date()
        group = q.get("group") or ("campaign" if s.user.role == "advertiser" else "advertiser")
        interval = q.get("interval") or "day"
        metric = q.get("metric") or "spend"
        start = _local_day(q.get("from"), tz, today - dt.timedelta(days=6))
        end = _local_day(q.get("to"), tz, today)
        errors = {}
        if group not in GROUPS:
            errors["group"] = f"one of {', '.join(GROUPS)}"
        if interval not in ("day", "hour"):
            errors["interval"] = "day or hour"
        if metric not in METRICS:
            errors["metric"] = f"one of {', '.join(METRICS)}"
        if start is None:
            errors["from"] = "a date, YYYY-MM-DD"
        if end is None:
            errors["to"] = "a date, YYYY-MM-DD"
        if start and end and not start <= end <= start + dt.timedelta(days=MAX_DAYS):
            errors["to"] = f"on or after from, and at most {MAX_DAYS} days after it"
        filters = {
            f"{g}_id": q[f"{g}_id"]
            for g in GROUPS
            if q.get(f"{g}_id", "").replace(",", "").isdigit()
        }
        form = {
            "group": group,
            "interval": interval,
            "metric": metric,
            "from": q.get("from") or str(start),
            "to": q.get("to") or str(end),
            **filters,
        }
        facts: dict[str, Any] = {
            "form": form,
            "errors": errors,
            "tz": tz_name,
            "currency": currency,
            "buckets": [],
            "totals": [],
            "series": {},
            "message": None,
        }
        if errors:
            return s, facts
        assert start is not None and end is not None
        begin = dt.datetime.combine(start, dt.time(), tz)
        finish = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tz)
        params = {
            "group_by": group,
            "interval": "hour",
            "from": begin.isoformat(),
            "to": finish.isoformat(),
            **filters,
        }
        status, got = await call(who, "GET", "/v1/reports", params)
        if status != 200:
            facts["message"] = api_message(got, status)
            return s, facts
        found, totals, series = aggregate(got["data"], group, interval, tz)
        if group == "flight" and totals:  # each flight's attribution windows beside it
            _, flights = await call(who, "GET", "/v1/flights", {"limit": 1000, "archived": "all"})
            windows = {
                f["id"]: (f["click_window_days"], f["view_window_days"])
                for f in (flights or {}).get("data", [])
            }
            for gid, t in totals.items():
                t["windows"] = windows.get(gid)
        last = min(finish, dt.datetime.fromtimestamp(clock.now(), dt.UTC))
        axis = buckets_between(begin, last, interval, tz) if totals else []
        facts.update(
            buckets=sorted(set(axis) | set(found)),
            totals=sorted(totals.values(), key=lambda t: (-t["spend"], -t["impressions"])),
            series=series,
        )
        return s, facts

    async def page(request: Request) -> Response:
        got = await read(request)
        if isinstance(got, Response):
            return got
        s, facts = got
        metric = facts["form"]["metric"]
        names = {t["id"]: t["name"] for t in facts["totals"]}
        chart = {
            "metric": metric,
            "unit": facts["currency"] if metric in ("spend", "gmv") else "",
            "x": facts["buckets"],
            "lines": [
                {
                    "name": names[gid],
                    "y": [
                        _number(by[b].get(metric)) if b in by else _zero(metric)
                        for b in facts["buckets"]
                    ],
                }
                for gid, by in facts["series"].items()
            ],
        }
        return console.view(
            request,
            s,
            "reports.html",
            400 if facts["errors"] else 200,
            groups=GROUPS,
            metrics=METRICS,
            chart=chart,
            csv_query=_query(facts["form"]),
            **facts,
        )

    async def export(request: Request) -> Response:
        got = await read(request)
        if isinstance(got, Response):
            return got
        _, facts = got
        if facts["errors"] or facts["message"]:
            return Response("the report's settings are invalid\n", 400, media_type="text/plain")
        out = io.StringIO()
        writer = csv.writer(out)
        group = facts["form"]["group"]
        writer.writerow(
            [
                facts["form"]["interval"],
                f"{group}_id",
                f"{group}_name",
                *SUMMED,
                "ctr",
                "roas",
                "currency",
                "time_zone",
            ]
        )
        names = {t["id"]: t["name"] for t in facts["totals"]}
        for gid, by in facts["series"].items():
            for bucket in facts["buckets"]:
                if bucket in by:
                    v = by[bucket]
                    writer.writerow(
                        [
                            bucket,
                            gid,
                            names[gid],
                            *(v.get(m, 0) for m in SUMMED),
                            v["ctr"],
                            v["roas"],
                            facts["currency"],
                            facts["tz"],
                        ]
                    )
        return Response(
            out.getvalue(),
            media_type="text/csv",
            headers={
                **HEADERS,
                "content-disposition": 'attachment; filename="report.csv"',
            },
        )

    async def plotly(request: Request) -> Response:
        return FileResponse(
            plotly_js(),
            media_type="text/javascript",
            headers={"cache-control": "public, max-age=86400"},
        )

    return [
        Route("/console/reports", page),
        Route("/console/reports.csv", export),
        Route("/console/assets/plotly.min.js", plotly),
    ]


def _zero(metric: str) -> float | None:
    """A bucket without delivery: nothing counted (a ratio has no value)."""
    return None if metric in ("ctr", "roas") else 0.0


def _number(v: Any) -> float | None:
    return None if v is None else float(v)


def _query(form: dict[str, Any]) -> str:
    from urllib.parse import urlencode

    return urlencode(form)
