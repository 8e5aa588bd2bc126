"""`GET /v1/reports`: delivery, spend and outcomes grouped any way, by hour or day.

Query: `group_by` (comma list of network, site, zone, advertiser, campaign, flight, ad,
creative), `interval` (hour, day or none; UTC buckets), `from` and `to` (RFC 3339 or a date;
default the last 7 days of the project clock), `format` (json or csv), and filters
`<dimension>_id` (a comma list of ids: `flight_id=3,4`). Rows are scoped by the key: an
advertiser key sees its own advertiser's rows only, whatever the filters say. Money is exact
(from nano-units).

Each grouped dimension comes with its name beside its id (`flight_id`, `flight_name`). Id 0
is not an entity: requests no ad filled (`flight_id: 0`, named "(unfilled)"), or requests that
named no site or zone ("(none)").
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from typing import Any

from adserver.common import clock
from adserver.common.validation import EARLIEST, LATEST, FieldError, Invalid, ascii_int
from adserver.control.auth import Principal
from adserver.control.store import Store

DIMENSIONS = ("network", "site", "zone", "advertiser", "campaign", "flight", "ad", "creative")
SUMS = (
    "requests",
    "filled",
    "impressions",
    "viewable",
    "clicks",
    "conversions",
    "invalid_impressions",
    "invalid_clicks",
    "spend_nanos",
    "gmv_micros",
    "over_cap_nanos",
)
NANO, MICRO = Decimal(10**9), Decimal(10**6)
CENTS = Decimal("0.000001")


def _time(raw: str, name: str, errors: list[FieldError]) -> dt.datetime | None:
    try:
        t = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        errors.append(FieldError(name, "must be an RFC 3339 time or a date"))
        return None
    if not EARLIEST.year <= t.year <= LATEST.year:  # year 1 in +01:00 overflows in UTC
        errors.append(FieldError(name, f"must lie between {EARLIEST.year} and {LATEST.year}"))
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def parse(q: Any) -> dict[str, Any]:
    errors: list[FieldError] = []
    group = [g for g in q.get("group_by", "").split(",") if g]
    for g in group:
        if g not in DIMENSIONS:
            errors.append(FieldError("group_by", f"unknown dimension {g!r}"))
    interval = q.get("interval", "day")
    if interval not in ("hour", "day", "none"):
        errors.append(FieldError("interval", "must be hour, day or none"))
    now = dt.datetime.fromtimestamp(clock.now(), dt.UTC)
    start = _time(q["from"], "from", errors) if "from" in q else now - dt.timedelta(days=7)
    end = _time(q["to"], "to", errors) if "to" in q else now + dt.timedelta(hours=1)
    fmt = q.get("format", "json")
    if fmt not in ("json", "csv"):
        errors.append(FieldError("format", "must be json or csv"))
    filters: dict[str, list[int]] = {}
    for d in DIMENSIONS:
        raw = q.get(f"{d}_id")
        if raw is None:
            continue
        ids = [ascii_int(x.strip()) for x in raw.split(",")]
        if not ids or any(i is None or not 0 <= i < 2**63 for i in ids) or len(ids) > 1000:
            errors.append(FieldError(f"{d}_id", "must be a comma list of up to 1,000 ids"))
        else:
            filters[f"{d}_id"] = ids  # type: ignore[assignment]
    unknown = (
        set(q) - {"group_by", "interval", "from", "to", "format"} - {f"{d}_id" for d in DIMENSIONS}
    )
    errors += [FieldError(k, "not a report parameter") for k in sorted(unknown)]
    if start and end and end <= start:
        errors.append(FieldError("to", "must be after from"))
    if errors:
        raise Invalid(errors)
    return {
        "group": group,
        "interval": interval,
        "from": start,
        "to": end,
        "format": fmt,
        "filters": filters,
    }


def run(store: Store, who: Principal, params: dict[str, Any]) -> list[dict[str, Any]]:
    cols = [f"{g}_id" for g in params["group"]]
    bucket = {"hour": "hour", "day": "substr(hour, 1, 10)", "none": "''"}[params["interval"]]
    where = ["hour >= ?", "hour < ?"]
    args: list[Any] = [
        params["from"].astimezone(dt.UTC).strftime("%Y-%m-%dT%H"),
        params["to"].astimezone(dt.UTC).strftime("%Y-%m-%dT%H"),
    ]
    if who.advertiser_id is not None:
        where.append("advertiser_id = ?")
        args.append(who.advertiser_id)
    elif who.network_id is not None:
        where.append("network_id = ?")
        args.append(who.network_id)
    for column, ids in params.get("filters", {}).items():  # within the key's scope
        where.append(f"{column} IN ({', '.join('?' * len(ids))})")
        args.extend(ids)
    select = ", ".join([f"{bucket} AS period", *cols, *(f"SUM({s})" for s in SUMS)])
    group = ", ".join(["period", *cols])
    rows = store.read(
        f"SELECT {select} FROM stats_hourly WHERE {' AND '.join(where)}"
        f" GROUP BY {group} ORDER BY {group}",
        args,
    )
    names = {g: _names(store, g, {r[1 + i] for r in rows}) for i, g in enumerate(params["group"])}
    out = []
    for r in rows:
        values = dict(zip(SUMS, r[1 + len(cols) :]))
        spend = Decimal(values["spend_nanos"]) / NANO
        gmv = Decimal(values["gmv_micros"]) / MICRO
        imps, clicks = values["impressions"], values["clicks"]
        row: dict[str, Any] = {}
        if params["interval"] != "none":
            row[params["interval"]] = r[0]
        for i, g in enumerate(params["group"]):
            row[f"{g}_id"] = r[1 + i]
            row[f"{g}_name"] = names[g].get(r[1 + i])
        row.update(
            impressions=imps,
            viewable_impressions=values["viewable"],
            clicks=clicks,
            ctr=round(clicks / imps, 6) if imps else None,
            conversions=values["conversions"],
            spend=spend.quantize(CENTS),
            gmv=gmv.quantize(CENTS),
            roas=round(float(gmv / spend), 4) if spend else None,
            ecpm=(spend * 1000 / imps).quantize(CENTS) if imps else None,
            ecpc=(spend / clicks).quantize(CENTS) if clicks else None,
            requests=values["requests"],
            fill_rate=round(values["filled"] / values["requests"], 6)
            if values["requests"]
            else None,
            invalid_impressions=values["invalid_impressions"],
            invalid_clicks=values["invalid_clicks"],
            delivered_over_cap=(Decimal(values["over_cap_nanos"]) / NANO).quantize(CENTS),
        )
        out.append(row)
    return out


TABLES = {
    "network": "networks",
    "site": "sites",
    "zone": "zones",
    "advertiser": "advertisers",
    "campaign": "campaigns",
    "flight": "flights",
    "creative": "creatives",
}
NO_ENTITY = {"site": "(none)", "zone": "(none)"}  # else "(unfilled)": no ad filled them


def _names(store: Store, dimension: str, ids: set[int]) -> dict[int, str | None]:
    """Names of a dimension's ids (an ad's is its creative's), and the label of id 0."""
    found: dict[int, str | None] = {0: NO_ENTITY.get(dimension, "(unfilled)")}
    wanted = sorted(i for i in ids if i)
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        sql = (
            f"SELECT a.id, c.name FROM ads a JOIN creatives c ON c.id = a.creative_id"
            f" WHERE a.id IN ({marks})"
            if dimension == "ad"
            else f"SELECT id, name FROM {TABLES[dimension]} WHERE id IN ({marks})"
        )
        found.update((int(r[0]), r[1]) for r in store.read(sql, chunk))
    return found


def to_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows({k: "" if v is None else v for k, v in r.items()} for r in rows)
    return buf.getvalue()
