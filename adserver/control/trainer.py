"""Model jobs of the control process: import what ops drop into the models inbox, and
retrain the CTR and CVR models from the logs every `train_interval_s` (0: never), each new
version submitted to the registry's gate (adserver/control/registry.py).

Inbox: `models/inbox/<ctr|cvr>/<any name>/` holding `manifest.json`, `features.json` and
`weights.npy` (the layout `adserver train` writes). Move a complete directory in (a rename);
one whose files changed in the last 2 s is left for the next pass. A directory whose files
do not verify gets REJECTED.txt with the reason and stays; one that verifies is copied in as
a new version, removed from the inbox and submitted (the registry row tells whether the gate
let it activate).
"""

from __future__ import annotations

import logging
import os
import shutil
import time

from adserver.control import telemetry
from adserver.control.auth import Principal
from adserver.control.registry import Refused, Registry
from adserver.learn import ctr
from adserver.training import ctr_train

log = logging.getLogger("adserver.models")
CONTROL = Principal("control", "admin")
SETTLE_S = 2.0
NEW_EXAMPLES = 100  # impressions since the last training before another one is worth it
NEW_SHARE = 0.1  # ... and at least this share more than the last one had
STALE_INTERVALS = 2  # ... or any new ones after this many training intervals


class ModelJobs:
    """The control process's model jobs: takes models dropped into the inbox, trains CTR and
    CVR when enough new examples arrived, and prunes old versions."""

    def __init__(
        self, registry: Registry, data_dir: str, train_interval_s: float, keep_versions: int = 5
    ):
        self.registry, self.data_dir = registry, data_dir
        self.interval = train_interval_s
        self.keep = keep_versions
        self.last_train = time.time()  # the first training waits one interval
        self.trained_on: dict[str, int] = {}  # model -> impressions counted last time
        self.trained_at: dict[str, float] = {}  # model -> when it was last trained

    def step(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        made = self.take_inbox(now)
        if self.interval > 0 and now - self.last_train >= self.interval:
            self.last_train = now
            for name in ctr.NAMES:
                version = self.train(name)
                if version is not None:
                    made.append(version)
        if made:
            self.registry.prune(self.keep)

    def examples(self) -> int:
        """Impressions the ledger has counted: what the CTR and CVR models learn from."""
        return int(
            self.registry.store.read("SELECT COALESCE(SUM(impressions), 0) FROM stats_hourly")[0][0]
        )

    def take_inbox(self, now: float) -> list[str]:
        """Import every settled directory in the inbox; returns the versions made."""
        made = []
        for name in ctr.NAMES:
            inbox = ctr.inbox_root(self.data_dir, name)
            if not os.path.isdir(inbox):
                continue
            for entry in sorted(os.listdir(inbox)):
                src = os.path.join(inbox, entry)
                # links are never followed: not an entry that is one (it could point
                # anywhere), nor files in an entry (read from outside the data dir)
                if (
                    entry.startswith(".")
                    or os.path.islink(src)
                    or not os.path.isdir(src)
                    or os.path.lexists(os.path.join(src, "REJECTED.txt"))
                ):
                    continue
                names = os.listdir(src)
                newest = max((os.lstat(os.path.join(src, f)).st_mtime for f in names), default=0.0)
                if now - max(newest, os.lstat(src).st_mtime) < SETTLE_S:
                    continue
                try:
                    links = [f for f in names if os.path.islink(os.path.join(src, f))]
                    if links:
                        raise Refused(f"{', '.join(sorted(links))}: links are not followed")
                    row = self.registry.import_dir(name, src, "inbox", CONTROL, label=entry)
                except Refused as e:
                    _reject(src, str(e))
                    log.error("%s model %s refused: %s", name, entry, e)
                    continue
                shutil.rmtree(src, ignore_errors=True)
                made.append(row["version"])
                log.info(
                    "%s model %s imported as %s: %s (%s)",
                    name,
                    entry,
                    row["version"],
                    row["status"],
                    row["reason"],
                )
        return made

    def due(self, name: str, examples: int, now: float | None = None) -> bool:
        """Whether `examples` (impressions counted) hold enough new ones since `name` was
        last trained: NEW_EXAMPLES, and NEW_SHARE more than then; or any new ones once
        STALE_INTERVALS training intervals have passed (so the last of a burst of traffic
        is learned too). Never without new examples: retraining on the same data makes the
        same model."""
        last = self.trained_on.get(name)
        if last is None:
            return True
        new = examples - last
        if new >= max(NEW_EXAMPLES, NEW_SHARE * last):
            return True
        now = time.time() if now is None else now
        stale = now - self.trained_at.get(name, now) >= STALE_INTERVALS * self.interval
        return new > 0 and stale

    def train(self, name: str) -> str | None:
        """Train `name` from the logs when enough new examples arrived since last time
        (NEW_EXAMPLES, and a NEW_SHARE more than then); submit the version."""
        size = self.examples()
        if not self.due(name, size):
            return None
        try:
            with telemetry.timed(telemetry.TRAINING.labels(name)):
                version, _ = ctr_train.train(
                    self.data_dir, ctr_train.Settings(name=name, created_by="control trainer")
                )
        except ctr_train.NotEnoughData as e:
            log.info("%s model not trained: %s", name, e)
            return None
        self.trained_on[name] = size
        self.trained_at[name] = time.time()
        row = self.registry.submit(name, version, "trainer", CONTROL)
        log.info("%s model %s trained: %s (%s)", name, version, row["status"], row["reason"])
        return version


def _reject(src: str, reason: str) -> None:
    """Write REJECTED.txt into the (real) entry directory `src`, never through a link."""
    fd = os.open(
        os.path.join(src, "REJECTED.txt"),
        os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
        0o644,
    )
    with os.fdopen(fd, "w") as out:
        out.write(f"{reason}\n")
