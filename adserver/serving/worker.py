"""A decision worker's state: the bundle it decides with (pipeline.Bundle: the snapshot
with its bound kernels, the models, the signer, the settings), and the watcher that swaps in
new parts.

The worker opens everything after fork, loads the version CURRENT names beside the one it
serves, warms it (kernels, a decision through the whole pipeline), then swaps one reference;
a new model version or new signing keys are swapped in the same way. Requests in flight keep
the bundle they started with.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from typing import Any

import numpy as np

from adserver.common import apikeys
from adserver.config import Config
from adserver.config import relevance as config_relevance
from adserver.formats import livestate
from adserver.formats.segment import SegmentWriter
from adserver.formats.signing import Signer, key_path, read_keys
from adserver.kernels import bandit as bandit_kernels
from adserver.learn import bandit, ctr
from adserver.learn.features import device_of
from adserver.serving import metrics, pipeline
from adserver.serving.bound import BoundSnapshot
from adserver.serving.eventlog import GroupCommit
from adserver.serving.live import LiveView
from adserver.serving.stages.score import NO_MODELS, Models, prepare
from adserver.snapshot.loader import SnapshotError
from adserver.snapshot.writer import current_version
from adserver.web.ratelimit import LIMITER
from adserver.wire import kevel

log = logging.getLogger("adserver.worker")
POLL_S = 0.1
RECORD_FLUSH_S = 0.05


class Worker:
    """One decision worker's state: the snapshot, models, signer and live view it serves with,
    swapped whole when a new version is published."""

    def __init__(self, config: Config, worker_id: str):
        self.config = config
        self.worker_id = worker_id
        self.snapshot: BoundSnapshot | None = None
        self.signer: Signer | None = None
        self.rng = np.random.default_rng()
        self.settings = pipeline.Settings(config.max_candidates, config_relevance(config))
        # what decisions read (pipeline.Bundle), rebuilt whenever one of its parts changes
        self.bundle: pipeline.Bundle | None = None
        self.records: SegmentWriter | None = None
        self.events: GroupCommit | None = None
        self.keys_mtime = 0.0
        self.live: Any = None  # live.lmdb, opened after fork
        digits = "".join(ch for ch in worker_id if ch.isdigit())
        # paused flights, throttles, allowances (live.lmdb); w0, w1, ... number the workers
        self.view = LiveView(int(digits) if digits else 0)
        self.ready = False
        self.tasks: list[asyncio.Task] = []
        # CTR/CVR models (stages/score.py): swapped as one reference like the snapshot;
        # (name, pointer) -> the version last tried (a refused one is not retried)
        self.models: Models = NO_MODELS
        self.model_pointers: dict[tuple[str, str], str | None] = {}
        self._devices: dict[str, int] = {}
        self.policy = bandit.Policy()  # personalization (serving/personalize.py)
        self.policy_refused: str | None = None

    def caller(self, request: Any, header: str | None = None) -> apikeys.Caller | None:
        """Who a request's API key stands for (the key in `header`, else X-Api-Key,
        X-Adzerk-ApiKey or a bearer token), per the snapshot's key table; None when it
        presents none or a key that is not live, which counts towards its address's
        bad-key back-off (adserver/web/ratelimit.py)."""
        presented = (
            request.headers.get(header) if header else apikeys.presented_key(request.headers)
        )
        snap = self.snapshot
        caller = apikeys.identify(
            presented, self.config.admin_key, snap.keys if snap is not None else {}
        )
        if caller is None and presented:
            LIMITER.failed(request.client.host if request.client else None)
        return caller

    def facts(
        self, snap: BoundSnapshot, now: float, base_url: str, explain: Any, ua: str
    ) -> pipeline.Facts:
        """A request's facts that are not in its body: the clock, where tracking URLs point,
        who may read an explain, the device class of its user agent, and the pauses,
        throttles and allowances of the live view for the snapshot it is decided with."""
        view = self.view
        return pipeline.Facts(
            now,
            base_url,
            explain,
            self.device(ua),
            view.paused_for(snap),
            view.throttle_for(snap),
            view if view.left else None,
        )

    def _rebundle(self) -> None:
        """Swap in the bundle of what is loaded now (a snapshot, the models, the signer, the
        live view's LMDB): one reference, read once by each decision."""
        snap, signer = self.snapshot, self.signer
        self.bundle = (
            None
            if snap is None or signer is None
            else pipeline.Bundle(snap, self.models, signer, self.settings, self.rng, self.live)
        )

    def device(self, ua: str) -> int:
        """The device class of a request's User-Agent header (cached per distinct one)."""
        found = self._devices.get(ua)
        if found is None:
            if len(self._devices) > 4096:
                self._devices.clear()
            found = self._devices[ua] = device_of(ua)
        return found

    async def start(self) -> None:
        await asyncio.to_thread(bandit_kernels.warm)
        logdir = os.path.join(self.config.data_dir, "events", self.worker_id)
        self.records = SegmentWriter(logdir, "decisions")
        self.events = GroupCommit(SegmentWriter(logdir, "events"))
        self.events.start()
        try:  # serve nothing before the published snapshot is loaded (when there is one)
            await self._maybe_swap()
            await self._maybe_swap_models()
        except Exception:
            log.exception("could not load the published snapshot; will retry")
        # what is loaded by now (modules, compiled kernels, the first snapshot) lives about as
        # long as the process: keep it out of the cycle collector's full passes, each of which
        # otherwise stalls serving for 70-110 ms here (most of it Numba's own objects). A
        # snapshot swapped out later is freed by reference counting (it holds no cycles;
        # tests/snapshot/test_snapshot.py), frozen or not.
        gc.collect()
        gc.freeze()
        self.tasks = [asyncio.create_task(self._watch()), asyncio.create_task(self._flush())]

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        metrics.TALLY.flush()
        if self.records is not None:
            self.records.close()
        if self.events is not None:
            await self.events.stop()

    def _read_live(self) -> None:
        """Pauses, pacing throttles and hard-cap allowances from the control process."""
        if self.live is None:
            self.live = livestate.open_reader(self.config.data_dir)
            if self.live is None:
                return
            self._rebundle()
        self.view.refresh(self.live, self.snapshot)

    async def _watch(self) -> None:
        while True:
            try:
                await self._maybe_swap()
                self._read_live()
            except Exception:  # keep serving the old version; say why
                metrics.swap_failures.inc()
                log.exception("snapshot swap failed")
            try:
                await self._maybe_swap_models()
            except Exception:
                log.exception("model swap failed")
            await asyncio.sleep(POLL_S)

    async def _maybe_swap(self) -> None:
        try:  # the control process rotates the signing keys: re-read them when they change
            mtime = os.stat(key_path(self.config.data_dir)).st_mtime
        except FileNotFoundError:
            return
        if mtime != self.keys_mtime:
            self.signer = Signer(
                read_keys(self.config.data_dir), self.config.token_ttl_hours * 3600
            )
            self.keys_mtime = mtime
            self._rebundle()
        version = current_version(self.config.data_dir)
        if version is None or (self.snapshot is not None and version == self.snapshot.version):
            return
        try:
            snap = await asyncio.to_thread(self._load_and_warm, version)
        except SnapshotError:
            if current_version(self.config.data_dir) == version:
                raise
            return  # superseded while loading: the next poll takes the newer one
        previous = self.snapshot.version if self.snapshot is not None else None
        self.snapshot = snap
        self._rebundle()
        self._read_live()
        self.ready = True
        log.info("worker %s now serves snapshot %s (was %s)", self.worker_id, version, previous)
        metrics.swaps.inc()
        metrics.snapshot_version.set(int(version))

    async def _maybe_swap_models(self) -> None:
        """Load the personalization policy and the CTR/CVR versions the pointers name
        (active and shadow), verify and warm them beside the ones serving, then swap one
        reference. A version that fails verification is refused (the old one keeps serving)
        and not retried until the pointer names another."""
        policy = bandit.current(self.config.data_dir)
        if policy is not None and policy != self.policy.version and policy != self.policy_refused:
            try:
                self.policy = await asyncio.to_thread(bandit.load, self.config.data_dir, policy)
            except bandit.PolicyError as e:
                self.policy_refused = policy
                log.error("personalization policy %s refused: %s", policy, e)
        wanted = {
            (name, which): ctr.pointer(self.config.data_dir, name, which)
            for name in ctr.NAMES
            for which in (ctr.ACTIVE, ctr.SHADOW)
        }
        if wanted == self.model_pointers:
            return
        current = {
            ("ctr", ctr.ACTIVE): self.models.ctr,
            ("cvr", ctr.ACTIVE): self.models.cvr,
            ("ctr", ctr.SHADOW): self.models.shadow_ctr,
            ("cvr", ctr.SHADOW): self.models.shadow_cvr,
        }
        chosen = dict(current)
        for slot, version in wanted.items():
            if self.model_pointers.get(slot, "?") == version:
                continue
            if version is None:
                chosen[slot] = None
                continue
            old = current[slot]
            if old is not None and old.version == version:
                continue
            try:
                chosen[slot] = await asyncio.to_thread(self._load_model, slot[0], version)
            except ctr.ModelError as e:
                metrics.model_failures.labels(slot[0]).inc()
                log.error(
                    "model %s %s refused, keeping %s: %s",
                    slot[0],
                    version,
                    old.version if old is not None else "the priors",
                    e,
                )
        self.model_pointers = wanted
        self.models = Models(
            chosen[("ctr", ctr.ACTIVE)],
            chosen[("cvr", ctr.ACTIVE)],
            chosen[("ctr", ctr.SHADOW)],
            chosen[("cvr", ctr.SHADOW)],
        )
        self._rebundle()
        for (name, which), m in chosen.items():
            metrics.model_version.labels(name, "active" if which == ctr.ACTIVE else "shadow").set(
                int(m.version) if m is not None else 0
            )

    def _load_model(self, name: str, version: str) -> ctr.Model:
        model = ctr.load(self.config.data_dir, name, version)
        snap = self.snapshot
        model.warm(snap.version, snap.ad_features) if snap is not None else model.warm()
        return model

    def _load_and_warm(self, version: str) -> BoundSnapshot:
        snap = BoundSnapshot(self.config.data_dir, version)
        assert self.signer is not None
        req = kevel.DecisionRequest(
            placements=[
                kevel.Placement(
                    network_id=next(iter(snap.networks), 1),
                    site_id=next(iter(snap.sites), 1),
                    ad_types=[1],
                    count=2,
                )
            ],
            keywords=["warm up"],
            include_pricing_data=True,
        )
        b = pipeline.Bundle(snap, self.models, self.signer, self.settings, self.rng)
        ctx = pipeline.Facts(time.time(), "http://warm", True)
        pipeline.decide(b, req, ctx)
        prepare(snap, self.models)  # the models' per-ad sums for this snapshot
        if snap.embedder is not None and snap.products is not None:  # compile the kernels
            req.search_term = "warm up"
            req.placements[0].ad_types = sorted(snap.sponsored_ad_types)[:1] or [1]  # type: ignore[index]
            pipeline.decide(b, req, ctx)
        return snap

    async def _flush(self) -> None:
        while True:
            await asyncio.sleep(RECORD_FLUSH_S)
            if self.records is not None:
                data = self.records.take()
                if data:  # in a thread: a write held up by the kernel's writeback of dirty
                    try:  # pages must not stall serving (it did, after heavy load)
                        await asyncio.to_thread(self.records.write, data, False)
                    except OSError:
                        log.exception("decision records could not be written")
            metrics.TALLY.flush()
