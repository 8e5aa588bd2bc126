"""Running an ASGI app on uvicorn (uvloop + httptools) on a socket bound up front.

Binding first lets port 0 pick a free port and lets us print the real address before serving,
which is how tests and scripts find an instance started on an ephemeral port.
"""

from __future__ import annotations

import socket
import sys
import time
from typing import Any

import uvicorn

# the scope key holding when the worker read a request's first bytes (time.perf_counter())
RECEIVED = "adserver.received"

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class StampedHttpTools(HttpToolsProtocol):
        """uvicorn's httptools protocol, stamping each request's scope with when its
        message began to be parsed (inside data_received): a handler that reads the stamp
        measures the time the request then waited for the event loop, not only its own
        (tests/test_runtime.py checks the stamp arrives)."""

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self.scope[RECEIVED] = time.perf_counter()  # type: ignore[literal-required]

    HTTP: Any = StampedHttpTools
except ImportError:  # another uvicorn layout: no stamps; handlers time themselves
    HTTP = "httptools"


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{'[' + host + ']' if ':' in host else host}:{port}"


def serve(app: Any, sock: socket.socket, what: str, log_level: str = "info",
          announce: bool = True) -> None:
    """Serve `app` on a bound socket until SIGINT/SIGTERM; announce the URL on stdout."""
    config = uvicorn.Config(
        app,
        loop="uvloop",
        http=HTTP,
        lifespan="on",
        log_level=log_level,
        access_log=False,
        server_header=False,
    )
    server = uvicorn.Server(config)
    if announce:
        print(f"adserver: {what} on {url_of(sock)}", flush=True)
    server.run(sockets=[sock])
    sys.stdout.flush()
