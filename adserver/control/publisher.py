"""Recompile and publish a snapshot soon after the control store changes.

Changes are debounced: the first change starts a short quiet period, further changes within it
are folded into the same compile, and no change waits longer than MAX_DELAY_S. The thread is
the only writer of the snapshots directory.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from adserver.control import telemetry
from adserver.control.compiler import compile_snapshot
from adserver.control.store import Store

log = logging.getLogger("adserver.publisher")
QUIET_S = 0.15
MAX_DELAY_S = 0.5
KEYS_POLL_S = 0.5  # a key revoked from the command line reaches the workers within ~1.5 s


class Publisher:
    """The snapshots' one writer: compiles and publishes a new version soon after the store
    changes (debounced), and when API keys change outside this process."""

    def __init__(
        self,
        store: Store,
        data_dir: str,
        on_sponsored: Callable[[dict[int, set[str]]], None] | None = None,
    ):
        self.store, self.data_dir = store, data_dir
        self.on_sponsored = on_sponsored  # the catalog builder learns the sponsored products
        self.changed = threading.Event()
        self.stopping = False
        self.version: str | None = None
        self.thread = threading.Thread(target=self._loop, name="publisher", daemon=True)

    def start(self) -> None:
        self.version = compile_snapshot(self.store, self.data_dir, on_sponsored=self.on_sponsored)
        self.thread.start()

    def notify(self) -> None:
        self.changed.set()

    def stop(self) -> None:
        self.stopping = True
        self.changed.set()
        self.thread.join(10)

    def keys_version(self) -> tuple:
        """What the snapshot's key table depends on: a key created or revoked by another
        process (`adserver keys revoke`) changes it without notifying this one."""
        return tuple(
            self.store.read(
                "SELECT COUNT(*), MAX(created_at), MAX(revoked_at), COUNT(revoked_at) FROM api_keys"
            )[0]
        )

    def _loop(self) -> None:
        keys = self.keys_version()
        while not self.stopping:
            try:
                if not self.changed.wait(KEYS_POLL_S):
                    if self.keys_version() == keys:
                        continue
                    log.info("API keys changed outside this process: publishing them")
                keys = self.keys_version()
            except Exception:  # the store is busy or gone: try again at the next poll
                log.exception("reading the API keys' version failed")
                continue
            if self.stopping:
                return
            first = time.monotonic()
            self.changed.clear()
            while time.monotonic() - first < MAX_DELAY_S and self.changed.wait(QUIET_S):
                self.changed.clear()
            try:
                with telemetry.timed(telemetry.PUBLISH):
                    self.version = compile_snapshot(
                        self.store, self.data_dir, on_sponsored=self.on_sponsored
                    )
            except Exception:
                log.exception("snapshot compile failed; the previous version keeps serving")
