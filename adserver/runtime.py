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

# requests whose response head and body go out in one write (one send(2) instead of two)
COALESCED = {("POST", "/api/v2")}


class _OneWrite:
    """The transport a response of a COALESCED route writes to: its first write (uvicorn's
    response head) is held and goes out with the next one (the body); anything else passes
    through to the real transport."""

    __slots__ = ("transport", "head", "written")

    def __init__(self, transport: Any):
        self.transport, self.head, self.written = transport, None, False

    def write(self, data: bytes) -> None:
        if not self.written:
            self.written, self.head = True, data
            return
        head, self.head = self.head, None
        if head is not None:
            self.transport.writelines((head, data))
        else:
            self.transport.write(data)

    def flush(self) -> None:
        if self.head is not None:
            head, self.head = self.head, None
            self.transport.write(head)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class StampedHttpTools(HttpToolsProtocol):
        """uvicorn's httptools protocol, stamping each request's scope with when its
        message began to be parsed (inside data_received): a handler that reads the stamp
        measures the time the request then waited for the event loop, not only its own.
        Responses of COALESCED routes (the decision route: a head and one body) are written
        with one system call, not two (~7 % of a decision's CPU here), except when the
        client waits for `100 Continue` (that must go out alone). tests/test_runtime.py
        checks all of it against this uvicorn."""

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self.scope[RECEIVED] = time.perf_counter()  # type: ignore[literal-required]

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            cycle = getattr(self, "cycle", None)
            scope = self.scope
            if cycle is not None and cycle.scope is scope and not self.expect_100_continue \
                    and (scope.get("method"), scope.get("path")) in COALESCED:
                cycle.transport = _OneWrite(self.transport)

        def on_response_complete(self) -> None:
            cycle = getattr(self, "cycle", None)
            if cycle is not None and isinstance(cycle.transport, _OneWrite):
                cycle.transport.flush()  # (a head without a body: never held past here)
            super().on_response_complete()

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
