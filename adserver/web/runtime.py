"""Running an ASGI app on uvicorn (uvloop + httptools) on a socket bound up front.

Binding first lets port 0 pick a free port and lets us print the real address before serving,
which is how tests and scripts find an instance started on an ephemeral port.
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable
from typing import Any

import uvicorn

from adserver.web.ratelimit import LIMITER

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
        self.transport, self.written = transport, False
        self.head: bytes | None = None

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


class Lane:
    """A route the protocol answers itself, synchronously, without an ASGI cycle, task, or
    middleware: `answer(headers, body, scheme, server)` returns (status, headers, body) and
    never raises; `served(status, received, started, ended)` is told the answer's status and
    the request's times (time.perf_counter(): read, answer started, response handed to the
    socket). An app offers one as its `lane` attribute (under uvicorn's middleware: the
    protocol looks through `.app` attributes). At 2,000 requests/s here, uvicorn's
    per-request path (scope, cycle, task, receive/send, middleware) costs ~65 us more CPU a
    request than this lane (BENCHMARKS.md: the floor app on each)."""

    __slots__ = ("method", "path", "max_body", "answer", "served")

    def __init__(
        self,
        method: bytes,
        path: bytes,
        max_body: int,
        answer: Callable[
            [list[tuple[bytes, bytes]], bytes | None, str, tuple[str, int] | None],
            tuple[int, list[tuple[bytes, bytes]], bytes],
        ],
        served: Callable[[int, float, float, float], None],
    ):
        self.method, self.path, self.max_body = method, path, max_body
        self.answer, self.served = answer, served


def _lane_of(app: Any) -> tuple[Lane | None, Any]:
    """The lane an app offers and the proxy middleware's trusted hosts (or None) above it."""
    trusted = None
    for _ in range(8):
        if app is None:
            break
        lane = getattr(app, "lane", None)
        if isinstance(lane, Lane):
            return lane, trusted
        if type(app).__name__ == "ProxyHeadersMiddleware":
            trusted = getattr(app, "trusted_hosts", None)
        app = getattr(app, "app", None)
    return None, None


