"""Rate limits, in each server process: token buckets per client address and per presented
API key, and a back-off for an address that keeps presenting bad keys. The HTTP protocol
(adserver/web/runtime.py) asks `LIMITER.check` once a request's head is read and answers 429
with Retry-After itself; the routes that check keys report a bad one with `failed`.

Each process keeps its own buckets: with N decision workers sharing a port, a client gets up
to N times a rate (the kernel spreads its connections over the workers)."""

from __future__ import annotations

import hashlib
import time

KEY_HEADERS = (
    b"x-api-key",
    b"x-adzerk-apikey",
    b"ocp-apim-subscription-key",
    b"x-adzerk-explain",
    b"authorization",
)
KEY_SET = frozenset(KEY_HEADERS)
MAX_ENTRIES = 100_000  # buckets kept before they are all forgotten (a flood of addresses)
BAD_KEY_WINDOW_S = 60.0


class Buckets:
    """Token buckets: `rate` tokens a second up to `burst`, one per request (rate 0: no
    limit)."""

    __slots__ = ("rate", "burst", "state")

    def __init__(self, rate: float, burst: float):
        self.rate, self.burst = rate, max(burst, 1.0)
        self.state: dict[object, tuple[float, float]] = {}

    def tokens(self, key: object, now: float) -> float:
        got = self.state.get(key)
        if got is None:
            return self.burst
        return min(self.burst, got[0] + (now - got[1]) * self.rate)

    def take(self, key: object, now: float) -> float:
        """Take a token: 0.0 when there was one, else the seconds until there is."""
        if self.rate <= 0:
            return 0.0
        tokens = self.tokens(key, now)
        if tokens >= 1.0:
            if len(self.state) >= MAX_ENTRIES:
                self.state.clear()
            self.state[key] = (tokens - 1.0, now)
            return 0.0
        return (1.0 - tokens) / self.rate

    def wait(self, key: object, now: float) -> float:
        """The seconds until `key` has a token (0.0: it has one), taking none."""
        if self.rate <= 0:
            return 0.0
        tokens = self.tokens(key, now)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate


class Limiter:
    """Token buckets per client address and per API key, and the back-off for bad keys."""

    def __init__(self) -> None:
        self.configure(0.0, 0.0, 0)

    def configure(self, per_address: float, per_key: float, bad_keys: int) -> None:
        """Requests a second per client address and per presented key (0: no limit), and
        how many bad keys an address may present a minute before it is held back."""
        self.address = Buckets(per_address, 2 * per_address)
        self.key = Buckets(per_key, 2 * per_key)
        self.bad = Buckets(bad_keys / BAD_KEY_WINDOW_S, bad_keys)
        self.active = per_address > 0 or per_key > 0 or bad_keys > 0

    def check(self, address: str, headers: list[tuple[bytes, bytes]]) -> float:
        """Seconds the request must wait (0.0: serve it): per address, then, for a request
        that presents a key, the address's bad-key back-off and the key's own bucket."""
        now = 0.0
        if self.address.rate > 0:
            now = time.monotonic()
            wait = self.address.take(address, now)
            if wait:
                return wait
        for name, presented in headers:
            if name in KEY_SET:
                break
        else:  # no key: most decisions, and their cost here is this loop alone
            return 0.0
        now = now or time.monotonic()
        wait = self.bad.wait(address, now)
        if wait:
            return max(wait, 1.0)
        # keyed by a digest of the whole key: someone who knows only a key's id cannot
        # spend its owner's tokens
        return self.key.take(hashlib.blake2b(presented, digest_size=12).digest(), now)

    def failed(self, address: str | None) -> None:
        """A request from `address` presented a key that is not live."""
        if address:
            self.bad.take(address, time.monotonic())


LIMITER = Limiter()
