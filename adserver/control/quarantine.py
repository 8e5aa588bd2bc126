"""Quarantine: what the aggregator cannot count and what the pacer cannot pace is kept here,
whole, and skipped, so that one bad record or flight never stops anyone else's ledger or
pacing. Operators see it at `GET /v1/quarantine` (scoped like every read) and in the
control process's `adserver_quarantined_total` metric."""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adserver.common.validation import FieldError, Invalid
from adserver.control.auth import Principal
from adserver.control.responses import ApiError, error_response, int_param, json_response
from adserver.control.store import Store, now

log = logging.getLogger("adserver.quarantine")


class Poison(Exception):
    """A record or flight that will not be processed: out of range or malformed."""


# Errors that say "this record" (or "this flight"), not "this machine": the aggregator
# replays a pass failing with one of them record by record to find and quarantine the
# record; the pacer quarantines the flight. Anything else (a locked database, a full disk)
# is retried as it is.
DATA_ERRORS = (
    Poison,
    KeyError,
    TypeError,
    ValueError,
    OverflowError,
    IndexError,
    AttributeError,
    ArithmeticError,
    sqlite3.IntegrityError,
    msgspec.MsgspecError,
)
COLUMNS = ("id", "key", "at", "source", "network_id", "reason", "record")


def add(db: Any, key: str, source: str, network_id: int | None, reason: str, record: str) -> bool:
    """Keep one item (once per key) in the open transaction `db`; True when it is new."""
    new = db.execute(
        "INSERT OR IGNORE INTO quarantine (key, at, source, network_id, reason,"
        " record) VALUES (?, ?, ?, ?, ?, ?)",
        (key, now(), source, network_id, reason[:1000], record),
    ).rowcount
    if new:
        log.error("quarantined %s (%s): %s", key, source, reason)
    return bool(new)


def flight(store: Store, flight_id: int, network_id: int | None, error: Exception) -> None:
    """A flight the pacer could not process (it is held back until it is fixed: the key
    names its id and last update, so a corrected flight is paced again)."""
    row = store.read("SELECT * FROM flights WHERE id = ?", (flight_id,))
    record = json.dumps(dict(row[0]), default=repr) if row else "{}"
    updated = row[0]["updated_at"] if row else ""
    with store.transaction() as db:
        add(
            db,
            f"flight:{flight_id}@{updated}",
            "pacing",
            network_id,
            f"{type(error).__name__}: {error}",
            record,
        )


def listing(store: Store, network_id: int | None, limit: int, after: int) -> list[dict]:
    """Newest last, after id `after`; only `network_id`'s when given."""
    where, args = ["id > ?"], [after]
    if network_id is not None:
        where.append("network_id = ?")
        args.append(network_id)
    rows = store.read(
        f"SELECT {', '.join(COLUMNS)} FROM quarantine WHERE {' AND '.join(where)}"
        " ORDER BY id LIMIT ?",
        (*args, limit),
    )
    return [dict(zip(COLUMNS, r)) for r in rows]


def exposition(store: Store) -> str:
    """`adserver_quarantined_total{source}` in Prometheus' text format, to alert on."""
    counts: dict[str, int] = {
        r[0]: r[1] for r in store.read("SELECT source, COUNT(*) FROM quarantine GROUP BY source")
    }
    lines = [
        "# HELP adserver_quarantined_total Records the aggregator could not count and"
        " flights the pacer could not pace (kept, skipped; GET /v1/quarantine)",
        "# TYPE adserver_quarantined_total counter",
    ]
    lines += [
        f'adserver_quarantined_total{{source="{source}"}} {counts.get(source, 0)}'
        for source in ("events", "decisions", "pacing")
    ]
    return "\n".join(lines) + "\n"


def routes(api: Any) -> list[Route]:
    """`GET /v1/quarantine` (admin and read-only keys of a network: its own rows), the
    control port's `GET /metrics` (readable like the decision port's; control/telemetry.py)
    and `GET /readyz`."""
    from adserver.control import telemetry
    from adserver.control.repo import MAX_LIMIT, Forbidden

    async def listed(request: Request, who: Principal) -> Response:
        if who.role == "advertiser" or who.advertiser_id is not None:
            raise Forbidden("the quarantine is for admin and read-only keys of a network")
        q = request.query_params
        errors: list[FieldError] = []
        limit = int_param(q.get("limit", "100"), "limit", 1, MAX_LIMIT, errors)
        after = int_param(q.get("after_id", "0"), "after_id", 0, 2**62, errors)
        if errors:
            raise Invalid(errors)
        return json_response(
            {"data": await run_in_threadpool(listing, api.store, who.network_id, limit, after)}
        )

    async def metrics(request: Request) -> Response:
        if api.settings is not None and not api.settings.may_read_metrics(
            request.client.host if request.client else "", request.headers.get("authorization", "")
        ):
            return error_response(
                ApiError(
                    403,
                    "forbidden",
                    "metrics are for the allowed networks (ADSERVER_METRICS_ALLOW) or the key",
                )
            )
        text = await run_in_threadpool(exposition, api.store)
        return Response(
            telemetry.exposition(text), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    async def readyz(request: Request) -> Response:
        data_dir = api.settings.data_dir if api.settings is not None else None
        if data_dir is None:
            return json_response({"status": "not_ready", "reason": "no data directory"}, 503)
        ready, body = await run_in_threadpool(telemetry.readiness, api.store, data_dir)
        return json_response(body, 200 if ready else 503)

    return [
        Route("/v1/quarantine", api.handler(listed), methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
