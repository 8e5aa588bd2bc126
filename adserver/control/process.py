"""The control process: the management API over the control store, the publisher that
compiles a snapshot after every change, the catalog builder (product index), the aggregator
that counts the workers' logs and projects caps and frequency counters into the live state,
the key rotation, the model jobs (inbox, retraining) with the model registry, and the
personalization learner."""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
import time
from collections.abc import Callable

from adserver.config import Config
from adserver.control import telemetry
from adserver.control.aggregator import Aggregator
from adserver.control.api import ManagementApi
from adserver.control.caps import LiveProjector
from adserver.control.catalog import CatalogBuilder
from adserver.control.pacing import Pacer
from adserver.control.personalizer import Learner
from adserver.control.personalizer import Settings as LearnerSettings
from adserver.control.publisher import Publisher
from adserver.control.registry import Margins, Registry
from adserver.control.store import Store
from adserver.control.trainer import ModelJobs
from adserver.formats import segment, signing
from adserver.web import runtime

log = logging.getLogger("adserver.control")
AGGREGATE_EVERY_S = 0.1
FULL_CAP_CHECK_S = 30.0
MODEL_JOBS_S = 1.0  # models inbox poll; training runs when its interval is due
PRUNE_EVERY_S = 600.0  # aggregated event segments past the retention are deleted


def _every(seconds: float, job: Callable[[], object]) -> None:
    """Run `job` now and every `seconds` in a daemon thread, logging failures."""

    def loop() -> None:
        while True:
            try:
                job()
            except Exception:
                log.exception("periodic job failed")
            time.sleep(seconds)

    threading.Thread(target=loop, daemon=True).start()


class Aggregation:
    """The aggregator, the live-state projection (caps, frequency) and the pacing
    controller, in one thread: one writer each for the ledger and for live.lmdb."""

    def __init__(self, store: Store, config: Config, publisher: Publisher):
        self.aggregator = Aggregator(store, config.data_dir, config.attribution_match)
        self.live = LiveProjector(store, config.data_dir)
        self.pacer = Pacer(store, self.live.env, config.workers, config.data_dir)
        self.publisher = publisher
        self.last_full = 0.0
        self.last_prune = 0.0
        self.retention_s = config.event_retention_days * 86400
        self.version_seen: str | None = None

    def prune_events(self, now: float) -> None:
        """Delete aggregated log segments older than the retention (event_retention_days)."""
        offsets = {
            (r[0], r[1]): (r[2], r[3])
            for r in self.aggregator.store.read(
                'SELECT worker, stream, segment, "offset" FROM event_offsets'
            )
        }
        gone = segment.prune(self.aggregator.root, offsets, self.retention_s, now)
        if gone:
            log.info(
                "%d event log segments older than %.0f days deleted",
                len(gone),
                self.retention_s / 86400,
            )

    def step(self) -> int:
        batch = self.aggregator.run_once()
        now = time.time()
        if now - self.last_full > FULL_CAP_CHECK_S or self.publisher.version != self.version_seen:
            # day rollovers; flights changed through the API (a cap raised or removed)
            self.version_seen = self.publisher.version
            self.live.caps(None, now)
            self.last_full = now
        if now - self.last_prune > PRUNE_EVERY_S:
            self.last_prune = now
            self.prune_events(now)
        if self.pacer.due(now):
            with telemetry.timed(telemetry.PACING):
                self.pacer.step(now)
        if batch is None:
            return 0
        self.live.caps(batch.flights, now)
        self.live.frequency(batch.users, now)
        self.live.recent(batch.recent)
        self.live.action_counts(batch.pz_shown)
        return len(batch.stats)

    def loop(self) -> None:
        while True:
            try:
                if not self.step():
                    time.sleep(AGGREGATE_EVERY_S)
            except Exception:
                log.exception("aggregation failed; retrying")
                time.sleep(1.0)


URL_FILE = "control.url"


def publish_url(data_dir: str, url: str) -> None:
    """Where the management API listens, for the decision workers' forwarded calls
    (Personalizer administration): `<data dir>/control.url`, replaced atomically."""
    tmp = os.path.join(data_dir, URL_FILE + ".tmp")
    with open(tmp, "w") as out:
        out.write(url.replace("//0.0.0.0:", "//127.0.0.1:") + "\n")
    os.replace(tmp, os.path.join(data_dir, URL_FILE))


def run(config: Config, sock: socket.socket | None = None) -> None:
    """Serve the control plane until interrupted (on `sock` when a parent bound it)."""
    store = Store(config.data_dir)
    signing.ensure_keys(config.data_dir)
    publisher = Publisher(store, config.data_dir)
    catalog = CatalogBuilder(
        store, config.data_dir, publisher.notify, config.embed_rebuild_interval_s
    )
    publisher.on_sponsored = catalog.want
    publisher.start()
    catalog.start()
    aggregate = Aggregation(store, config, publisher)
    threading.Thread(target=aggregate.loop, name="aggregator", daemon=True).start()
    _every(
        60.0,
        lambda: signing.rotate(
            config.data_dir, config.key_rotation_hours * 3600, config.key_grace_hours * 3600
        ),
    )
    registry = Registry(
        store,
        config.data_dir,
        Margins(config.model_gate_logloss, config.model_gate_auc, config.model_gate_calibration),
    )
    _every(
        MODEL_JOBS_S,
        ModelJobs(
            registry, config.data_dir, config.train_interval_s, config.model_keep_versions
        ).step,
    )
    learner_settings = LearnerSettings(
        config.personalizer_reward_wait_s,
        config.personalizer_default_reward,
        config.personalizer_reward_aggregation,
        config.personalizer_exploration,
        config.personalizer_learning_rate,
    )
    learner = Learner(store, config.data_dir, dataclasses.replace(learner_settings))
    _every(config.personalizer_learn_interval_s, learner.step)
    api = ManagementApi(
        store,
        config.admin_key,
        config.max_body_bytes,
        publisher.notify,
        aggregate.pacer,
        catalog,
        registry,
        learner_settings,
        learner,
    )
    api.settings = config  # who may read its /metrics
    sock = sock or runtime.bind(config.api_host, config.api_port)
    limits = runtime.Limits.of(config)
    publish_url(config.data_dir, runtime.url_of(sock, limits.tls))
    try:
        runtime.serve(api.app(), sock, "management API", config.log_level, limits=limits)
    finally:
        catalog.stop()
        publisher.stop()
        store.close()