try:
    from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

    class StampedHttpTools(HttpToolsProtocol):
        """uvicorn's httptools protocol, stamping each request's scope with when its
        message began to be parsed (inside data_received): a handler that reads the stamp
        measures the time the request then waited for the event loop, not only its own.
        Responses of COALESCED routes (the decision route: a head and one body) are written
        with one system call, not two (~7 % of a decision's CPU here), except when the
        client waits for `100 Continue` (that must go out alone).

        The app's Lane (the decision route) is answered here: once its body is read, the
        answer is queued on the event loop (call_soon: like a task, it waits its turn, so
        the stamp still measures the wait) and written in one system call with uvicorn's
        default headers (date). The lane is taken only when uvicorn's path would answer
        the same: not when the client waits for `100 Continue`, asks for an upgrade,
        declares a body over the limit (the ASGI path answers 413 without reading it), the
        app is mounted under a root path, or an earlier request on the connection is still
        in uvicorn's hands (pipelining keeps its order). Keep-alive, HTTP/1.0 and
        `Connection: close`, the keep-alive timeout, X-Forwarded-Proto from a trusted proxy
        and graceful shutdown behave as on uvicorn's path. tests/test_runtime.py checks all
        of it against this uvicorn."""

        lane: Lane | None = None
        trusted: Any = None
        lane_body: bytearray | None = None  # a lane request's body while it is read
        lane_pending = 0  # lane answers queued, not yet written
        lane_closing = False  # shutdown asked while answers were queued
        lane_timer: Any = None  # the lane's keep-alive timer: armed once, looked at lazily
        lane_last = 0.0  # loop time of the last lane answer, or of data read after one

        read_timer: Any = None  # the connection's read check (one timer, re-armed)
        reading = True  # a request's head or body is expected (from the connection's start)
        began = 0.0  # loop time the connection opened or the current request began
        head_read = False  # the current request's head is complete
        refused = False  # the current request was answered 429 (the rest is not read)
        body_read_at = 0.0  # loop time the last part of a body was read
        read_timeout = 0.0  # seconds to read a request's head and body (0: no limit)

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self.lane, self.trusted = _lane_of(self.app)
            self.read_timeout = getattr(self.config, "adserver_read_timeout", 0.0)
            if self.read_timeout:  # the first request must come within the limit
                self.began = self.loop.time()
                self.read_timer = self.loop.call_later(self.read_timeout, self.read_check)

        def read_check(self) -> None:
            """The connection's read deadline, looked at lazily (one timer a connection, not
            one a request): a client that opened a connection, or began a request, and did
            not send its head within `read_timeout`, or stopped sending its body for that
            long (slowloris, a stalled body), gets 408 and is closed, within twice the
            timeout. A body may take longer in all while it keeps coming (a large upload)."""
            self.read_timer = None
            if self.transport.is_closing():
                return
            now = self.loop.time()
            if self.reading:
                since = max(self.began, self.body_read_at) if self.head_read else self.began
                left = since + self.read_timeout - now
                if left <= 0:
                    self.read_expired()
                    return
            else:
                left = self.read_timeout
            self.read_timer = self.loop.call_later(left, self.read_check)

        def read_expired(self) -> None:
            # 408 while nobody else can answer: the head is unread, or the lane holds the
            # body; an app reading a body on uvicorn's path sees the disconnect instead
            if not self.head_read or self.lane_body is not None:
                self.transport.write(
                    b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n"
                    b"connection: close\r\n\r\n"
                )
            self.transport.close()

        def connection_lost(self, exc: Exception | None) -> None:
            if self.lane_timer is not None:
                self.lane_timer.cancel()
                self.lane_timer = None
            if self.read_timer is not None:
                self.read_timer.cancel()
                self.read_timer = None
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self.lane_timer is not None:
                self.lane_last = self.loop.time()
            super().data_received(data)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self.scope[RECEIVED] = time.perf_counter()  # type: ignore[literal-required]
            self.head_read = self.refused = False
            self.reading = True  # from its first byte, a request has read_timeout to arrive
            self.began = self.loop.time()

        def on_headers_complete(self) -> None:
            self.head_read = True
            if LIMITER.active and self.client:
                wait = LIMITER.check(self.client[0], self.headers)
                if wait:
                    self.too_many(wait)
                    return
            lane = self.lane
            cycle = self.cycle
            limit = self.limit_concurrency  # over it, uvicorn's path answers 503
            if (
                lane is not None
                and self.url == lane.path
                and not self.expect_100_continue
                and self.parser.get_method() == lane.method
                and not self.root_path
                and (cycle is None or cycle.response_complete)
                and (limit is None or len(self.connections) < limit)
                and not self.parser.should_upgrade()
                and not self._declared_too_large()
            ):
                self.lane_body = bytearray()
                return
            self.lane_body = None
            super().on_headers_complete()
            started_cycle: Any = getattr(self, "cycle", None)
            scope = self.scope
            if (
                started_cycle is not None
                and started_cycle.scope is scope
                and not self.expect_100_continue
                and (scope.get("method"), scope.get("path")) in COALESCED
            ):
                started_cycle.transport = _OneWrite(self.transport)  # duck-types a transport

        def _declared_too_large(self) -> bool:
            """Whether the request declares a body over the lane's limit: uvicorn's path
            answers that 413 at once, without waiting for the body."""
            for name, value in self.headers:
                if name == b"content-length":
                    return not value.isdigit() or int(value) > self.lane.max_body  # type: ignore[union-attr]
            return False

        def too_many(self, wait: float) -> None:
            """429 with Retry-After, then closed (the rest of the request is not read)."""
            self.refused = True
            self.reading = False
            body = (
                b'{"error":{"status":429,"code":"rate_limited","message":"too many'
                b' requests: retry after the seconds in Retry-After"}}'
            )
            self.transport.write(
                b"HTTP/1.1 429 Too Many Requests\r\nretry-after: %d\r\n"
                b"content-type: application/json\r\ncontent-length: %d\r\n"
                b"connection: close\r\n\r\n%s" % (max(1, int(wait + 0.999)), len(body), body)
            )
            self.transport.close()

        def on_body(self, body: bytes) -> None:
            if self.refused:
                return
            self.body_read_at = self.loop.time()  # a body may take long, but never stall
            buf = self.lane_body
            if buf is None:
                super().on_body(body)
            elif len(buf) <= self.lane.max_body:  # type: ignore[union-attr]
                buf += body  # past the limit: kept at that, answered 413 when complete

        def on_message_complete(self) -> None:
            if self.refused:
                return
            self.reading = False  # read whole: the handler's own time is not limited here
            buf = self.lane_body
            if buf is None:
                super().on_message_complete()
                return
            self.lane_body = None
            keep = self.parser.get_http_version() != "1.0" and self.parser.should_keep_alive()
            scheme: str = self.scheme or "http"
            if self.trusted is not None and self.client and self.client[0] in self.trusted:
                for name, value in self.headers:  # as uvicorn's ProxyHeadersMiddleware
                    if name == b"x-forwarded-proto":
                        proto = value.decode("latin1").strip()
                        if proto in ("http", "https"):
                            scheme = proto
            body = bytes(buf) if len(buf) <= self.lane.max_body else None  # type: ignore[union-attr]
            self.lane_pending += 1
            received = self.scope[RECEIVED]  # type: ignore[literal-required]
            self.loop.call_soon(self.lane_answer, self.headers, body, scheme, keep, received)

        def lane_answer(
            self,
            headers: list[tuple[bytes, bytes]],
            body: bytes | None,
            scheme: str,
            keep: bool,
            received: float,
        ) -> None:
            self.lane_pending -= 1
            transport = self.transport
            if transport.is_closing():  # the client left (or the server closed): no answer
                return
            started = time.perf_counter()
            lane: Lane = self.lane  # type: ignore[assignment]
            try:
                status, extra, out = lane.answer(headers, body, scheme, self.server)  # type: ignore[arg-type]
            except Exception:  # answer() catches its own; this is the last line
                self.logger.exception("lane answer failed")
                out = b"Internal Server Error"
                status, extra, keep = (
                    500,
                    [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"21")],
                    False,
                )
            keep = keep and not (
                self.lane_closing and self.lane_pending == 0 and self.lane_body is None
            )
            head = [STATUS_LINE[status]]
            for name, value in self.server_state.default_headers:
                head += (name, b": ", value, b"\r\n")
            for name, value in extra:
                head += (name, b": ", value, b"\r\n")
            head.append(b"\r\n" if keep else b"connection: close\r\n\r\n")
            head.append(out)
            transport.write(b"".join(head))
            lane.served(status, received, started, time.perf_counter())
            self.server_state.total_requests += 1
            if not keep:
                transport.close()
                return
            # the keep-alive timeout: uvicorn arms a timer after each response and cancels
            # it on the next data (~3 us a request); the lane arms one when there is none
            # and, when it fires, closes only a connection idle that long (lane_idle). Not
            # uvicorn's on_response_complete: that would also start a request queued behind
            # one still in uvicorn's hands, too early.
            self.lane_last = self.loop.time()
            if self.lane_timer is None:
                self.lane_timer = self.loop.call_later(self.timeout_keep_alive, self.lane_idle)

        def lane_idle(self) -> None:
            """The lane's keep-alive timeout: close the connection when nothing was read or
            answered for `timeout_keep_alive` seconds and no request is in flight; else look
            again when that could first be true. A timer of uvicorn's own (armed after a
            response of its path) takes over."""
            self.lane_timer = None
            if self.transport.is_closing() or self.timeout_keep_alive_task is not None:
                return
            cycle = self.cycle
            left = self.lane_last + self.timeout_keep_alive - self.loop.time()
            if (
                self.lane_pending
                or self.lane_body is not None
                or (cycle is not None and not cycle.response_complete)
            ):
                left = self.timeout_keep_alive
            if left > 0:
                self.lane_timer = self.loop.call_later(left, self.lane_idle)
                return
            self.transport.close()

        def shutdown(self) -> None:
            if self.lane_pending or self.lane_body is not None:  # answer what was (being)
                self.lane_closing = True  # read, then close
                return
            super().shutdown()

        def on_response_complete(self) -> None:
            cycle = getattr(self, "cycle", None)
            if cycle is not None and isinstance(cycle.transport, _OneWrite):
                cycle.transport.flush()  # (a head without a body: never held past here)
            super().on_response_complete()

    HTTP: Any = StampedHttpTools
