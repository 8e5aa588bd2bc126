"""The control process: the management API over the control store, and the publisher that
compiles a snapshot after every change (the aggregator and pacing controller come later)."""

from __future__ import annotations

import socket

from adserver import runtime
from adserver.config import Config
from adserver import signing
from adserver.control.api import ManagementApi
from adserver.control.publisher import Publisher
from adserver.control.store import Store


def run(config: Config, sock: socket.socket | None = None) -> None:
    """Serve the control plane until interrupted (on `sock` when a parent bound it)."""
    store = Store(config.data_dir)
    signing.ensure_keys(config.data_dir)
    publisher = Publisher(store, config.data_dir)
    publisher.start()
    api = ManagementApi(store, config.admin_key, config.max_body_bytes, publisher.notify)
    sock = sock or runtime.bind(config.api_host, config.api_port)
    try:
        runtime.serve(api.app(), sock, "management API", config.log_level)
    finally:
        publisher.stop()
        store.close()
