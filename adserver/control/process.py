"""The control process: the management API over the control store, and the publisher that
compiles a snapshot after every change (the aggregator and pacing controller come later)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable

from adserver import runtime
from adserver.config import Config
from adserver import signing
from adserver.control.api import ManagementApi
from adserver.control.publisher import Publisher
from adserver.control.store import Store

log = logging.getLogger("adserver.control")


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


def run(config: Config, sock: socket.socket | None = None) -> None:
    """Serve the control plane until interrupted (on `sock` when a parent bound it)."""
    store = Store(config.data_dir)
    signing.ensure_keys(config.data_dir)
    publisher = Publisher(store, config.data_dir)
    publisher.start()
    _every(60.0, lambda: signing.rotate(config.data_dir, config.key_rotation_hours * 3600,
                                        config.key_grace_hours * 3600))
    api = ManagementApi(store, config.admin_key, config.max_body_bytes, publisher.notify)
    sock = sock or runtime.bind(config.api_host, config.api_port)
    try:
        runtime.serve(api.app(), sock, "management API", config.log_level)
    finally:
        publisher.stop()
        store.close()