except ImportError:  # another uvicorn layout: no stamps, no lane; handlers time themselves
    HTTP = "httptools"


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket, tls: bool = False) -> str:
    host, port = sock.getsockname()[:2]
    return f"http{'s' if tls else ''}://{'[' + host + ']' if ':' in host else host}:{port}"


class Limits:
    """What a listener allows a client: `connections` open at once per process (beyond it,
    503), `read_timeout` seconds to send a request's head, and as the longest pause in its
    body (then 408 and closed), the rate limits (`rates`: adserver/web/ratelimit.py), and TLS
    from `cert` and `key` files (PEM) when both are given."""

    __slots__ = ("connections", "read_timeout", "cert", "key", "rates")

    def __init__(
        self,
        connections: int | None = None,
        read_timeout: float = 0.0,
        cert: str | None = None,
        key: str | None = None,
        rates: tuple[float, float, int] = (0.0, 0.0, 0),
    ):
        self.connections, self.read_timeout, self.cert, self.key = (
            connections,
            read_timeout,
            cert,
            key,
        )
        self.rates = rates  # per address, per key (requests/s), bad keys a minute

    @classmethod
    def of(cls, config: Any) -> Limits:
        """From the settings (adserver.config.Config)."""
        return cls(
            config.max_connections,
            config.read_timeout_s,
            config.tls_cert,
            config.tls_key,
            (config.rate_per_address, config.rate_per_key, config.bad_keys_per_minute),
        )

    @property
    def tls(self) -> bool:
        return bool(self.cert and self.key)


def serve(
    app: Any,
    sock: socket.socket,
    what: str,
    log_level: str = "info",
    announce: bool = True,
    keep_alive_s: int = 5,
    limits: Limits | None = None,
) -> None:
    """Serve `app` on a bound socket until SIGINT/SIGTERM; announce the URL on stdout. An
    idle keep-alive connection is closed after `keep_alive_s` (uvicorn's default)."""
    limits = limits or Limits()
    config = uvicorn.Config(
        app,
        loop="uvloop",
        http=HTTP,
        lifespan="on",
        log_level=log_level,
        log_config=None,  # adserver/logs.py configured the process's logging
        access_log=False,
        server_header=False,
        timeout_keep_alive=keep_alive_s,
        limit_concurrency=limits.connections,
        ssl_certfile=limits.cert if limits.tls else None,
        ssl_keyfile=limits.key if limits.tls else None,
    )
    config.adserver_read_timeout = limits.read_timeout  # type: ignore[attr-defined]
    LIMITER.configure(*limits.rates)
    server = uvicorn.Server(config)
    if announce:
        print(f"adserver: {what} on {url_of(sock, limits.tls)}", flush=True)
    server.run(sockets=[sock])
    sys.stdout.flush()
