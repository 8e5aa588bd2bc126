"""The simulated day of `adserver simulate` (adserver/tools/simulate.py): real decision workers
served in process over ASGI, shoppers that see, click and buy by the world's truth, and the
aggregator, cap projection and pacing controller stepped on an accelerated clock."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import msgspec
import numpy as np

from adserver.common import clock
from adserver.config import Config
from adserver.tools.simtruth import (
    CVR,
    DEVICE_UA,
    TRAFFIC,
    shopper_traits,
    true_ctr,
)
from adserver.tools.simworld import (
    ADMIN_KEY,
    RENDER,
    Settings,
    SimClock,
    SimFlight,
    page_views,
)

# ---- the day ----------------------------------------------------------------------------


class Asgi:
    """Calls a Starlette app in-process, the way the HTTP server would."""

    def __init__(self, app: Any):
        self.app = app

    async def call(
        self, method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        parts = urlsplit(url)
        sent: list[dict[str, Any]] = []
        chunks = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> dict[str, Any]:
            return chunks.pop() if chunks else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        given = {k.lower(): v for k, v in (headers or {}).items()}
        given.setdefault("user-agent", "Mozilla/5.0 (simulated shopper)")
        hdrs = [(b"host", b"sim")] + [(k.encode(), v.encode()) for k, v in given.items()]
        if body:
            hdrs += [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ]
        scope = {
            "type": "http",
            "http_version": "1.1",
            "method": method,
            "path": parts.path,
            "raw_path": parts.path.encode(),
            "query_string": parts.query.encode(),
            "root_path": "",
            "scheme": "http",
            "server": ("sim", 80),
            "client": ("127.0.0.1", 1),
            "headers": hdrs,
            "app": self.app,
        }
        await self.app(scope, receive, send)
        status = sent[0]["status"]
        return status, b"".join(m.get("body", b"") for m in sent[1:])


async def shopper(
    worker: Asgi,
    world: dict[str, Any],
    body: dict[str, Any],
    by_id: dict[int, SimFlight],
    rng: np.random.Generator,
    n: int,
    errors: list[str],
) -> None:
    shopper_n = int(body["user"]["key"].rsplit("-", 1)[1])
    device, _ = shopper_traits(shopper_n)
    status, raw = await worker.call(
        "POST", "/api/v2", msgspec.json.encode(body), {"user-agent": DEVICE_UA[device]}
    )
    if status != 200:
        errors.append(f"decision {status}: {raw[:200]!r}")
        return
    decisions = msgspec.json.decode(raw)["decisions"]
    for div in decisions.values():
        for d in div if isinstance(div, list) else [div] if div else []:
            if rng.random() >= RENDER:
                continue
            status, _ = await worker.call("GET", d["impressionUrl"])
            if status != 200:
                errors.append(f"impression {status}")
                continue
            f = by_id[d["flightId"]]
            hour = int((clock.now() % 86400) // 3600)
            if rng.random() < true_ctr(f, shopper_n, hour):
                status, _ = await worker.call("GET", d["clickUrl"])
                if status not in (302, 204):
                    errors.append(f"click {status}")
                if rng.random() < CVR:
                    order = {
                        "order_id": f"o-{n}-{d['adId']}",
                        "user_key": body["user"]["key"],
                        "network_id": world["network"],
                        "items": [{"product_id": f"sku-{f.id:05d}", "unit_price": "24.90"}],
                    }
                    status, _ = await worker.call(
                        "POST",
                        "/v1/conversions",
                        msgspec.json.encode(order),
                        {"x-api-key": ADMIN_KEY},
                    )
                    if status != 202:
                        errors.append(f"conversion {status}")


async def run_day(
    data_dir: str, world: dict[str, Any], s: Settings, day0: float, rng: np.random.Generator
) -> dict[str, Any]:
    from adserver.control.aggregator import Aggregator
    from adserver.control.caps import LiveProjector
    from adserver.control.compiler import compile_snapshot
    from adserver.control.pacing import Pacer
    from adserver.control.store import Store
    from adserver.formats.signing import ensure_keys
    from adserver.serving import app as app_mod
    from adserver.serving.worker import Worker

    ensure_keys(data_dir, day0 - 86400)
    sim = SimClock(day0)
    clock.use(sim.now)
    store = Store(data_dir)
    compile_snapshot(store, data_dir)
    config = Config(
        data_dir=data_dir, admin_key=ADMIN_KEY, public_url="http://sim", workers=s.workers
    )
    aggregator = Aggregator(store, data_dir)
    live = LiveProjector(store, data_dir)
    pacer = Pacer(store, live.env, s.workers, interval=s.interval)
    by_id = {f.id: f for f in world["flights"]}
    workers = [Worker(config, f"sim{w}") for w in range(s.workers)]
    apps = [app_mod.build(config, w) for w in workers]
    errors: list[str] = []
    stats: dict[str, Any] = {"page_views": 0, "steps": 0, "wall_s": 0.0}
    started = time.monotonic()
    for w in workers:
        w.live = live.env  # one process: the workers read live.lmdb through the writer's handle
    lifespans = contextlib.AsyncExitStack()
    try:
        for a in apps:
            await lifespans.enter_async_context(a.app.router.lifespan_context(a.app))
        clients = [Asgi(a) for a in apps]
        per_day = int(86400 / s.interval)
        steps = per_day * s.days
        n = 0
        start = day0  # of the day being simulated
        for step in range(steps):
            t0 = day0 + step * s.interval
            sim.t = t0
            if step and step % per_day == 0:  # another day: only the last one is reported
                start, n = day0 + (step // per_day) * 86400.0, 0
                for f in world["flights"]:
                    f.throttles, f.exhausted_at = [], None
            # the control plane: count what the logs hold, project caps, pace
            for w in workers:
                if w.records is not None:
                    w.records.flush()
            while aggregator.run_once() is not None:
                pass
            live.caps(None, t0)
            status = pacer.step(t0)
            for w in workers:
                w._read_live()
            for fid, st in status.items():
                f = by_id[fid]
                f.throttles.append(st.throttle)
                # out of budget: paused at the cap, or less than one more decision left
                one = f.bid / 1000 if f.rate == "cpm" else f.bid
                if f.exhausted_at is None and (fid in live.paused or st.actual >= f.budget - one):
                    f.exhausted_at = (t0 - start) / 3600
            # the shoppers of this interval, in small concurrent batches
            hour = int((t0 - start) // 3600)
            want = rng.poisson(s.requests * TRAFFIC[hour] * s.interval / 3600)
            views = page_views(world, rng, int(want))
            for b in range(0, len(views), 64):
                batch = views[b : b + 64]
                sim.t = t0 + s.interval * b / max(1, len(views))
                await asyncio.gather(
                    *(
                        shopper(
                            clients[int(rng.integers(0, len(clients)))],
                            world,
                            body,
                            by_id,
                            rng,
                            n + j,
                            errors,
                        )
                        for j, body in enumerate(batch)
                    )
                )
                n += len(batch)
            stats["steps"] += 1
            if s.progress and step % max(1, per_day // 24) == 0:
                print(
                    f"simulate: day {step // per_day + 1} {hour:02d}:00  {n:,} page views"
                    f"  {time.monotonic() - started:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
        sim.t = start + 86400 - 1
        for w in workers:
            if w.records is not None:
                w.records.flush()
        while aggregator.run_once() is not None:
            pass
        final = pacer.step(start + 86400 - 1)
        stats["page_views"] = n
    finally:
        await lifespans.aclose()
        clock.use(None)
    stats["wall_s"] = round(time.monotonic() - started, 1)
    stats["errors"] = errors[:20]
    stats["error_count"] = len(errors)
    stats["plans"] = {fid: st.hourly_plan for fid, st in final.items()}
    stats["day_plans"] = {fid: st.day_hourly_plan for fid, st in final.items()}
    spent = _hourly_spend(store, start)
    stats["over_cap"] = {
        fid: float(v.sum()) for fid, v in _hourly_spend(store, start, "over_cap_nanos").items()
    }
    store.close()
    stats["spent"] = spent
    return stats


def _hourly_spend(store: Any, day0: float, column: str = "spend_nanos") -> dict[int, np.ndarray]:
    first = dt.datetime.fromtimestamp(day0, dt.UTC)
    out: dict[int, np.ndarray] = {}
    for hour, fid, nanos in store.read(
        f"SELECT hour, flight_id, SUM({column}) FROM stats_hourly WHERE flight_id != 0"
        " AND hour >= ? AND hour < ? GROUP BY hour, flight_id",
        (first.strftime("%Y-%m-%dT%H"), (first + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H")),
    ):
        h = int(
            (
                dt.datetime.strptime(hour, "%Y-%m-%dT%H").replace(tzinfo=dt.UTC) - first
            ).total_seconds()
            // 3600
        )
        out.setdefault(fid, np.zeros(24))[h] += nanos / 1e9
    return out
