"""The control process: the management API over the control store (and, as they land, the
snapshot compiler, the aggregator and the pacing controller)."""

from __future__ import annotations

import socket

from adserver import runtime
from adserver.config import Config
from adserver.control.api import ManagementApi
from adserver.control.store import Store


def run(config: Config, sock: socket.socket | None = None) -> None:
    """Serve the control plane until interrupted (on `sock` when a parent bound it)."""
    store = Store(config.data_dir)
    api = ManagementApi(store, config.admin_key, config.max_body_bytes)
    sock = sock or runtime.bind(config.api_host, config.api_port)
    try:
        runtime.serve(api.app(), sock, "management API", config.log_level)
    finally:
        store.close()
